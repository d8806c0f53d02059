package foldersync

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/baton-sync/baton/syncfs"
)

// A hosting server's copy of a folder is one copy among several: when its
// directory is found empty and without its marker file while its stored
// Local lists files (the disk that held it was lost and replaced, or the
// directory deleted), the server's files are not taken for deleted, which
// would delete them on every device, nor is the folder stopped as emptied,
// as on a device, whose copy may be the only one: the server forgets its
// Local and takes the folder afresh from the other hosting servers and the
// member devices, as a server that never held it. Found at the start
// (lostCopy), or by a full scan while it runs (checkMarker: errCopyLost,
// and the folder starts again at once); a directory gone altogether is
// made again (remakeRoot). A device keeps ErrEmptied (marker.go).

// errCopyLost: a hosting server found its copy of the folder lost while
// it ran; the folder starts again at once, and lostCopy forgets the old
// Local.
var errCopyLost = errors.New("this server's copy of the folder is lost")

// hostedHere reports whether this host is a hosting server of the folder.
func (f *folder) hostedHere() bool {
	a := f.e.access()
	fo, ok := a.Folder(f.id)
	return ok && hosting(a, fo, f.e.self)
}

// copyLost reports whether the folder's directory is gone, or empty, on a
// hosting server whose Local lists live entries (live of them): the
// marker file is already known to be missing.
func (f *folder) copyLost(live int) bool {
	if live == 0 || !f.hostedHere() {
		return false
	}
	empty, err := emptyDir(f.root)
	return empty || errors.Is(err, fs.ErrNotExist)
}

// remakeRoot makes the folder's directory again on a hosting server that
// lost it (the server made it when it began hosting the folder).
func (f *folder) remakeRoot() error {
	if _, err := os.Lstat(f.root); !errors.Is(err, fs.ErrNotExist) || !f.hostedHere() {
		return nil
	}
	f.log.Warn("this server's directory of the folder is gone: making it again", "dir", f.root)
	if err := os.MkdirAll(f.root, 0o700); err != nil {
		return fmt.Errorf("making the folder's directory again: %w", err)
	}
	return nil
}

// lostCopy returns local, the folder's stored Local, or an empty Local if
// this host is a hosting server of the folder whose copy is lost (see
// above); then the stored Local is forgotten, the folder's next index is
// of a new session, and why is logged.
func (f *folder) lostCopy(local syncfs.Local) (syncfs.Local, error) {
	if _, err := os.Lstat(filepath.Join(f.root, MarkerFile)); err == nil {
		return local, nil
	}
	live := 0
	for _, fi := range local.All() {
		if !fi.Deleted {
			live++
		}
	}
	if !f.copyLost(live) {
		return local, nil
	}
	f.log.Warn("this server's copy of the folder is lost (its directory is empty and its marker file gone, while files were synced there): taking the folder afresh from the other hosting servers and the member devices; nothing is deleted on them",
		"dir", f.root, "entries", live)
	if err := f.e.db.DeleteFolder(f.dbKey()); err != nil {
		return local, fmt.Errorf("forgetting the lost copy's index: %w", err)
	}
	// Peers holding this host's earlier index take the next one whole.
	f.session, f.pubAll = newSession(), true
	return f.e.db.OpenLocal(f.dbKey(), f.e.cfg.localWhole)
}

// emptyDir reports whether the directory dir holds nothing (an error if
// it cannot be read).
func emptyDir(dir string) (bool, error) {
	d, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	return len(names) == 0 && errors.Is(err, io.EOF), nil
}
