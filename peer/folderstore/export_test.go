package folderstore

import "go.etcd.io/bbolt"

// SetDiskFault makes each step of d's block writes call f first, and fail
// with its error.
func SetDiskFault(d *Disk, f func(step string) error) { d.fault = f }

// SetStoreFault makes each step of s's commits call f first, and fail with
// its error.
func SetStoreFault(s *Store, f func(step string) error) { s.fault = f }

// SetReadHook makes every read of a snapshot's entries call f with its
// sequence first.
func SetReadHook(s *Store, f func(seq uint64)) { s.onRead = f }

// SetAppendChunk makes s's Appends write n entries per transaction.
func SetAppendChunk(s *Store, n int) { s.chunk = n }

// PendingEntries returns how many entries of folder are written after its
// last snapshot (an Append under way, or one that did not commit).
func PendingEntries(s *Store, folder string) (int, error) {
	n := 0
	err := s.db.View(func(tx *bbolt.Tx) error {
		fb, err := s.openFolder(tx, folder)
		if err != nil || fb == nil {
			return err
		}
		return fb.eachPending(0, func(uint64, rawEntry) error { n++; return nil })
	})
	return n, err
}
