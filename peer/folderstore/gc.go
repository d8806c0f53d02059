package folderstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/baton-sync/baton/syncfs"
)

// DefaultGrace is how long after it was last written a block that no
// snapshot references is kept by default (GCOptions.Grace): a transfer
// writing blocks for a commit not made yet has this long to make it.
const DefaultGrace = time.Hour

// Pin keeps blocks from being collected until release is called (once; a
// second call does nothing). A transfer writing a change's blocks pins
// them until the change's snapshot is committed; Append and Write pin
// theirs themselves. Pins are counted: a block pinned twice needs both
// released.
func (s *Store) Pin(hs ...syncfs.Hash) (release func()) {
	s.pinMu.Lock()
	for _, h := range hs {
		s.pins[h]++
	}
	s.pinMu.Unlock()
	done := false
	return func() {
		s.pinMu.Lock()
		defer s.pinMu.Unlock()
		if done {
			return
		}
		done = true
		for _, h := range hs {
			if s.pins[h]--; s.pins[h] <= 0 {
				delete(s.pins, h)
			}
		}
	}
}

// noteCommitted tells a collection under way that blocks were just
// referenced by a committed snapshot (after its mark read the snapshots).
func (s *Store) noteCommitted(hs []syncfs.Hash) {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	if !s.sweeping {
		return
	}
	for _, h := range hs {
		s.recent[h] = struct{}{}
	}
}

// GCOptions configures a collection.
type GCOptions struct {
	// Now is the time the collection starts (the caller's clock).
	Now time.Time
	// Grace spares an unreferenced block last written less than Grace
	// before Now, and a temporary file as young (0: DefaultGrace). It is
	// for writers that do not Pin; those that do are safe at any age.
	Grace time.Duration
}

// GCStats is what a collection did.
type GCStats struct {
	Referenced int // distinct blocks kept snapshots reference
	Deleted    int // unreferenced blocks deleted
	Spared     int // unreferenced blocks kept: pinned, just committed, or younger than the grace
	Temps      int // temporary files a crash left, removed
}

// Ager is a BlockStore that can tell when a block was last written (Put,
// including a Put of a block already held). A collection spares
// unreferenced blocks younger than its grace only in a BlockStore that is
// an Ager; in others only pinned ones.
type Ager interface {
	Written(h syncfs.Hash) (time.Time, error)
}

// TempCleaner is a BlockStore that can remove the temporary files a crash
// left behind.
type TempCleaner interface {
	CleanTemp(before time.Time) (int, error)
}

