package syncfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
)

// FS is the file system a Scanner reads a folder through: the part of
// os.Root it uses. Names are native paths relative to the folder's root,
// "." for the root itself. Scanner.FS lets a test put a simulated file
// system (case-insensitive, normalizing, as on macOS or Windows) in place
// of the disk.
type FS interface {
	Lstat(name string) (fs.FileInfo, error)
	// ReadDir lists a directory's entries under the names the file
	// system stores, which may differ from the names they were created
	// with (macOS' HFS+ stores them in NFD).
	ReadDir(name string) ([]fs.DirEntry, error)
	Open(name string) (File, error)
	Readlink(name string) (string, error)
	Remove(name string) error
	// SameFile reports whether a and b, from Lstat or ReadDir, describe
	// the same file.
	SameFile(a, b fs.FileInfo) bool
	// FileID returns the identity of the entry name, which fi (from
	// Lstat or ReadDir) describes, without following a final symlink.
	// Where fi carries it (unix), no I/O is done; on Windows the entry is
	// opened to read it, so the scanner asks only where it would trust a
	// stat. It fails if the system has none or cannot tell.
	FileID(name string, fi fs.FileInfo) (FileID, error)
}

// File is an open file of an FS.
type File interface {
	io.Reader
	Stat() (fs.FileInfo, error)
	Close() error
}

// WriteFS is the file system an Applier writes a folder through: an FS
// and the part of os.Root the applier writes with. Applier.FS lets a test
// put a simulated file system in place of the disk, as Scanner.FS does.
type WriteFS interface {
	FS
	// OpenFile opens name with os.OpenFile's flags (the applier uses
	// O_RDWR, with O_CREATE|O_EXCL for a new temporary file).
	OpenFile(name string, flag int, perm fs.FileMode) (RWFile, error)
	Mkdir(name string, perm fs.FileMode) error
	Chmod(name string, mode fs.FileMode) error
	Chtimes(name string, atime, mtime time.Time) error
	// Rename moves oldname to newname, replacing a file there.
	Rename(oldname, newname string) error
	RemoveAll(name string) error
	// Symlink creates newname as a symbolic link to oldname.
	Symlink(oldname, newname string) error
	// SyncDir makes the creations, renames and removals of entries in
	// the directory name durable (fsync).
	SyncDir(name string) error
}

// RWFile is a file of a WriteFS opened for reading and writing.
type RWFile interface {
	io.ReaderAt
	io.WriterAt
	Stat() (fs.FileInfo, error)
	Truncate(size int64) error
	Chmod(mode fs.FileMode) error
	Sync() error
	Close() error
}

// rootFS is the FS of a directory on disk, through an os.Root.
type rootFS struct{ *os.Root }

// DirFS returns the WriteFS of the directory r is opened on, as the
// Applier uses it when FS is not set (for a WriteFS that wraps the disk).
func DirFS(r *os.Root) WriteFS { return rootFS{r} }

func (r rootFS) Open(name string) (File, error) { return r.Root.Open(name) }

func (r rootFS) OpenFile(name string, flag int, perm fs.FileMode) (RWFile, error) {
	return r.Root.OpenFile(name, flag, perm)
}

func (r rootFS) SyncDir(name string) error {
	d, err := r.Root.Open(name)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", name, err)
	}
	return nil
}

func (r rootFS) ReadDir(name string) ([]fs.DirEntry, error) {
	d, err := r.Root.Open(name)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadDir(-1)
}

func (rootFS) SameFile(a, b fs.FileInfo) bool { return os.SameFile(a, b) }

// underLink reports whether a parent directory of name, a slash path, is
// a symlink or not a directory in fsys (as CheckNoSymlinkTraversal, but
// through fsys).
func underLink(fsys FS, name string) bool {
	p := ""
	comps := strings.Split(name, "/")
	for _, c := range comps[:len(comps)-1] {
		p = filepath.Join(p, c)
		fi, err := fsys.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return false
		}
		if err != nil || fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir() {
			return true
		}
	}
	return false
}

// checkNoLinkTraversal is CheckNoSymlinkTraversal through fsys: it checks,
// with Lstat, every existing parent directory of name (a slash path), and
// fails if one is a symbolic link or not a directory.
func checkNoLinkTraversal(fsys FS, name string) error {
	return checkParents(fsys.Lstat, "", name)
}

// checkParents checks the existing parent directories of name (a slash
// path) below base with lstat: each must be a directory, not a symbolic
// link. A missing parent ends the check (it will be created).
func checkParents(lstat func(string) (fs.FileInfo, error), base, name string) error {
	comps := strings.Split(name, "/")
	p := base
	for _, c := range comps[:len(comps)-1] {
		p = filepath.Join(p, c)
		fi, err := lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("checking %q: %w", name, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: %q via %s", ErrSymlinkTraversal, name, p)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: %q via %s", ErrNotDirectoryChain, name, p)
		}
	}
	return nil
}

// recordedName returns the name under which an entry that fsys lists as
// listed (a slash path; fi is what it says of it) is recorded, given the
// Local l: the name as listed, unless it is not in NFC, not recorded, and
// its NFC form is recorded or names the same file in fsys. Then the file
// system normalizes names (macOS stores them in NFD, while other systems
// and peers mostly use NFC): recording the listed form would announce the
// NFC name deleted and the NFD one created, and peers would follow, at
// every round. Where the two forms are two files (Linux), each keeps its
// own name.
func recordedName(fsys FS, l *Local, listed string, fi fs.FileInfo) string {
	if norm.NFC.IsNormalString(listed) {
		return listed
	}
	if f, ok := l.Get(listed); ok && !f.Deleted {
		return listed
	}
	nfc := norm.NFC.String(listed)
	other, err := fsys.Lstat(filepath.FromSlash(nfc))
	if err != nil || !fsys.SameFile(fi, other) {
		return listed
	}
	return nfc
}
