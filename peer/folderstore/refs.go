package folderstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/baton-sync/baton/syncfs"
)

// The refs index (per folder: block hash ‖ sequence ‖ entry name → the
// block's size) says which of a folder's kept snapshots reference a block.
// It is kept with the entries in every transaction that writes them
// (commit, Prune), and Verify checks that it holds exactly the snapshots'
// references. It is not covered by the roots: it answers References and
// Usage, never what a read returns.

// References reports, for each of hs, whether a kept snapshot of folder
// references it: one seek per hash in the refs index, in one read
// transaction. A folder with no snapshots references nothing.
func (s *Store) References(folder string, hs ...syncfs.Hash) ([]bool, error) {
	if s.db == nil {
		return nil, ErrClosed
	}
	defer s.settle()
	out := make([]bool, len(hs))
	err := s.db.View(func(tx *bbolt.Tx) error {
		fb, err := s.openFolder(tx, folder)
		if err != nil || fb == nil {
			return err
		}
		last := fb.lastSeq()
		c := fb.refs.Cursor()
		for i, h := range hs {
			// A block's keys are in sequence order: the first is of a
			// kept snapshot unless the block is only pending's.
			k, _ := c.Seek(h[:])
			fb.touched()
			seq, ok := refSeq(k)
			out[i] = ok && bytes.HasPrefix(k, h[:]) && seq <= last
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("looking up blocks of %q in %s: %w", folder, s.path, err)
	}
	return out, nil
}

// Usage is what a folder's kept snapshots hold in the store.
type Usage struct {
	Snapshots int       // kept snapshots
	Oldest    time.Time // the first kept snapshot's time (zero: none)
	Latest    time.Time // the last one's
	Blocks    int       // distinct blocks they reference
	// Bytes is the size of those blocks: the disk the folder's history
	// would free if it were removed, less the blocks other folders share.
	// Blocks of snapshots of Commit, of unknown size, count 0.
	Bytes int64
}

// Usage returns what folder's kept snapshots hold. It reads the folder's
// snapshot headers and its refs index in one read transaction, holding
// nothing that grows with them; callers that ask while a read is under
// way share it, and later ones take its result while nothing was written
// since it began, or, after a read of 50 ms or more, for 20 times as long
// as it took (usageMemo).
func (s *Store) Usage(folder string) (Usage, error) {
	if s.db == nil {
		return Usage{}, ErrClosed
	}
	return s.usage.get(folder, &s.gen, s.readUsage)
}

func (s *Store) readUsage(folder string) (Usage, error) {
	var u Usage
	defer s.settle()
	err := s.db.View(func(tx *bbolt.Tx) error {
		fb, err := s.openFolder(tx, folder)
		if err != nil || fb == nil {
			return err
		}
		c := fb.snaps.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			fb.touched()
			hdr, err := decodeHeader(folder, k, v)
			if err != nil {
				return err
			}
			if u.Snapshots == 0 {
				u.Oldest = hdr.At()
			}
			u.Latest = hdr.At()
			u.Snapshots++
		}
		var last []byte
		lastSeq := fb.lastSeq()
		rc := fb.refs.Cursor()
		for k, v := rc.First(); k != nil; k, v = rc.Next() {
			fb.touched()
			seq, ok := refSeq(k)
			if !ok || len(v) != 4 {
				return fmt.Errorf("refs index key %x: %w", k, ErrTampered)
			}
			if seq > lastSeq {
				continue // pending: an Append under way
			}
			h := k[:len(syncfs.Hash{})]
			if bytes.Equal(h, last) {
				continue
			}
			last = append(last[:0], h...)
			u.Blocks++
			u.Bytes += int64(binary.BigEndian.Uint32(v))
		}
		return nil
	})
	if err != nil {
		return Usage{}, fmt.Errorf("reading the usage of %q in %s: %w", folder, s.path, err)
	}
	return u, nil
}
