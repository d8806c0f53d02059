package syncfstest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/baton-sync/baton/syncfs"
)

// FakeFS is an in-memory file system for syncfs.Scanner.FS and
// syncfs.Applier.FS, in the manner of Syncthing's lib/fs fake:
// case-insensitive and case-preserving as NTFS and APFS are by default
// (CaseInsensitive), and storing names in NFD while finding them in any
// normalization as macOS' HFS+ does (NFD). Failures can be injected
// (Fail). Its zero value is not usable; use NewFakeFS. It is safe for use
// by several goroutines at once.
type FakeFS struct {
	CaseInsensitive, NFD bool

	mu     sync.Mutex
	nodes  map[string]*fakeNode // by key of the path
	fail   func(op, name string) error
	lastID uint64
}

type fakeNode struct {
	stored  string // the path as the file system stores it (slash path)
	typ     syncfs.FileType
	data    []byte
	target  string
	mode    fs.FileMode // permission bits
	modTime time.Time
	id      uint64 // its FileID's Index, given when it is created
}

// NewFakeFS returns an empty file system with the given behaviour.
func NewFakeFS(caseInsensitive, nfd bool) *FakeFS {
	return &FakeFS{CaseInsensitive: caseInsensitive, NFD: nfd, nodes: map[string]*fakeNode{}}
}

// key is the form under which the file system finds name (a slash path):
// two names with one key are one file.
func (f *FakeFS) key(name string) string {
	if f.NFD {
		name = norm.NFC.String(name)
	}
	if f.CaseInsensitive {
		name = syncfs.Canonical(name)
	}
	return name
}

// clean turns a native path as syncfs.FS takes it into a slash path, ""
// for the root.
func clean(name string) string {
	name = filepath.ToSlash(name)
	if name == "." {
		return ""
	}
	return name
}

func (f *FakeFS) lookup(name string) (*fakeNode, error) {
	name = clean(name)
	if name == "" {
		return &fakeNode{typ: syncfs.TypeDir, mode: 0o755}, nil
	}
	n, ok := f.nodes[f.key(name)]
	if !ok {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrNotExist}
	}
	return n, nil
}

