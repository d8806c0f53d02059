package foldersync

import (
	"errors"
	"fmt"
	"io"
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
// member devices, as a server that never held it. A device keeps
// ErrEmptied (marker.go).

// lostCopy returns local, the folder's stored Local, or an empty Local if
// this host is a hosting server of the folder whose copy is lost (see
// above); then the stored Local is forgotten, the folder's next index is
// of a new session, and why is logged.
func (f *folder) lostCopy(local syncfs.Local) (syncfs.Local, error) {
	if _, err := os.Lstat(filepath.Join(f.root, MarkerFile)); err == nil {
		return local, nil
	}
	live := 0
	for _, fi := range local.Files {
		if !fi.Deleted {
			live++
		}
	}
	if live == 0 {
		return local, nil
	}
	a := f.e.access()
	fo, ok := a.Folder(f.id)
	if !ok || !hosting(a, fo, f.e.self) {
		return local, nil
	}
	empty, err := emptyDir(f.root)
	if err != nil || !empty {
		return local, err
	}
	f.log.Warn("this server's copy of the folder is lost (its directory is empty and its marker file gone, while files were synced there): taking the folder afresh from the other hosting servers and the member devices; nothing is deleted on them",
		"dir", f.root, "entries", live)
	if err := f.e.db.DeleteFolder(f.dbKey()); err != nil {
		return local, fmt.Errorf("forgetting the lost copy's index: %w", err)
	}
	// Peers holding this host's earlier index take the next one whole.
	f.session, f.pubAll = newSession(), true
	return syncfs.NewLocal(), nil
}

// emptyDir reports whether the directory dir holds nothing.
func emptyDir(dir string) (bool, error) {
	d, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if len(names) == 0 && errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, nil
}
