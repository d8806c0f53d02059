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
//
// A Local opened from a DB (DB.OpenLocal) holds its entries there: in
// memory, all of them while the folder has at most a limit of entries
// (DefaultLocalWhole), and beyond it only those changed since the last
// Flush; the others are read from the DB at each Get and walked there, a
// window at a time, by All, Names and Stats (see localstore.go).
type Local struct {
	t *localTable
}

// localTable is what a Local and its copies share.
type localTable struct {
	m     map[string]string // by name: the packed entry, its stat, both, or gone
	files int               // names with an entry (not a stat alone)
	devs  deviceTable       // the devices of the entries' versions
	buf   []byte            // scratch for packing
	st    *localStore       // the DB the entries are kept in; nil: all in m
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

// held is what a Local holds of one name: packed in its map, or read
// from its DB (s).
type held struct {
	v string
	s *storedEntry
}

func (h held) hasFile() bool { return h.s != nil || packedHasFile(h.v) }

func (h held) stat() (DiskStat, bool) {
	if h.s == nil {
		return unpackStat(h.v)
	}
	if h.s.Disk == nil {
		return DiskStat{}, false
	}
	return *h.s.Disk, true
}

// file returns the entry h holds of name (h.hasFile()).
func (t *localTable) file(name string, h held) FileInfo {
	if h.s != nil {
		return h.s.File
	}
	return t.unpackFile(name, h.v)
}

// lookup returns what t holds of name: its map's, else its DB's. It
// changes nothing: readers may call it at once.
func (t *localTable) lookup(name string) (held, bool) {
	if v, ok := t.m[name]; ok || t.st == nil || t.st.whole {
		return held{v: v}, ok
	}
	return t.st.read(name)
}

// put records v, packed, as name's.
func (t *localTable) put(name, v string) {
	t.m[name] = v
	if t.st != nil {
		t.st.dirty[name] = struct{}{}
	}
}

// remove forgets name's entry and stat.
func (t *localTable) remove(name string) {
	switch {
	case t.st == nil:
		delete(t.m, name)
		return
	case t.st.whole:
		delete(t.m, name)
	default:
		t.m[name] = gone // the DB may hold it
	}
	t.st.dirty[name] = struct{}{}
}

// each returns what t holds of every name, in no particular order,
// with the guarantees of All.
func (t *localTable) each() iter.Seq2[string, held] {
	return func(yield func(string, held) bool) {
		if t.st != nil && !t.st.whole {
			t.st.each(t, yield)
			return
		}
		for n, v := range t.m {
			if !yield(n, held{v: v}) {
				return
			}
		}
	}
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

// Clone returns a copy of l that shares nothing with it, held in memory
// (a Local opened from a DB too).
func (l *Local) Clone() Local {
	if l.t == nil {
		return NewLocal()
	}
	t := l.t
	if t.st == nil {
		return Local{t: &localTable{m: maps.Clone(t.m), files: t.files, devs: t.devs.clone()}}
	}
	c := Local{t: newLocalTable(t.files)}
	for n, h := range t.each() {
		if h.hasFile() {
			c.Set(t.file(n, h))
		}
		if d, ok := h.stat(); ok {
			c.SetStat(n, d)
		}
	}
	return c
}

// Get returns the entry of name, false if l has none (a deleted entry,
// a tombstone, is an entry).
func (l *Local) Get(name string) (FileInfo, bool) {
	if l.t == nil {
		return FileInfo{}, false
	}
	h, ok := l.t.lookup(name)
	if !ok || !h.hasFile() {
		return FileInfo{}, false
	}
	return l.t.file(name, h), true
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
// not, and one changed is produced as it is when reached. It may not
// Flush l.
func (l *Local) All() iter.Seq2[string, FileInfo] {
	return func(yield func(string, FileInfo) bool) {
		if l.t == nil {
			return
		}
		for n, h := range l.t.each() {
			if h.hasFile() && !yield(n, l.t.file(n, h)) {
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
		for n, h := range l.t.each() {
			if h.hasFile() && !yield(n) {
				return
			}
		}
	}
}

// Set records f as the entry of its name, f.Name, replacing any there. The
// entry's disk stat, if any, is left as it is.
func (l *Local) Set(f FileInfo) {
	t := l.table()
	old, had := t.lookup(f.Name)
	var st DiskStat
	hasStat := false
	if had {
		st, hasStat = old.stat()
	}
	if !had || !old.hasFile() {
		t.files++
	}
	t.put(f.Name, t.pack(&f, st, hasStat))
}

// Delete removes the entry of name, and its disk stat. This is not a
// deletion to announce (that is a tombstone, Set): l no longer knows name.
func (l *Local) Delete(name string) {
	if l.t == nil {
		return
	}
	if h, ok := l.t.lookup(name); ok {
		if h.hasFile() {
			l.t.files--
		}
		l.t.remove(name)
	}
}

// Stat returns the disk stat recorded for name, false if none is.
func (l *Local) Stat(name string) (DiskStat, bool) {
	if l.t == nil {
		return DiskStat{}, false
	}
	h, ok := l.t.lookup(name)
	if !ok {
		return DiskStat{}, false
	}
	return h.stat()
}

// SetStat records d as the disk stat of name.
func (l *Local) SetStat(name string, d DiskStat) {
	t := l.table()
	h, _ := t.lookup(name)
	if h.s != nil {
		t.put(name, t.pack(&h.s.File, d, true))
		return
	}
	t.put(name, t.restat(h.v, &d))
}

// DropStat removes the disk stat of name, if any: the next scan hashes
// the file again.
func (l *Local) DropStat(name string) {
	if l.t == nil {
		return
	}
	h, ok := l.t.lookup(name)
	switch {
	case !ok:
	case !h.hasFile():
		l.t.remove(name)
	case h.s != nil:
		if h.s.Disk != nil {
			l.t.put(name, l.t.pack(&h.s.File, DiskStat{}, false))
		}
	case packedHasStat(h.v):
		l.t.put(name, l.t.restat(h.v, nil))
	}
}

// Stats returns every disk stat of l by name, in no particular order,
// with the same guarantees as All.
func (l *Local) Stats() iter.Seq2[string, DiskStat] {
	return func(yield func(string, DiskStat) bool) {
		if l.t == nil {
			return
		}
		for n, h := range l.t.each() {
			if d, ok := h.stat(); ok && !yield(n, d) {
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
