package syncfstest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/baton-sync/baton/syncfs"
)

// FakeFS is an in-memory file system for syncfs.Scanner.FS, in the
// manner of Syncthing's lib/fs fake: case-insensitive and case-preserving
// as NTFS and APFS are by default (CaseInsensitive), and storing names in
// NFD while finding them in any normalization as macOS' HFS+ does (NFD).
// Its zero value is not usable; use NewFakeFS. It is not safe for use by
// several goroutines at once, except for reading.
type FakeFS struct {
	CaseInsensitive, NFD bool
	nodes                map[string]*fakeNode // by key of the path
}

type fakeNode struct {
	stored  string // the path as the file system stores it (slash path)
	typ     syncfs.FileType
	data    []byte
	target  string
	mode    fs.FileMode // permission bits
	modTime time.Time
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
	if dir != "" {
		n.stored = p.stored + "/" + base
	}
	f.nodes[f.key(name)] = n
	return nil
}

// WriteFile creates or replaces the file name (a slash path) with data;
// an existing entry found under name keeps its stored name.
func (f *FakeFS) WriteFile(name string, data []byte, mode fs.FileMode, modTime time.Time) error {
	if n, ok := f.nodes[f.key(name)]; ok {
		if n.typ != syncfs.TypeFile {
			return &fs.PathError{Op: "write", Path: name, Err: errors.New("not a regular file")}
		}
		n.data, n.mode, n.modTime = bytes.Clone(data), mode.Perm(), modTime
		return nil
	}
	return f.create(name, &fakeNode{typ: syncfs.TypeFile, data: bytes.Clone(data), mode: mode.Perm(), modTime: modTime})
}

// Mkdir creates the directory name.
func (f *FakeFS) Mkdir(name string, mode fs.FileMode, modTime time.Time) error {
	return f.create(name, &fakeNode{typ: syncfs.TypeDir, mode: mode.Perm(), modTime: modTime})
}

// Symlink creates name as a symlink to target.
func (f *FakeFS) Symlink(target, name string, modTime time.Time) error {
	return f.create(name, &fakeNode{typ: syncfs.TypeSymlink, target: target, mode: 0o777, modTime: modTime})
}

// SetMeta sets the permission bits and the modification time of name.
func (f *FakeFS) SetMeta(name string, mode fs.FileMode, modTime time.Time) error {
	n, err := f.lookup(name)
	if err != nil {
		return err
	}
	n.mode, n.modTime = mode.Perm(), modTime
	return nil
}

// Rename moves from to to, replacing a file there. On a case-insensitive
// file system, a name may be renamed to itself in another case: the
// stored name changes. Directories are moved with what they hold.
func (f *FakeFS) Rename(from, to string) error {
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
	var out []string
	for _, n := range f.nodes {
		out = append(out, n.stored)
	}
	slices.Sort(out)
	return out
}

// Lstat implements syncfs.FS.
func (f *FakeFS) Lstat(name string) (fs.FileInfo, error) {
	n, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	return fakeInfo{n}, nil
}

// ReadDir implements syncfs.FS: entries under their stored names.
func (f *FakeFS) ReadDir(name string) ([]fs.DirEntry, error) {
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
			out = append(out, fs.FileInfoToDirEntry(fakeInfo{n}))
		}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// Open implements syncfs.FS.
func (f *FakeFS) Open(name string) (syncfs.File, error) {
	n, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	return &fakeFile{Reader: bytes.NewReader(n.data), n: n}, nil
}

// Readlink implements syncfs.FS.
func (f *FakeFS) Readlink(name string) (string, error) {
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
	n, err := f.lookup(name)
	if err != nil {
		return err
	}
	if n.typ == syncfs.TypeDir {
		if ents, _ := f.ReadDir(name); len(ents) > 0 {
			return &fs.PathError{Op: "remove", Path: name, Err: errors.New("directory not empty")}
		}
	}
	delete(f.nodes, f.key(clean(name)))
	return nil
}

// SameFile implements syncfs.FS.
func (f *FakeFS) SameFile(a, b fs.FileInfo) bool {
	x, okA := a.Sys().(*fakeNode)
	y, okB := b.Sys().(*fakeNode)
	return okA && okB && x == y
}

type fakeInfo struct{ n *fakeNode }

