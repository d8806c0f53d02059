//go:build unix

package peer

import (
	"os"
	"syscall"
)

// fileID tells files apart where size and time may not: a file replaced
// by another (a rename over it) has another one.
type fileID struct{ dev, ino uint64 }

// fileIDOf returns the device and inode numbers of the file at path, which
// st describes.
func fileIDOf(_ string, st os.FileInfo) fileID {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return fileID{dev: uint64(sys.Dev), ino: uint64(sys.Ino)}
	}
	return fileID{}
}
