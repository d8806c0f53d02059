package folderstore

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/baton-sync/baton/internal/atomicfile"
	"github.com/baton-sync/baton/syncfs"
)

// ErrBlockNotFound is returned by BlockStore.Get for a block the store does
// not hold.
var ErrBlockNotFound = errors.New("block not found")

// ErrCorruptBlock is returned when a block's content does not hash to its
// name: by Put for content that is not the named block, and by Get for a
// stored block that was altered or damaged on disk. A corrupt block is never
// returned.
var ErrCorruptBlock = errors.New("block content does not match its hash")

// BlockStore holds content-addressed blocks, each under the BLAKE3 hash of
// its content (syncfs.HashBytes). It is the storage seam: the local disk
// (Disk) is the only implementation for now; an object store can be
// another.
//
// Implementations must be safe for concurrent use and keep these promises:
//   - Put stores data under h only if HashBytes(data) == h (else an error
//     wrapping ErrCorruptBlock), and the block is durable when Put returns
//     nil. Putting a block already held is cheap and succeeds.
//   - Get returns the content only after checking its hash; a block whose
//     content no longer matches is an error wrapping ErrCorruptBlock, one
//     not held an error wrapping ErrBlockNotFound.
//   - Has reports whether a block is held, without reading it.
//   - Delete removes a block; deleting one not held succeeds.
//   - List calls fn once per held block, in no particular order, and stops
//     at fn's first error, returning it.
type BlockStore interface {
	Put(h syncfs.Hash, data []byte) error
	Get(h syncfs.Hash) ([]byte, error)
	Has(h syncfs.Hash) (bool, error)
	Delete(h syncfs.Hash) error
	List(fn func(syncfs.Hash) error) error
}

// Disk is the local-disk BlockStore: one file per block, at
// DIR/ab/abcdef… (the 64 hex digits of the hash, under a directory named by
// the first two), so that a backup tool copies the store as plain files.
//
// A block is written to a temporary file in its directory (named with a
// leading "."), fsynced, renamed to its name and the directory fsynced, so
// a crash leaves a block whole or absent. Temporary files a crash leaves
// behind are not blocks: List skips them.
type Disk struct {
	dir string
	// mu guards inflight, the temporary files of Puts under way, which
	// CleanTemp leaves whatever their age.
	mu       sync.Mutex
	inflight map[string]struct{}
	// fault, when set, is called before each step of a write with the
	// step's name; an error it returns fails the write there (tests).
	fault func(step string) error
}

// NewDisk returns the block store in dir. It does no I/O: dir and its
// subdirectories are created by the first Put that needs them.
func NewDisk(dir string) *Disk { return &Disk{dir: dir, inflight: map[string]struct{}{}} }

func (d *Disk) path(h syncfs.Hash) (shard, file string) {
	name := hex.EncodeToString(h[:])
	shard = filepath.Join(d.dir, name[:2])
	return shard, filepath.Join(shard, name)
}

func (d *Disk) step(name string) error {
	if d.fault == nil {
		return nil
	}
	return d.fault(name)
}

// Put implements BlockStore.
func (d *Disk) Put(h syncfs.Hash, data []byte) error {
	if got := syncfs.HashBytes(data); got != h {
		return fmt.Errorf("storing block %x: content hashes to %x: %w", h[:8], got[:8], ErrCorruptBlock)
	}
	shard, file := d.path(h)
	if _, err := os.Lstat(file); err == nil {
		// Held already. Mark it written now, so that a collection's grace
		// counts from this Put (see Written). Sync its directory anyway: an
		// earlier Put may have renamed it in and failed before the
		// directory was synced.
		now := time.Now()
		if err := os.Chtimes(file, now, now); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("storing block %x: %w", h[:8], err)
		}
		if err := d.syncDir(h, shard); err != nil {
			return err
		}
		return nil
	}
	if err := d.step("mkdir"); err != nil {
		return fmt.Errorf("storing block %x: %w", h[:8], err)
	}
	if err := os.MkdirAll(shard, 0o700); err != nil {
		return fmt.Errorf("storing block %x: %w", h[:8], err)
	}
	if err := d.writeTemp(h, shard, file, data); err != nil {
		return fmt.Errorf("storing block %x: %w", h[:8], err)
	}
	return d.syncDir(h, shard)
}

// writeTemp writes data to a temporary file in shard, fsyncs it and renames
// it to file; on an error it removes the temporary file.
func (d *Disk) writeTemp(h syncfs.Hash, shard, file string, data []byte) (err error) {
	if err := d.step("create"); err != nil {
		return err
	}
	d.mu.Lock()
	tmp, err := os.CreateTemp(shard, "."+filepath.Base(file)[:16]+".tmp-*")
	if err == nil {
		d.inflight[tmp.Name()] = struct{}{}
	}
	d.mu.Unlock()
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		d.mu.Lock()
		delete(d.inflight, tmp.Name())
		d.mu.Unlock()
		if !renamed {
			tmp.Close()
			// A crash runs no cleanup: tests fail this step to leave the
			// temporary file behind, as a crash would.
			if d.step("cleanup") == nil {
				os.Remove(tmp.Name())
			}
		}
	}()
	for _, s := range []struct {
		name string
		do   func() error
	}{
		{"write", func() error { _, err := tmp.Write(data); return err }},
		{"fsync", tmp.Sync},
		{"close", tmp.Close},
		{"rename", func() error { return os.Rename(tmp.Name(), file) }},
	} {
		if err := d.step(s.name); err != nil {
			return err
		}
		if err := s.do(); err != nil {
			return err
		}
	}
	renamed = true
	return nil
}

