package folderstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/baton-sync/baton/syncfs"
)

// ErrNoVersion is returned for a time before a folder's first snapshot, or
// a path no snapshot names.
var ErrNoVersion = errors.New("no version")

// Version is one version of one path in a folder's history: what a
// snapshot changed it to (a tombstone for a deletion).
type Version struct {
	Seq    uint64          // the snapshot that made it
	Time   time.Time       // when that snapshot was committed
	Device string          // the device that authored it (see Author)
	Entry  syncfs.FileInfo // the entry as it became
}

// Author returns the device that made fi's version: the one with the
// highest counter in its vector (syncfs.Vector.Update), or "" for an empty
// vector.
func Author(fi syncfs.FileInfo) string {
	var dev string
	var top uint64
	for _, c := range fi.Version.Counters {
		if c.Value > top {
			dev, top = c.Device, c.Value
		}
	}
	return dev
}

// Append records a new snapshot of folder at time at: changes are the
// entries that changed since the folder's previous snapshot (tombstones for
// deletions), author the device that made the change. read returns the
// content of a block the store does not hold yet (from the server's copy of
// the folder); a block it cannot give, or gives wrong (the file changed
// again since it was indexed), leaves its entry out of this snapshot, and
// Append returns the names left out: a later snapshot holds their newer
// version. Blocks are stored before the snapshot is committed (see Commit).
func (s *Store) Append(folder string, at time.Time, changes []syncfs.FileInfo, author string, read func(name string, b syncfs.Block) ([]byte, error)) (Snapshot, []string, error) {
	var kept []syncfs.FileInfo
	var refs []syncfs.Hash
	var skipped []string
	for _, fi := range changes {
		ok, err := s.storeBlocks(fi, read)
		if err != nil {
			return Snapshot{}, nil, fmt.Errorf("writing a snapshot of %q: %w", folder, err)
		}
		if !ok {
			skipped = append(skipped, fi.Name)
			continue
		}
		kept = append(kept, fi)
		for _, b := range liveBlocks(fi) {
			refs = append(refs, b.Hash)
		}
	}
	slices.SortFunc(kept, func(a, b syncfs.FileInfo) int { return strings.Compare(a.Name, b.Name) })
	snap, err := s.commit(Snapshot{Folder: folder, Time: at.UnixNano(), Blocks: refs, Entries: kept, Author: author})
	return snap, skipped, err
}

func liveBlocks(fi syncfs.FileInfo) []syncfs.Block {
	if fi.Deleted || fi.Type != syncfs.TypeFile {
		return nil
	}
	return fi.Blocks
}

// storeBlocks puts fi's blocks not yet held, read with read. It reports
// false if read could not give one right.
func (s *Store) storeBlocks(fi syncfs.FileInfo, read func(string, syncfs.Block) ([]byte, error)) (bool, error) {
	for _, b := range liveBlocks(fi) {
		held, err := s.blocks.Has(b.Hash)
		if err != nil {
			return false, err
		}
		if held {
			continue
		}
		data, err := read(fi.Name, b)
		if err != nil || uint32(len(data)) != b.Size || syncfs.HashBytes(data) != b.Hash {
			return false, nil
		}
		if err := s.blocks.Put(b.Hash, data); err != nil {
			return false, err
		}
	}
	return true, nil
}

// Tree returns folder's entries as of snapshot seq (tombstones included).
func (s *Store) Tree(folder string, seq uint64) (syncfs.Snapshot, error) {
	snaps, err := s.Snapshots(folder)
	if err != nil {
		return nil, err
	}
	tree := syncfs.Snapshot{}
	for _, sn := range snaps {
		if sn.Seq > seq {
			break
		}
		for _, fi := range sn.Entries {
			tree[fi.Name] = fi
		}
	}
	return tree, nil
}

// SeqAt returns the last snapshot of folder committed at or before at, or
// an error wrapping ErrNoVersion.
func (s *Store) SeqAt(folder string, at time.Time) (uint64, error) {
	snaps, err := s.Snapshots(folder)
	if err != nil {
		return 0, err
	}
	var seq uint64
	for _, sn := range snaps {
		if sn.Time > at.UnixNano() {
			break
		}
		seq = sn.Seq
	}
	if seq == 0 {
		return 0, fmt.Errorf("folder %q at %s: %w (its history starts later)", folder, at.Format(time.RFC3339), ErrNoVersion)
	}
	return seq, nil
}

// History returns the versions of p in folder, oldest first: of the file
// or symlink at p, or of every entry under the directory p ("" for the
// whole folder).
func (s *Store) History(folder, p string) ([]Version, error) {
	snaps, err := s.Snapshots(folder)
	if err != nil {
		return nil, err
	}
	var out []Version
	for _, sn := range snaps {
		for _, fi := range sn.Entries {
			if Under(fi.Name, p) {
				out = append(out, Version{Seq: sn.Seq, Time: sn.At(), Device: Author(fi), Entry: fi})
			}
		}
	}
	return out, nil
}

// Under reports whether name is p or inside the directory p ("" holds
// everything).
func Under(name, p string) bool {
	p = strings.Trim(path.Clean("/"+p), "/")
	return p == "" || name == p || strings.HasPrefix(name, p+"/")
}

// ReadFile writes the content of the live file fi to w, block by block,
// each checked against its hash (Get) before it is written.
func (s *Store) ReadFile(fi syncfs.FileInfo, w io.Writer) error {
	for _, b := range liveBlocks(fi) {
		data, err := s.blocks.Get(b.Hash)
		if err != nil {
			return fmt.Errorf("reading %s: %w", fi.Name, err)
		}
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("reading %s: %w", fi.Name, err)
		}
	}
	return nil
}

// Export writes folder's tree as of snapshot seq into dir as plain files:
// directories, files (every block checked) and symlinks; tombstones are
// not written. dir must not exist yet or be empty.
func (s *Store) Export(folder string, seq uint64, dir string) error {
	tree, err := s.Tree(folder, seq)
	if err != nil {
		return err
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("exporting %q to %s: the directory is not empty", folder, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("exporting %q: %w", folder, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("exporting %q: %w", folder, err)
	}
	defer root.Close()
	for _, fi := range tree.Sorted() {
		if fi.Deleted {
			continue
		}
		if err := exportEntry(s, root, fi); err != nil {
			return fmt.Errorf("exporting %q to %s: %w", folder, dir, err)
		}
	}
	return nil
}

func exportEntry(s *Store, root *os.Root, fi syncfs.FileInfo) error {
	name := filepath.FromSlash(fi.Name)
	if d := filepath.Dir(name); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	switch fi.Type {
	case syncfs.TypeDir:
		return root.MkdirAll(name, 0o755)
	case syncfs.TypeSymlink:
		return root.Symlink(fi.SymlinkTarget, name)
	case syncfs.TypeFile:
		f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		if err := s.ReadFile(fi, f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return root.Chtimes(name, time.Unix(0, fi.ModTime), time.Unix(0, fi.ModTime))
	}
	return nil
}
