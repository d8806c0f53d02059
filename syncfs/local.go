package syncfs

import (
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"iter"
	"maps"
	"strings"
)

// TempPrefix starts the names of the applier's temporary files. The scanner
// and the watcher skip such names; the scanner removes stale ones.
const TempPrefix = ".baton-tmp-"

// tempName returns a fresh temporary name in the directory of name:
// TempPrefix and 12 random letters.
func tempName(name string) string {
	return inDirOf(name, TempPrefix+rand.Text()[:12])
}

// partialName returns the temporary name in the directory of name in which
// the version of name whose file hash is fh is assembled: TempPrefix and
// 16 hex digits of a hash of both. Every attempt at that version uses the
// same name, so a later one (after a restart too) finds the blocks an
// interrupted one left; another version, or another name, gets another.
func partialName(name string, fh Hash) string {
	h := HashBytes(append(append([]byte(name), 0), fh[:]...))
	return inDirOf(name, TempPrefix+hex.EncodeToString(h[:8]))
}

// inDirOf returns base in the directory of name.
func inDirOf(name, base string) string {
	if dir := parentDir(name); dir != "" {
		return dir + "/" + base
	}
	return base
}

// IsTemp reports whether the last component of name is an applier
// temporary file.
func IsTemp(name string) bool {
	i := strings.LastIndexByte(name, '/')
	return strings.HasPrefix(name[i+1:], TempPrefix)
}

// inTemp reports whether some component of name is an applier temporary
// file's name. No scanner records such a name (it neither records nor
// walks temporary files), so one received from a peer is not synced: it
// would be taken for a partial file, and removed by the scanner.
func inTemp(name string) bool {
	for c := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(c, TempPrefix) {
			return true
		}
	}
	return false
}

// DiskStat is what Lstat said about an entry when the scanner (or the
// applier) last recorded it. It never leaves the device: it lets a rescan
// trust an unchanged file without rehashing it, and lets the applier check
// that a file did not change since the plan.
//
// The fields are in the order that packs them best (a Local holds one per
// entry); the encoding orders them by key.
type DiskStat struct {
	Size    int64  `cbor:"1,keyasint,omitempty"`
	ModTime int64  `cbor:"2,keyasint,omitempty"` // Unix nanoseconds
	Inode   uint64 `cbor:"4,keyasint,omitempty"` // the FileID's Index: the inode number on unix; zero where unknown
	Ctime   int64  `cbor:"5,keyasint,omitempty"` // inode change time, zero where unknown
	// Volume and InodeHigh are the rest of the FileID where the system
	// has more than an inode number (Windows).
	Volume    uint64 `cbor:"7,keyasint,omitempty"`
	InodeHigh uint64 `cbor:"8,keyasint,omitempty"`
	Mode      uint32 `cbor:"3,keyasint,omitempty"` // fs.FileMode, type and permission bits
	// Racy marks a stat taken so soon after the file's last change that a
	// later change within the filesystem's timestamp granularity could
	// leave the stat equal: the next scan rehashes the file anyway.
	Racy bool `cbor:"6,keyasint,omitempty"`
}

// statOf returns the DiskStat of fi.
func statOf(fi fs.FileInfo) DiskStat {
	ino, ctime := sysStat(fi)
	return DiskStat{Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), Mode: uint32(fi.Mode()), Inode: ino, Ctime: ctime}
}

// same reports whether d and o describe the same unchanged entry: same
// size, times and mode, and the same file (see sameID: an identity known
// on one side only is not a change).
func (d DiskStat) same(o DiskStat) bool {
	return d.Size == o.Size && d.ModTime == o.ModTime && d.Mode == o.Mode && d.Ctime == o.Ctime && sameID(d.id(), o.id())
}

// Local is a device's own record of a folder: the entries it announces
// (the local side of Plan) and, for the live ones, what was on disk when
// they were recorded (their disk stats). The scanner produces it, the
// applier updates it as it writes, and DB persists it so a restart does not
// rehash.
//
// Its entries and stats are reached through its methods only, so that how
// it holds them is its own business. A *Local is an Entries. The zero
// Local is empty and ready to use. Copying a Local by value does not copy
// what it holds: of a Local and its copies, only one may be changed (and
// then the others not used); Clone makes one that is separate.
type Local struct {
	files Snapshot
	disk  map[string]DiskStat
}

// NewLocal returns an empty Local.
func NewLocal() Local {
	return Local{files: Snapshot{}, disk: map[string]DiskStat{}}
}

// LocalOf returns a Local holding a copy of files and of disk (nil for no
// disk stats). Each entry of files must be held under its own Name.
func LocalOf(files Snapshot, disk map[string]DiskStat) Local {
	l := Local{files: maps.Clone(files), disk: maps.Clone(disk)}
	if l.files == nil {
		l.files = Snapshot{}
	}
	if l.disk == nil {
		l.disk = map[string]DiskStat{}
	}
	return l
}

// Clone returns a copy of l that shares nothing with it.
func (l *Local) Clone() Local {
	c := NewLocal()
	maps.Copy(c.files, l.files)
	maps.Copy(c.disk, l.disk)
	return c
}

// Get returns the entry of name, false if l has none (a deleted entry,
// a tombstone, is an entry).
func (l *Local) Get(name string) (FileInfo, bool) {
	f, ok := l.files[name]
	return f, ok
}

// Len returns how many entries l holds, tombstones included.
func (l *Local) Len() int {
	return len(l.files)
}

// All returns every entry of l by name, in no particular order. The loop
// over it may change l (Set, Delete, SetStat, DropStat) with the
// guarantees of a range over a Go map, and no more: an entry removed
// before the loop reaches it is not produced, one added may be produced or
// not, and one changed is produced as it is when reached.
func (l *Local) All() iter.Seq2[string, FileInfo] {
	return maps.All(l.files)
}

// Names returns the names of every entry of l, in no particular order,
// with the same guarantees as All.
func (l *Local) Names() iter.Seq[string] {
	return maps.Keys(l.files)
}

// Set records f as the entry of its name, f.Name, replacing any there. The
// entry's disk stat, if any, is left as it is.
func (l *Local) Set(f FileInfo) {
	if l.files == nil {
		l.files = Snapshot{}
	}
	l.files[f.Name] = f
}

// Delete removes the entry of name, and its disk stat. This is not a
// deletion to announce (that is a tombstone, Set): l no longer knows name.
func (l *Local) Delete(name string) {
	delete(l.files, name)
	delete(l.disk, name)
}

// Stat returns the disk stat recorded for name, false if none is.
func (l *Local) Stat(name string) (DiskStat, bool) {
	d, ok := l.disk[name]
	return d, ok
}

// SetStat records d as the disk stat of name.
func (l *Local) SetStat(name string, d DiskStat) {
	if l.disk == nil {
		l.disk = map[string]DiskStat{}
	}
	l.disk[name] = d
}

// DropStat removes the disk stat of name, if any: the next scan hashes
// the file again.
func (l *Local) DropStat(name string) {
	delete(l.disk, name)
}

// Stats returns every disk stat of l by name, in no particular order,
// with the same guarantees as All.
func (l *Local) Stats() iter.Seq2[string, DiskStat] {
	return maps.All(l.disk)
}

// Snapshot returns a copy of l's entries.
func (l *Local) Snapshot() Snapshot {
	s := maps.Clone(l.files)
	if s == nil {
		s = Snapshot{}
	}
	return s
}