// GC deletes the blocks no snapshot of any folder references, except those
// pinned (Pin), referenced by a snapshot committed while it runs, or
// written less than the grace before opts.Now; then temporary files older
// than the grace. One collection runs at a time; commits, Appends and
// reads go on meanwhile.
//
// It marks first (every kept snapshot's blocks, read in one transaction),
// then sweeps the block store, deleting each block under the lock that
// pins take, after checking it is not pinned or newly referenced. A crash
// at any point leaves every referenced block in place, so the store
// verifies; blocks not yet deleted are collected by the next run. A
// tampered snapshot (ErrTampered) stops the collection before its sweep.
func (s *Store) GC(opts GCOptions) (GCStats, error) {
	var st GCStats
	if s.db == nil {
		return st, ErrClosed
	}
	defer s.settle()
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	cutoff := opts.Now.Add(-opts.Grace)
	s.gcRun.Lock()
	defer s.gcRun.Unlock()
	s.pinMu.Lock()
	s.sweeping, s.recent = true, map[syncfs.Hash]struct{}{}
	s.pinMu.Unlock()
	defer func() {
		s.pinMu.Lock()
		s.sweeping, s.recent = false, nil
		s.pinMu.Unlock()
	}()

	if err := s.step("gc-mark"); err != nil {
		return st, fmt.Errorf("collecting blocks: %w", err)
	}
	marked, err := s.mark()
	if err != nil {
		return st, fmt.Errorf("collecting blocks: %w", err)
	}
	st.Referenced = marked.len()
	ager, _ := s.blocks.(Ager)
	var candidates []syncfs.Hash
	err = s.blocks.List(func(h syncfs.Hash) error {
		if !marked.has(h) {
			candidates = append(candidates, h)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("collecting blocks: %w", err)
	}
	for _, h := range candidates {
		deleted, err := s.sweepOne(h, ager, cutoff)
		if err != nil {
			return st, fmt.Errorf("collecting blocks: %w", err)
		}
		if deleted {
			st.Deleted++
		} else {
			st.Spared++
		}
	}
	if tc, ok := s.blocks.(TempCleaner); ok {
		if err := s.step("gc-temp"); err != nil {
			return st, fmt.Errorf("collecting blocks: %w", err)
		}
		n, err := tc.CleanTemp(cutoff)
		st.Temps = n
		if err != nil {
			return st, fmt.Errorf("collecting blocks: %w", err)
		}
	}
	return st, nil
}

// sweepOne deletes the unreferenced block h unless it is pinned, newly
// referenced or young, under pinMu so that no Pin or commit slips between
// the check and the delete.
func (s *Store) sweepOne(h syncfs.Hash, ager Ager, cutoff time.Time) (bool, error) {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	if s.pins[h] > 0 {
		return false, nil
	}
	if _, ok := s.recent[h]; ok {
		return false, nil
	}
	if ager != nil {
		w, err := ager.Written(h)
		if errors.Is(err, ErrBlockNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !w.Before(cutoff) {
			return false, nil
		}
	}
	if err := s.step("gc-delete"); err != nil {
		return false, err
	}
	if err := s.blocks.Delete(h); err != nil {
		return false, err
	}
	return true, nil
}

// mark returns every block a snapshot of any folder references, read in
// one transaction: the block lists of snapshots of Commit and the live
// files of every entry of snapshots of Append, and of the pending entries
// of an Append under way. A snapshot that does not
// match its signed root stops the collection (ErrTampered).
func (s *Store) mark() (*blockSet, error) {
	marked := &blockSet{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEachBucket(func(name []byte) error {
			fb, err := s.openFolder(tx, string(name))
			if err != nil || fb == nil {
				return err
			}
			// The entries of an Append under way reference their blocks
			// too (not checked: marking more only keeps more).
			err = fb.eachPending(0, func(seq uint64, e rawEntry) error {
				if fi, err := e.decode(seq); err == nil {
					for _, b := range liveBlocks(fi) {
						marked.add(b.Hash)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			return fb.snaps.ForEach(func(k, v []byte) error {
				hdr, err := decodeHeader(fb.folder, k, v)
				if err != nil {
					return err
				}
				for _, h := range hdr.Blocks {
					marked.add(h)
				}
				// Checked against its root: an entry altered on disk must not
				// make the collector delete the blocks it really references.
				return s.checkSnapshot(fb, hdr, func(e rawEntry) error {
					fi, err := e.decode(hdr.Seq)
					for _, b := range liveBlocks(fi) {
						marked.add(b.Hash)
					}
					return err
				})
			})
		})
	})
	marked.compact()
	return marked, err
}

// blockSet is a set of blocks by the first 8 bytes of their hash, sorted:
// 8 bytes a block (a map of whole hashes takes about 60). Two blocks whose
// hashes share those bytes are one to it: the collector keeps both when
// one is referenced, which only keeps more.
type blockSet struct {
	keys   []uint64
	sorted int // keys[:sorted] are sorted and distinct
}

func (b *blockSet) add(h syncfs.Hash) {
	b.keys = append(b.keys, binary.BigEndian.Uint64(h[:8]))
	if len(b.keys) >= 2*max(b.sorted, 1<<16) {
		b.compact()
	}
}

// compact sorts the keys and drops repeats (a block referenced by many
// entries).
func (b *blockSet) compact() {
	slices.Sort(b.keys)
	b.keys = slices.Compact(b.keys)
	b.sorted = len(b.keys)
}

// has reports whether h (its first 8 bytes) is in the set; the set must be
// compact.
func (b *blockSet) has(h syncfs.Hash) bool {
	_, ok := slices.BinarySearch(b.keys[:b.sorted], binary.BigEndian.Uint64(h[:8]))
	return ok
}

func (b *blockSet) len() int { return b.sorted }
