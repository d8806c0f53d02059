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
//
// It holds each name's entry and disk stat packed in one string (see
// packed.go): about 130 bytes a file of one block with its stat, where a
// map of FileInfo and one of DiskStat held about 370. Get decodes the
// entry each time.
type Local struct {
	t *localTable
}

// localTable is what a Local and its copies share.
type localTable struct {
	m     map[string]string // by name: the packed entry, its stat, or both
	files int               // names with an entry (not a stat alone)
	devs  deviceTable       // the devices of the entries' versions
	buf   []byte            // scratch for packing
}

// NewLocal returns an empty Local.
func NewLocal() Local {
	return Local{t: newLocalTable(0)}
}

func newLocalTable(hint int) *localTable {
	return &localTable{m: make(map[string]string, hint)}
}

// table returns l's table, made on first use.
func (l *Local) table() *localTable {
	if l.t == nil {
		l.t = newLocalTable(0)
	}
	return l.t
}

// LocalOf returns a Local holding the entries of files (each under its
// own Name, whatever its key in files) and the stats of disk (nil for
// none).
func LocalOf(files Snapshot, disk map[string]DiskStat) Local {
	l := Local{t: newLocalTable(len(files))}
	for _, f := range files {
		l.Set(f)
	}
	for n, d := range disk {
		l.SetStat(n, d)
	}
	return l
}

// Clone returns a copy of l that shares nothing with it.
func (l *Local) Clone() Local {
	if l.t == nil {
		return NewLocal()
	}
	t := l.t
	return Local{t: &localTable{m: maps.Clone(t.m), files: t.files, devs: t.devs.clone()}}
}

// Get returns the entry of name, false if l has none (a deleted entry,
// a tombstone, is an entry).
func (l *Local) Get(name string) (FileInfo, bool) {
	if l.t == nil {
		return FileInfo{}, false
	}
	v, ok := l.t.m[name]
	if !ok || !packedHasFile(v) {
		return FileInfo{}, false
	}
	return l.t.unpackFile(name, v), true
}

// Len returns how many entries l holds, tombstones included.
func (l *Local) Len() int {
	if l.t == nil {
		return 0
	}
	return l.t.files
}

// All returns every entry of l by name, in no particular order. The loop
// over it may change l (Set, Delete, SetStat, DropStat) with the
// guarantees of a range over a Go map, and no more: an entry removed
// before the loop reaches it is not produced, one added may be produced or
// not, and one changed is produced as it is when reached.
func (l *Local) All() iter.Seq2[string, FileInfo] {
	return func(yield func(string, FileInfo) bool) {
		if l.t == nil {
			return
		}
		for n, v := range l.t.m {
			if packedHasFile(v) && !yield(n, l.t.unpackFile(n, v)) {
				return
			}
		}
	}
}

// Names returns the names of every entry of l, in no particular order,
// with the same guarantees as All.
func (l *Local) Names() iter.Seq[string] {
	return func(yield func(string) bool) {
		if l.t == nil {
			return
		}
		for n, v := range l.t.m {
			if packedHasFile(v) && !yield(n) {
				return
			}
		}
	}
}

// Set records f as the entry of its name, f.Name, replacing any there. The
// entry's disk stat, if any, is left as it is.
func (l *Local) Set(f FileInfo) {
	t := l.table()
	old, had := t.m[f.Name]
	var st DiskStat
	hasStat := false
	if had {
		st, hasStat = unpackStat(old)
	}
	if !had || !packedHasFile(old) {
		t.files++
	}
	t.m[f.Name] = t.pack(&f, st, hasStat)
}

// Delete removes the entry of name, and its disk stat. This is not a
// deletion to announce (that is a tombstone, Set): l no longer knows name.
func (l *Local) Delete(name string) {
	if l.t == nil {
		return
	}
	if v, ok := l.t.m[name]; ok {
		if packedHasFile(v) {
			l.t.files--
		}
		delete(l.t.m, name)
	}
}

// Stat returns the disk stat recorded for name, false if none is.
func (l *Local) Stat(name string) (DiskStat, bool) {
	if l.t == nil {
		return DiskStat{}, false
	}
	v, ok := l.t.m[name]
	if !ok {
		return DiskStat{}, false
	}
	return unpackStat(v)
}

// SetStat records d as the disk stat of name.
func (l *Local) SetStat(name string, d DiskStat) {
	t := l.table()
	t.m[name] = t.restat(t.m[name], &d)
}

// DropStat removes the disk stat of name, if any: the next scan hashes
// the file again.
func (l *Local) DropStat(name string) {
	if l.t == nil {
		return
	}
	v, ok := l.t.m[name]
	switch {
	case !ok:
	case !packedHasFile(v):
		delete(l.t.m, name)
	case packedHasStat(v):
		l.t.m[name] = l.t.restat(v, nil)
	}
}

// Stats returns every disk stat of l by name, in no particular order,
// with the same guarantees as All.
func (l *Local) Stats() iter.Seq2[string, DiskStat] {
	return func(yield func(string, DiskStat) bool) {
		if l.t == nil {
			return
		}
		for n, v := range l.t.m {
			if d, ok := unpackStat(v); ok && !yield(n, d) {
				return
			}
		}
	}
}

// Snapshot returns a copy of l's entries.
func (l *Local) Snapshot() Snapshot {
	s := make(Snapshot, l.Len())
	for n, f := range l.All() {
		s[n] = f
	}
	return s
}