func (d *Disk) syncDir(h syncfs.Hash, shard string) error {
	if err := d.step("syncdir"); err != nil {
		return fmt.Errorf("storing block %x: %w", h[:8], err)
	}
	if err := atomicfile.SyncDir(shard); err != nil {
		return fmt.Errorf("storing block %x: %w", h[:8], err)
	}
	return nil
}

// Get implements BlockStore.
func (d *Disk) Get(h syncfs.Hash) ([]byte, error) {
	_, file := d.path(h)
	st, err := os.Lstat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading block %x: %w", h[:8], ErrBlockNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading block %x: %w", h[:8], err)
	}
	if !st.Mode().IsRegular() || st.Size() > syncfs.MaxBlockSize {
		return nil, fmt.Errorf("reading block %x: %s is not a block file (mode %v, %d bytes): %w", h[:8], file, st.Mode(), st.Size(), ErrCorruptBlock)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading block %x: %w", h[:8], err)
	}
	if got := syncfs.HashBytes(data); got != h {
		return nil, fmt.Errorf("reading block %x: %s hashes to %x: %w", h[:8], file, got[:8], ErrCorruptBlock)
	}
	return data, nil
}

// Has implements BlockStore.
func (d *Disk) Has(h syncfs.Hash) (bool, error) {
	_, file := d.path(h)
	_, err := os.Lstat(file)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("looking for block %x: %w", h[:8], err)
	}
}

// Delete implements BlockStore.
func (d *Disk) Delete(h syncfs.Hash) error {
	shard, file := d.path(h)
	if err := os.Remove(file); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("deleting block %x: %w", h[:8], err)
	}
	if err := atomicfile.SyncDir(shard); err != nil {
		return fmt.Errorf("deleting block %x: %w", h[:8], err)
	}
	return nil
}

// List implements BlockStore. Files whose names are not a block's (such as
// temporary files) are skipped.
func (d *Disk) List(fn func(syncfs.Hash) error) error {
	shards, err := os.ReadDir(d.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing blocks in %s: %w", d.dir, err)
	}
	for _, s := range shards {
		if !s.IsDir() || len(s.Name()) != 2 {
			continue
		}
		files, err := os.ReadDir(filepath.Join(d.dir, s.Name()))
		if err != nil {
			return fmt.Errorf("listing blocks in %s: %w", d.dir, err)
		}
		for _, f := range files {
			h, ok := parseBlockName(f.Name())
			if !ok || !strings.HasPrefix(f.Name(), s.Name()) || !f.Type().IsRegular() {
				continue
			}
			if err := fn(h); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseBlockName returns the hash a block file's name spells: 64 lowercase
// hex digits.
func parseBlockName(name string) (syncfs.Hash, bool) {
	var h syncfs.Hash
	if len(name) != 2*len(h) || strings.ToLower(name) != name {
		return h, false
	}
	if _, err := hex.Decode(h[:], []byte(name)); err != nil {
		return h, false
	}
	return h, true
}

// Written implements Ager: the block file's modification time, which Put
// sets, also for a block already held.
func (d *Disk) Written(h syncfs.Hash) (time.Time, error) {
	_, file := d.path(h)
	st, err := os.Lstat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, fmt.Errorf("reading block %x: %w", h[:8], ErrBlockNotFound)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("reading block %x: %w", h[:8], err)
	}
	return st.ModTime(), nil
}

// isTemp reports whether name is a temporary file of writeTemp.
func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// removeTemp removes the temporary file name unless a Put is writing it.
func (d *Disk) removeTemp(name string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.inflight[name]; ok {
		return false, nil
	}
	if err := os.Remove(name); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// CleanTemp implements TempCleaner: it removes the temporary files (of a
// Put that crashed before its rename) last modified before before, and
// returns how many it removed. The temporary file of a Put under way in
// this Disk is never removed, whatever its age.
func (d *Disk) CleanTemp(before time.Time) (int, error) {
	shards, err := os.ReadDir(d.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cleaning temporary files in %s: %w", d.dir, err)
	}
	n := 0
	for _, s := range shards {
		if !s.IsDir() || len(s.Name()) != 2 {
			continue
		}
		shard := filepath.Join(d.dir, s.Name())
		files, err := os.ReadDir(shard)
		if err != nil {
			return n, fmt.Errorf("cleaning temporary files in %s: %w", d.dir, err)
		}
		for _, f := range files {
			if !isTemp(f.Name()) || !f.Type().IsRegular() {
				continue
			}
			info, err := f.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return n, fmt.Errorf("cleaning temporary files in %s: %w", d.dir, err)
			}
			if !info.ModTime().Before(before) {
				continue
			}
			removed, err := d.removeTemp(filepath.Join(shard, f.Name()))
			if err != nil {
				return n, fmt.Errorf("cleaning temporary files in %s: %w", d.dir, err)
			}
			if removed {
				n++
			}
		}
	}
	return n, nil
}