// create makes the entry name (a slash path) with the stored form of its
// last component; its parent must be a directory. It fails if an entry
// is found under name (in any case or normalization).
func (f *FakeFS) create(name string, n *fakeNode) error {
	if _, ok := f.nodes[f.key(name)]; ok {
		return &fs.PathError{Op: "create", Path: name, Err: fs.ErrExist}
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	p, err := f.lookup(dir)
	if err != nil {
		return err
	}
	if p.typ != syncfs.TypeDir {
		return &fs.PathError{Op: "create", Path: name, Err: errors.New("parent is not a directory")}
	}
	if f.NFD {
		base = norm.NFD.String(base)
	}
	n.stored = base
	if n.id == 0 {
		f.lastID++
		n.id = f.lastID
	}
	if dir != "" {
		n.stored = p.stored + "/" + base
	}
	f.nodes[f.key(name)] = n
	return nil
}

// Fail makes every later operation of the WriteFS methods (and Remove)
// first call fail with the operation's name ("rename", "remove",
// "mkdir", "symlink", "chmod", "chtimes", "openfile") and the name it
// acts on (for a rename, the new name): an error it returns is the
// operation's, nothing done. nil stops injecting.
func (f *FakeFS) Fail(fail func(op, name string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

// injected returns the error Fail's function gives op on name, if any.
func (f *FakeFS) injected(op, name string) error {
	if f.fail == nil {
		return nil
	}
	return f.fail(op, clean(name))
}

// WriteFile creates or replaces the file name (a slash path) with data;
// an existing entry found under name keeps its stored name.
func (f *FakeFS) WriteFile(name string, data []byte, mode fs.FileMode, modTime time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.nodes[f.key(name)]; ok {
		if n.typ != syncfs.TypeFile {
			return &fs.PathError{Op: "write", Path: name, Err: errors.New("not a regular file")}
		}
		n.data, n.mode, n.modTime = bytes.Clone(data), mode.Perm(), modTime
		return nil
	}
	return f.create(name, &fakeNode{typ: syncfs.TypeFile, data: bytes.Clone(data), mode: mode.Perm(), modTime: modTime})
}

// MakeDir creates the directory name with mode and modTime.
func (f *FakeFS) MakeDir(name string, mode fs.FileMode, modTime time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.create(name, &fakeNode{typ: syncfs.TypeDir, mode: mode.Perm(), modTime: modTime})
}

// MakeSymlink creates name as a symlink to target.
func (f *FakeFS) MakeSymlink(target, name string, modTime time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.create(name, &fakeNode{typ: syncfs.TypeSymlink, target: target, mode: 0o777, modTime: modTime})
}

// SetMeta sets the permission bits and the modification time of name.
func (f *FakeFS) SetMeta(name string, mode fs.FileMode, modTime time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup(name)
	if err != nil {
		return err
	}
	n.mode, n.modTime = mode.Perm(), modTime
	return nil
}

// Rename implements syncfs.WriteFS: it moves from to to, replacing a file
// there. On a case-insensitive file system, a name may be renamed to
// itself in another case: the stored name changes. Directories are moved
// with what they hold.
func (f *FakeFS) Rename(from, to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("rename", to); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	from, to = clean(from), clean(to)
	n, err := f.lookup(from)
	if err != nil {
		return err
	}
	if t, ok := f.nodes[f.key(to)]; ok && t != n {
		if t.typ == syncfs.TypeDir {
			return &fs.PathError{Op: "rename", Path: to, Err: fs.ErrExist}
		}
		delete(f.nodes, f.key(to))
	}
	old := n.stored
	delete(f.nodes, f.key(from))
	if err := f.create(to, n); err != nil {
		f.nodes[f.key(old)] = n
		n.stored = old
		return err
	}
	for k, c := range f.nodes {
		if rest, ok := strings.CutPrefix(c.stored, old+"/"); ok {
			delete(f.nodes, k)
			c.stored = n.stored + "/" + rest
			f.nodes[f.key(c.stored)] = c
		}
	}
	return nil
}

// ReadFile returns the content of the file name.
func (f *FakeFS) ReadFile(name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	if n.typ != syncfs.TypeFile {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	return bytes.Clone(n.data), nil
}

// Stored returns the stored names of every entry, sorted.
func (f *FakeFS) Stored() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.nodes {
		out = append(out, n.stored)
	}
	slices.Sort(out)
	return out
}

// Lstat implements syncfs.FS.
func (f *FakeFS) Lstat(name string) (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	return n.info(), nil
}

// ReadDir implements syncfs.FS: entries under their stored names.
func (f *FakeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readDir(name)
}

func (f *FakeFS) readDir(name string) ([]fs.DirEntry, error) {
	d, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	if d.typ != syncfs.TypeDir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	var out []fs.DirEntry
	for _, n := range f.nodes {
		dir, _ := path.Split(n.stored)
		if strings.TrimSuffix(dir, "/") == d.stored {
			out = append(out, fs.FileInfoToDirEntry(n.info()))
		}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// Open implements syncfs.FS.
func (f *FakeFS) Open(name string) (syncfs.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	return &fakeFile{Reader: bytes.NewReader(bytes.Clone(n.data)), info: n.info()}, nil
}

// Readlink implements syncfs.FS.
func (f *FakeFS) Readlink(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup(name)
	if err != nil {
		return "", err
	}
	if n.typ != syncfs.TypeSymlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: errors.New("not a symlink")}
	}
	return n.target, nil
}

// Remove implements syncfs.FS: a directory must be empty.
func (f *FakeFS) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("remove", name); err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	n, err := f.lookup(name)
	if err != nil {
		return err
	}
	if n.typ == syncfs.TypeDir {
		if ents, _ := f.readDir(name); len(ents) > 0 {
			return &fs.PathError{Op: "remove", Path: name, Err: errors.New("directory not empty")}
		}
	}
	delete(f.nodes, f.key(clean(name)))
	return nil
}

// FileID implements syncfs.FS: every entry created gets a FileID of its
// own, which it keeps when renamed. As on Windows, the FileInfo does not
// carry it (the scanner must ask).
func (f *FakeFS) FileID(_ string, fi fs.FileInfo) (syncfs.FileID, error) {
	i, ok := fi.(fakeInfo)
	if !ok {
		return syncfs.FileID{}, errors.New("fakefs: not a FileInfo of this file system")
	}
	return syncfs.FileID{Volume: 1, Index: i.id}, nil
}

// SameFile implements syncfs.FS.
func (f *FakeFS) SameFile(a, b fs.FileInfo) bool {
	x, okA := a.Sys().(*fakeNode)
	y, okB := b.Sys().(*fakeNode)
	return okA && okB && x == y
}

// fakeInfo is what Lstat says of a node: taken when it is asked.
type fakeInfo struct {
	n       *fakeNode
	name    string
	size    int64
	mode    fs.FileMode
	modTime time.Time
	id      uint64
}

// info returns what Lstat says of n now (the caller holds the lock).
func (n *fakeNode) info() fakeInfo {
	m := n.mode
	switch n.typ {
	case syncfs.TypeDir:
		m |= fs.ModeDir
	case syncfs.TypeSymlink:
		m |= fs.ModeSymlink
	}
	return fakeInfo{n: n, name: path.Base(n.stored), size: int64(len(n.data)), mode: m, modTime: n.modTime, id: n.id}
}

func (i fakeInfo) Name() string       { return i.name }
func (i fakeInfo) Size() int64        { return i.size }
func (i fakeInfo) ModTime() time.Time { return i.modTime }
func (i fakeInfo) IsDir() bool        { return i.mode.IsDir() }
func (i fakeInfo) Sys() any           { return i.n }
func (i fakeInfo) Mode() fs.FileMode  { return i.mode }

type fakeFile struct {
	*bytes.Reader
	info fakeInfo
}

func (f *fakeFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *fakeFile) Close() error               { return nil }

// FileID is the FileID of the file opened, whatever has its name since.
func (f *fakeFile) FileID() (syncfs.FileID, error) {
	return syncfs.FileID{Volume: 1, Index: f.info.id}, nil
}

// fakeEpoch is the modification time of what the applier creates before
// it sets one.
var fakeEpoch = time.Unix(0, 0).UTC()

// OpenFile implements syncfs.WriteFS: O_CREATE makes a regular file where
// none is found (with O_EXCL, it fails if there is one), O_TRUNC empties
// it. The file is read and written in place.
func (f *FakeFS) OpenFile(name string, flag int, perm fs.FileMode) (syncfs.RWFile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("openfile", name); err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	n, err := f.lookup(name)
	switch {
	case err == nil && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case errors.Is(err, fs.ErrNotExist) && flag&os.O_CREATE != 0:
		n = &fakeNode{typ: syncfs.TypeFile, mode: perm.Perm(), modTime: fakeEpoch}
		if err := f.create(clean(name), n); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	if n.typ != syncfs.TypeFile {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("not a regular file")}
	}
	if flag&os.O_TRUNC != 0 {
		n.data = nil
	}
	return &fakeRWFile{fs: f, n: n}, nil
}

// Mkdir implements syncfs.WriteFS.
func (f *FakeFS) Mkdir(name string, perm fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("mkdir", name); err != nil {
		return &fs.PathError{Op: "mkdir", Path: name, Err: err}
	}
	return f.create(clean(name), &fakeNode{typ: syncfs.TypeDir, mode: perm.Perm(), modTime: fakeEpoch})
}

// Chmod implements syncfs.WriteFS.
func (f *FakeFS) Chmod(name string, mode fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("chmod", name); err != nil {
		return &fs.PathError{Op: "chmod", Path: name, Err: err}
	}
	n, err := f.lookup(name)
	if err != nil {
		return err
	}
	n.mode = mode.Perm()
	return nil
}

// Chtimes implements syncfs.WriteFS: it sets the modification time.
func (f *FakeFS) Chtimes(name string, _, mtime time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("chtimes", name); err != nil {
		return &fs.PathError{Op: "chtimes", Path: name, Err: err}
	}
	n, err := f.lookup(name)
	if err != nil {
		return err
	}
	n.modTime = mtime
	return nil
}

// RemoveAll implements syncfs.WriteFS: name and what it holds go; a
// name not found is no error.
func (f *FakeFS) RemoveAll(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("remove", name); err != nil {
		return &fs.PathError{Op: "removeall", Path: name, Err: err}
	}
	n, err := f.lookup(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for k, c := range f.nodes {
		if c == n || strings.HasPrefix(c.stored, n.stored+"/") {
			delete(f.nodes, k)
		}
	}
	return nil
}

// Symlink implements syncfs.WriteFS: newname becomes a symlink to
// oldname.
func (f *FakeFS) Symlink(oldname, newname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("symlink", newname); err != nil {
		return &os.LinkError{Op: "symlink", Old: oldname, New: newname, Err: err}
	}
	return f.create(clean(newname), &fakeNode{typ: syncfs.TypeSymlink, target: oldname, mode: 0o777, modTime: fakeEpoch})
}

// SyncDir implements syncfs.WriteFS: everything is as durable as it gets
// at once; the directory must exist.
func (f *FakeFS) SyncDir(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.lookup(name)
	return err
}

// fakeRWFile is a file of a FakeFS opened by OpenFile.
type fakeRWFile struct {
	fs *FakeFS
	n  *fakeNode
}

func (w *fakeRWFile) ReadAt(p []byte, off int64) (int, error) {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	if off >= int64(len(w.n.data)) {
		return 0, io.EOF
	}
	k := copy(p, w.n.data[off:])
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

func (w *fakeRWFile) WriteAt(p []byte, off int64) (int, error) {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(w.n.data)) {
		w.n.data = append(w.n.data, make([]byte, end-int64(len(w.n.data)))...)
	}
	return copy(w.n.data[off:], p), nil
}

func (w *fakeRWFile) Truncate(size int64) error {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	if size <= int64(len(w.n.data)) {
		w.n.data = w.n.data[:size]
	} else {
		w.n.data = append(w.n.data, make([]byte, size-int64(len(w.n.data)))...)
	}
	return nil
}

func (w *fakeRWFile) Chmod(mode fs.FileMode) error {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	w.n.mode = mode.Perm()
	return nil
}

func (w *fakeRWFile) Stat() (fs.FileInfo, error) {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	return w.n.info(), nil
}

func (w *fakeRWFile) Sync() error  { return nil }
func (w *fakeRWFile) Close() error { return nil }
