//go:build unix

package syncfs

import (
	"io/fs"
	"syscall"
)

// sysStat returns fi's inode number and change time, where the system has
// them.
func sysStat(fi fs.FileInfo) (ino uint64, ctime int64) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0
	}
	return uint64(st.Ino), ctimeOf(st)
}
