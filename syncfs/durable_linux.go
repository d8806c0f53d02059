package syncfs

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/baton-sync/baton/internal/durable"
)

// syncEachFile is false on Linux: a batch's barrier is one syncfs(2) of
// the folder's filesystem, which also makes directory entries durable.
const syncEachFile = !durable.Batched

// startWriteback asks the kernel to start writing f's dirty pages to disk
// now, without waiting for them (sync_file_range(2) with
// SYNC_FILE_RANGE_WRITE): the fsync that makes f durable then finds most
// of the work done, and the disk writes overlap the transfer of the rest
// of the file. It is only a hint; errors are left to that fsync.
func startWriteback(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) { _ = unix.SyncFileRange(int(fd), 0, 0, unix.SYNC_FILE_RANGE_WRITE) })
}
