//go:build !linux

package folderstore

import (
	"errors"
	"os"
)

// batchDurable is false where there is no syncfs(2): PutBatch Puts each
// block, fsynced on its own.
const batchDurable = false

func syncFS(*os.File) error { return errors.New("syncfs: not available") }
