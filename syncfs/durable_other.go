//go:build !linux

package syncfs

import (
	"os"

	"github.com/baton-sync/baton/internal/durable"
)

// syncEachFile is true where there is no syncfs(2): a batch fsyncs each
// file, and each distinct directory once.
const syncEachFile = !durable.Batched

// startWriteback does nothing where there is no sync_file_range(2): the
// fsync does all the writing.
func startWriteback(*os.File) {}
