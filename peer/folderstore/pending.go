package folderstore

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/baton-sync/baton/syncfs"
)

// An Append writes its entries (with their paths and refs keys) in
// transactions of at most appendChunk entries, under the sequence number
// its snapshot will have, and then commits the snapshot's header in a last
// transaction: the header is what makes the snapshot exist. Until then
// the entries are pending: every read stops at the folder's last header
// (treePlan seeks at or before a committed sequence; History, References,
// Usage and Verify skip keys of later sequences), the collector's mark
// counts their blocks as referenced, and the next Append or Commit of the
// folder, or the next Open, deletes those an Append left when it failed
// or the process died. So the memory of a large Append is bounded by the
// chunk, whatever the size of the change, and a crash still leaves the
// folder as it was or with the new snapshot, whole.

// appendChunk is how many entries Append writes per transaction, and
// appendChunkBlocks how many of their blocks (a large file's entry lists
// every block; one entry is always taken). Each block adds a key to the
// refs index, which is in hash order: a transaction's blocks each land in
// a leaf of their own, wherever in the file, and bbolt reads every leaf
// it rewrites through its map again as it commits, which maps the 64 KiB
// around each into the process (kernel fault-around) until the write is
// settled. So the mapped memory of a commit grows with its blocks: a
// thousand blocks of a million-file folder mapped 35 to 50 MiB of the
// file for a moment. A quarter of that costs about 45% more time per
// entry (each transaction is made durable).
const (
	appendChunk       = 256
	appendChunkBlocks = 256
)

// lastSeq returns the sequence of the folder's last snapshot, 0 for none.
func (f *folderTx) lastSeq() uint64 {
	k, _ := f.snaps.Cursor().Last()
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// refSeq returns the sequence a refs index key names.
func refSeq(k []byte) (uint64, bool) {
	n := len(syncfs.Hash{})
	if len(k) < n+8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[n : n+8]), true
}

// eachPending calls fn with the entries written after the folder's last
// snapshot (an Append under way, or one that did not commit), in key
// order, at most limit of them (0: all). Their bytes are valid until the
// transaction ends or the bucket changes.
func (f *folderTx) eachPending(limit int, fn func(seq uint64, e rawEntry) error) error {
	c := f.entries.Cursor()
	n := 0
	for k, v := c.Seek(seqKey(f.lastSeq() + 1)); k != nil; k, v = c.Next() {
		if limit > 0 && n == limit {
			return nil
		}
		if len(k) < 8 {
			return fmt.Errorf("entry key %x: %w", k, ErrTampered)
		}
		f.touched()
		if err := fn(binary.BigEndian.Uint64(k[:8]), rawEntry{string(k[8:]), v}); err != nil {
			return err
		}
		n++
	}
	return nil
}

// dropPending deletes folder's pending entries with their paths and refs
// keys, in transactions of at most s.chunk entries. The caller holds
// writeMu (or is Open).
func (s *Store) dropPending(folder string) error {
	found := false
	err := s.db.View(func(tx *bbolt.Tx) error {
		fb, err := s.openFolder(tx, folder)
		if err != nil || fb == nil {
			return err
		}
		return fb.eachPending(1, func(uint64, rawEntry) error { found = true; return nil })
	})
	if err != nil || !found {
		return err
	}
	for {
		more := false
		err := s.update(func(tx *bbolt.Tx) error {
			fb, err := s.openFolder(tx, folder)
			if err != nil || fb == nil {
				return err
			}
			type key struct {
				seq uint64
				fi  syncfs.FileInfo
				raw []byte
			}
			var keys []key
			err = fb.eachPending(s.chunk, func(seq uint64, e rawEntry) error {
				fi, err := e.decode(seq)
				if err != nil {
					// Not ours to trust: delete the entry and its path key;
					// refs keys it may have stay, seen by Verify.
					fi = syncfs.FileInfo{Name: e.name}
				}
				keys = append(keys, key{seq, fi, bytes.Clone(entryKey(seq, e.name))})
				return nil
			})
			if err != nil {
				return err
			}
			more = len(keys) == s.chunk
			for _, k := range keys {
				if err := fb.deleteRefs(k.seq, k.fi); err != nil {
					return err
				}
				if err := fb.entries.Delete(k.raw); err != nil {
					return err
				}
				if err := fb.paths.Delete(pathKey(k.fi.Name, k.seq)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("removing the entries of a snapshot of %q that was not committed: %w", folder, err)
		}
		if !more {
			return nil
		}
	}
}
