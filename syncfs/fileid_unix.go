//go:build unix

package syncfs

import "io/fs"

// FileID returns the inode number fi carries (the stat of name): no I/O.
func (rootFS) FileID(_ string, fi fs.FileInfo) (FileID, error) {
	ino, _ := sysStat(fi)
	if ino == 0 {
		return FileID{}, errNoFileID
	}
	return FileID{Index: ino}, nil
}

// osFileID returns the FileID of an open file of the disk: on unix, the
// stat of the open file carries it already, so there is nothing to add.
func osFileID(File) (FileID, bool) { return FileID{}, false }
