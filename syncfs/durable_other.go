//go:build !linux

package syncfs

import (
	"errors"
	"os"
)

// syncEachFile is true where there is no syncfs(2): a batch fsyncs each
// file, and each distinct directory once.
const syncEachFile = true

func syncFS(*os.File) error { return errors.New("syncfs: not available") }