func (i fakeInfo) Name() string       { return path.Base(i.n.stored) }
func (i fakeInfo) Size() int64        { return int64(len(i.n.data)) }
func (i fakeInfo) ModTime() time.Time { return i.n.modTime }
func (i fakeInfo) IsDir() bool        { return i.n.typ == syncfs.TypeDir }
func (i fakeInfo) Sys() any           { return i.n }
func (i fakeInfo) Mode() fs.FileMode {
	switch i.n.typ {
	case syncfs.TypeDir:
		return fs.ModeDir | i.n.mode
	case syncfs.TypeSymlink:
		return fs.ModeSymlink | i.n.mode
	}
	return i.n.mode
}

type fakeFile struct {
	*bytes.Reader
	n *fakeNode
}

func (f *fakeFile) Stat() (fs.FileInfo, error) { return fakeInfo{f.n}, nil }
func (f *fakeFile) Close() error               { return nil }

// Apply carries out actions on f as syncfs.Applier does on disk, in a
// model: fetched content comes from content (by file hash), and each
// action done is recorded in l. Like the applier, it refuses to write
// over an entry the Local does not record under the action's name (one
// found under another case or normalization). It returns the errors of
// the actions that failed.
func (f *FakeFS) Apply(l *syncfs.Local, actions []syncfs.Action, content func(syncfs.Hash) []byte) []error {
	var errs []error
	for _, a := range actions {
		if err := f.apply(l, a, content); err != nil {
			errs = append(errs, fmt.Errorf("%v: %w", a, err))
		}
	}
	return errs
}

func (f *FakeFS) apply(l *syncfs.Local, a syncfs.Action, content func(syncfs.Hash) []byte) error {
	mt := time.Unix(0, a.File.ModTime)
	// own reports whether what f finds under name is the entry l records
	// as name itself, or nothing.
	own := func(name string) error {
		fi, err := f.Lstat(name)
		if err != nil {
			return nil
		}
		if r, ok := l.Files[name]; ok && !r.Deleted {
			return nil
		}
		return fmt.Errorf("%s holds %s, another entry", name, fi.Name())
	}
	write := func() error {
		if err := own(a.Name); err != nil {
			return err
		}
		switch a.File.Type {
		case syncfs.TypeDir:
			if fi, err := f.Lstat(a.Name); err == nil && fi.IsDir() {
				return f.SetMeta(a.Name, fs.FileMode(a.File.Mode), mt)
			}
			_ = f.Remove(a.Name)
			return f.Mkdir(a.Name, fs.FileMode(a.File.Mode), mt)
		case syncfs.TypeSymlink:
			_ = f.Remove(a.Name)
			return f.Symlink(a.File.SymlinkTarget, a.Name, mt)
		}
		data := content(a.File.FileHash)
		if data == nil && a.File.Size > 0 {
			return errors.New("content not found")
		}
		if fi, err := f.Lstat(a.Name); err == nil && !fi.Mode().IsRegular() {
			if err := f.Remove(a.Name); err != nil {
				return err
			}
		}
		return f.WriteFile(a.Name, data, fs.FileMode(a.File.Mode), mt)
	}
	switch a.Kind {
	case syncfs.ActSkip:
		return nil
	case syncfs.ActRecord:
	case syncfs.ActDelete:
		if err := own(a.Name); err != nil {
			return err
		}
		if err := f.Remove(a.Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	case syncfs.ActMkDir, syncfs.ActFetch, syncfs.ActSymlink:
		if err := write(); err != nil {
			return err
		}
	case syncfs.ActRename:
		if err := own(a.Name); err != nil {
			return err
		}
		if err := f.Rename(a.From, a.Name); err != nil {
			return err
		}
		if err := f.SetMeta(a.Name, fs.FileMode(a.File.Mode), mt); err != nil {
			return err
		}
		l.Files[a.From] = a.Also
		delete(l.Disk, a.From)
	case syncfs.ActMeta:
		if err := f.SetMeta(a.Name, fs.FileMode(a.File.Mode), mt); err != nil {
			return err
		}
	case syncfs.ActConflict:
		if err := f.Rename(a.Name, a.ConflictName); err != nil {
			return err
		}
		l.Files[a.ConflictName] = a.Also
		delete(l.Files, a.Name)
		if err := write(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown action %v", a.Kind)
	}
	l.Files[a.Name] = a.File
	delete(l.Disk, a.Name)
	return nil
}
