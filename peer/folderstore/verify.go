package folderstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/baton-sync/baton/syncfs"
)

// Verify checks the whole store: for every folder, that its snapshots form
// an unbroken chain (each one's Prev is the previous one's Root, times never
// go back), that each one's header and entries hash to its root, its root
// is signed by a trusted server key (when the store has one) and its
// evidence, if any, covers its entries; that the paths and times indexes
// hold exactly the snapshots' entries and times (else ErrTampered; the
// pending entries of an Append under way, after the last snapshot, are
// neither counted nor checked: no read returns them); and that
// every block a snapshot references is held and hashes to its name
// (ErrMissingBlock, ErrCorruptBlock). It returns every problem found,
// joined, or nil. It reads every block once.
func (s *Store) Verify() error {
	defer s.settle()
	folders, err := s.Folders()
	if err != nil {
		return err
	}
	checked := map[syncfs.Hash]error{}
	var errs []error
	for _, f := range folders {
		onRef := func(seq uint64, h syncfs.Hash) {
			err, done := checked[h]
			if !done {
				_, err = s.blocks.Get(h)
				if errors.Is(err, ErrBlockNotFound) {
					err = fmt.Errorf("block %x: %w", h[:8], ErrMissingBlock)
				}
				checked[h] = err
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("snapshot %d of %q: %w", seq, f, err))
			}
		}
		err := s.db.View(func(tx *bbolt.Tx) error { return s.verifyFolder(tx, f, onRef) })
		if err != nil {
			errs = append(errs, fmt.Errorf("verifying %q: %w", f, err))
		}
	}
	return errors.Join(errs...)
}

// verifyFolder checks folder's chain, roots, signatures, evidence and
// indexes, and calls onRef with each block its snapshots reference.
func (s *Store) verifyFolder(tx *bbolt.Tx, folder string, onRef func(uint64, syncfs.Hash)) error {
	fb, err := s.openFolder(tx, folder)
	if err != nil || fb == nil {
		return err
	}
	var prev syncfs.Hash
	var prevTime int64
	var entries, headers, refs uint64
	checkRef := func(seq uint64, h syncfs.Hash, name string, size uint32) error {
		if v := fb.refs.Get(refKey(h, seq, name)); v == nil || !bytes.Equal(v, sizeValue(size)) {
			return fmt.Errorf("block %x of %q in snapshot %d is missing from the refs index: %w", h[:8], name, seq, ErrTampered)
		}
		refs++
		return nil
	}
	c := fb.snaps.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		hdr, err := decodeHeader(folder, k, v)
		if err != nil {
			return err
		}
		if hdr.Prev != prev {
			return fmt.Errorf("snapshot %d chains to %x, the previous root is %x: %w", hdr.Seq, hdr.Prev[:8], prev[:8], ErrTampered)
		}
		if headers > 0 && hdr.Time < prevTime {
			return fmt.Errorf("snapshot %d is dated before its predecessor: %w", hdr.Seq, ErrTampered)
		}
		if fb.times.Get(timeKey(hdr.Time, hdr.Seq)) == nil {
			return fmt.Errorf("snapshot %d is missing from the times index: %w", hdr.Seq, ErrTampered)
		}
		if !hdr.Delta {
			for _, h := range hdr.Blocks {
				onRef(hdr.Seq, h)
				if err := checkRef(hdr.Seq, h, "", 0); err != nil {
					return err
				}
			}
		}
		var indexErr error
		err = s.checkSnapshot(fb, hdr, func(e rawEntry) error {
			if fb.paths.Get(pathKey(e.name, hdr.Seq)) == nil && indexErr == nil {
				indexErr = fmt.Errorf("entry %q of snapshot %d is missing from the paths index: %w", e.name, hdr.Seq, ErrTampered)
			}
			fi, err := e.decode(hdr.Seq)
			if err != nil {
				return err
			}
			seen := map[syncfs.Hash]bool{}
			for _, b := range liveBlocks(fi) {
				onRef(hdr.Seq, b.Hash)
				if seen[b.Hash] {
					continue
				}
				seen[b.Hash] = true
				if err := checkRef(hdr.Seq, b.Hash, fi.Name, b.Size); err != nil && indexErr == nil {
					indexErr = err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if indexErr != nil {
			return indexErr
		}
		if !hdr.Delta && hdr.Count > 0 {
			return fmt.Errorf("snapshot %d of Commit holds entries: %w", hdr.Seq, ErrTampered)
		}
		prev, prevTime = hdr.Root, hdr.Time
		headers++
		entries += hdr.Count
	}
	// The indexes hold nothing more: counts match, and every entry belongs
	// to a snapshot (checked above entry by entry). Keys of sequences
	// after the last snapshot are an Append's under way (pending.go), not
	// counted.
	last := fb.lastSeq()
	entrySeq := func(k []byte) (uint64, bool) {
		if len(k) < 8 {
			return 0, false
		}
		return binary.BigEndian.Uint64(k[:8]), true
	}
	pathSeq := func(k []byte) (uint64, bool) { _, seq, ok := splitPathKey(k); return seq, ok }
	timeSeq := func([]byte) (uint64, bool) { return 0, true }
	for _, cnt := range []struct {
		name string
		b    *bbolt.Bucket
		seq  func([]byte) (uint64, bool)
		want uint64
	}{{"entries", fb.entries, entrySeq, entries}, {"paths", fb.paths, pathSeq, entries}, {"times", fb.times, timeSeq, headers}, {"refs", fb.refs, refSeq, refs}} {
		var n uint64
		c := cnt.b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if seq, ok := cnt.seq(k); !ok || seq <= last {
				n++
			}
		}
		if n != cnt.want {
			return fmt.Errorf("the %s index holds %d keys, the snapshots %d: %w", cnt.name, n, cnt.want, ErrTampered)
		}
	}
	tc := fb.times.Cursor()
	for k, _ := tc.First(); k != nil; k, _ = tc.Next() {
		if len(k) != 16 || fb.snaps.Get(k[8:]) == nil {
			return fmt.Errorf("times index key %x names no snapshot: %w", k, ErrTampered)
		}
	}
	return nil
}
