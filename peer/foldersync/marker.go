package foldersync

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/baton-sync/baton/syncfs"
)

// ErrEmptied: the folder's directory is empty and its marker file gone,
// although files were synced in it, as when it is on a drive that is not
// mounted. The folder is not scanned (which would delete every file
// everywhere) until Rescan says the files were deleted on purpose.
var ErrEmptied = errors.New("folder directory emptied")

// MarkerFile is kept at the root of every synced folder and never synced:
// a directory without it, empty, is taken for one whose drive is not
// mounted rather than for one whose files were all deleted.
const MarkerFile = ".baton-folder"

const markerText = "This directory is a folder synced by baton. Keep this file: without it, an\nempty directory is taken for a drive that is not mounted, not for deleted files.\n"

// checkMarker fails with ErrEmptied if the marker file is gone and the
// directory empty while the Local holds live entries, unless a rescan was
// asked for with Engine.Rescan; otherwise it makes sure the marker is
// there.
func (f *folder) checkMarker() error {
	f.mu.Lock()
	force := f.acceptEmpty
	f.acceptEmpty = false
	f.mu.Unlock()
	marker := filepath.Join(f.root, MarkerFile)
	if _, err := os.Lstat(marker); err == nil {
		return nil
	}
	live := 0
	for _, fi := range f.local.All() {
		if !fi.Deleted {
			live++
		}
	}
	if f.copyLost(live) { // on a hosting server, whatever a rescan said
		return fmt.Errorf("%w: %s is empty or gone and its %s file too, but %d entries were synced there", errCopyLost, f.root, MarkerFile, live)
	}
	if !force && live > 0 {
		empty, err := emptyDir(f.root)
		if err != nil {
			return err
		}
		if empty {
			return fmt.Errorf("%w: %s is empty and its %s file is gone, but %d entries were synced there; if it is on a drive that is not mounted, mount it; if they were deleted on purpose, rescan the folder to delete them everywhere", ErrEmptied, f.root, MarkerFile, live)
		}
	}
	if err := os.WriteFile(marker, []byte(markerText), 0o644); err != nil {
		f.log.Warn("cannot write the folder's marker file", "err", err)
	}
	return nil
}

// loadIgnore reads the folder's ignore file, if any, and returns its
// patterns, which also always ignore the marker file.
func loadIgnore(root string) (*syncfs.Matcher, string, error) {
	p := filepath.Join(root, syncfs.IgnoreFile)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		m, err := syncfs.ParseIgnoreString(markerPattern)
		return m, "", err
	}
	if err != nil {
		return nil, "", err
	}
	if !fi.Mode().IsRegular() {
		return nil, "", fmt.Errorf("%s is not a regular file", syncfs.IgnoreFile)
	}
	if fi.Size() > syncfs.MaxIgnoreSize {
		return nil, "", fmt.Errorf("%s is larger than %d bytes", syncfs.IgnoreFile, syncfs.MaxIgnoreSize)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, "", err
	}
	if _, err := syncfs.ParseIgnoreString(string(b)); err != nil {
		return nil, "", fmt.Errorf("%s: %w", syncfs.IgnoreFile, err)
	}
	// The marker's pattern comes last, so that no pattern of the user's
	// brings the marker back.
	m, err := syncfs.ParseIgnoreString(string(b) + "\n" + markerPattern)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", syncfs.IgnoreFile, err)
	}
	return m, string(b), nil
}

// markerPattern ignores the marker file at the folder's root.
const markerPattern = "/" + MarkerFile + "\n"
