package syncfs

import (
	"fmt"
	"io/fs"
)

// FileID tells files apart where size and times may not: another file put
// in a file's place (renamed over it, or copied there with its times kept)
// has another FileID. The zero FileID is unknown.
//
// On unix it is the inode number alone. The device number is left out, as
// Git leaves it out: it can change at a reboot or a remount (btrfs
// subvolumes, removable disks, NFS), which would make every file look
// replaced and be hashed again, while a path cannot move to another
// device without a mount, which the inode and change time already tell.
// On Windows, which has no inodes, it is the volume serial number and the
// file index: 128 bits where the volume has them (FILE_ID_INFO, as on
// ReFS, whose 64-bit indexes are not unique), else 64 (NTFS, FAT).
type FileID struct {
	Volume    uint64
	Index     uint64
	IndexHigh uint64
}

// Known reports whether id says something.
func (id FileID) Known() bool { return id != FileID{} }

// id returns the FileID d recorded.
func (d DiskStat) id() FileID {
	return FileID{Volume: d.Volume, Index: d.Inode, IndexHigh: d.InodeHigh}
}

// withID returns d with the FileID id.
func (d DiskStat) withID(id FileID) DiskStat {
	d.Volume, d.Inode, d.InodeHigh = id.Volume, id.Index, id.IndexHigh
	return d
}

// sameID reports whether a and b may be the same file: they are unless
// both are known and differ. An identity unknown on one side (a system
// that has none, a file that could not be opened to read it, a stat
// recorded by a version or a path that did not read it) is not taken as
// a change: size, times and mode still are.
func sameID(a, b FileID) bool {
	return !a.Known() || !b.Known() || a == b
}

// fileIDer is a File that knows its own FileID (as FakeFS's files do).
type fileIDer interface {
	FileID() (FileID, error)
}

// openedID returns the FileID of the open file f, which is name in fsys
// and which fi (from f.Stat) describes: from the open file where the
// system gives it (so a file replaced since it was opened is not mistaken
// for it), else from fsys by name; zero if neither can tell.
func openedID(fsys FS, name string, f File, fi fs.FileInfo) FileID {
	if o, ok := f.(fileIDer); ok {
		if id, err := o.FileID(); err == nil {
			return id
		}
		return FileID{}
	}
	if id, ok := osFileID(f); ok {
		return id
	}
	id, _ := fsys.FileID(name, fi)
	return id
}

// withFileID returns st, the stat of name in fsys from fi, with its
// FileID read from fsys if fi did not carry it; as it is, if fsys cannot
// tell.
func withFileID(fsys FS, name string, fi fs.FileInfo, st DiskStat) DiskStat {
	if st.id().Known() {
		return st
	}
	id, err := fsys.FileID(name, fi)
	if err != nil {
		return st
	}
	return st.withID(id)
}

// errNoFileID is what FileID answers on a system that has no file
// identities.
var errNoFileID = fmt.Errorf("file identities: %w", fs.ErrInvalid)
