package syncfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"
)

// Beside a folder's stored Local, OpenLocal keeps two indexes of the
// stored entries, so that a plan looks up what it needs of a Local held
// past its limit instead of walking it (checkClashes, fillBlocks):
//
//   - bucketBlocks: for each live file and each distinct block of it, a
//     key of the block's hash and the file's name, whose value is the
//     block's first offset in the file (varint) and its size (uvarint);
//   - bucketCanon: for each entry, a key of Canonical(name), a zero byte
//     and the name, with no value.
//
// Flush keeps them with the entries it writes. PutLocal and
// PutLocalEntries do not: they remove keyIndexed, and the next OpenLocal
// makes the indexes anew.
var (
	bucketBlocks = []byte("lblocks")
	bucketCanon  = []byte("lcanon")
	keyIndexed   = []byte("lindexed")
)

// localIndexes are a folder's index buckets, made if missing.
type localIndexes struct{ blocks, canon *bbolt.Bucket }

func openIndexes(fb *bbolt.Bucket) (localIndexes, error) {
	bb, err := fb.CreateBucketIfNotExists(bucketBlocks)
	if err != nil {
		return localIndexes{}, err
	}
	cb, err := fb.CreateBucketIfNotExists(bucketCanon)
	if err != nil {
		return localIndexes{}, err
	}
	return localIndexes{bb, cb}, nil
}

func canonKey(name string) []byte {
	return append(append([]byte(Canonical(name)), 0), name...)
}

func blockKey(h Hash, name string) []byte {
	return append(h[:len(h):len(h)], name...)
}

// firstBlocks returns f's distinct blocks, each at its first offset.
func firstBlocks(f *FileInfo) []Block {
	if f.Deleted || f.Type != TypeFile {
		return nil
	}
	out := make([]Block, 0, len(f.Blocks))
	for _, b := range f.Blocks {
		if !slices.ContainsFunc(out, func(o Block) bool { return o.Hash == b.Hash }) {
			out = append(out, b)
		}
	}
	return out
}

// index updates ix for name, stored as old (nil: not stored) and now as
// f (nil: removed).
func (ix localIndexes) index(name string, old *storedEntry, f *FileInfo) error {
	if old != nil && f != nil && slices.Equal(firstBlocks(&old.File), firstBlocks(f)) {
		return nil // a stat, a version or a mode changed: nothing indexed did
	}
	if old != nil {
		for _, b := range firstBlocks(&old.File) {
			if err := ix.blocks.Delete(blockKey(b.Hash, name)); err != nil {
				return err
			}
		}
	}
	switch {
	case f == nil && old != nil:
		if err := ix.canon.Delete(canonKey(name)); err != nil {
			return err
		}
	case f != nil && old == nil:
		if err := ix.canon.Put(canonKey(name), nil); err != nil {
			return err
		}
	}
	if f == nil {
		return nil
	}
	for _, b := range firstBlocks(f) {
		// A new value each: bbolt holds it until the transaction ends.
		v := binary.AppendVarint(nil, b.Offset)
		v = binary.AppendUvarint(v, uint64(b.Size))
		if err := ix.blocks.Put(blockKey(b.Hash, name), v); err != nil {
			return err
		}
	}
	return nil
}

// makeIndexes makes folder's indexes anew from its stored entries, a
// transaction of maxTxEntries entries at a time, and marks them made.
func (db *DB) makeIndexes(folder string) error {
	var after []byte
	for {
		done := false
		err := db.b.Update(func(tx *bbolt.Tx) error {
			fb, err := folderBucket(tx, folder, true)
			if err != nil {
				return err
			}
			if after == nil {
				for _, b := range [][]byte{bucketBlocks, bucketCanon} {
					if err := fb.DeleteBucket(b); err != nil && err != bbolt.ErrBucketNotFound {
						return err
					}
				}
			}
			ix, err := openIndexes(fb)
			if err != nil {
				return err
			}
			lb, err := fb.CreateBucketIfNotExists(bucketLocal)
			if err != nil {
				return err
			}
			c := lb.Cursor()
			k, v := seekAfter(c, after)
			for i := 0; k != nil && i < maxTxEntries; k, v = c.Next() {
				db.rel.Touched(tx)
				e, _, err := decodeStored(k, v)
				if err != nil {
					return err
				}
				if err := ix.index(e.File.Name, nil, &e.File); err != nil {
					return err
				}
				after = bytes.Clone(k)
				i++
			}
			if k == nil {
				done = true
				return fb.Put(keyIndexed, []byte{1})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("indexing the local index of folder %s: %w", folder, err)
		}
		if done {
			return nil
		}
	}
}

// indexedLocal returns the table of local if it is a Local held past its
// limit, with indexes to look things up in rather than walking it; nil
// otherwise.
func indexedLocal(local Entries) *localTable {
	if l, ok := local.(*Local); ok && l.t != nil && l.t.st != nil && !l.t.st.whole {
		return l.t
	}
	return nil
}

// sizedBlock is a block known by its hash and size, as a plan copies it.
type sizedBlock struct {
	hash Hash
	size uint32
}

// blockHolders calls fn, in no particular order, with every block of
// want, every live file of t (not one of skip) that holds it, and its
// first offset there: one read of the block index, and a look at what
// changed since the last Flush.
func (t *localTable) blockHolders(want map[sizedBlock]bool, skip map[string]bool, fn func(b sizedBlock, name string, off int64)) {
	type hit struct {
		b    sizedBlock
		name string
		off  int64
	}
	var hits []hit
	s := t.st
	err := s.db.b.View(func(tx *bbolt.Tx) error {
		fb, err := folderBucket(tx, s.folder, false)
		if err != nil || fb == nil {
			return err
		}
		bb := fb.Bucket(bucketBlocks)
		if bb == nil {
			return nil
		}
		c := bb.Cursor()
		for b := range want {
			s.db.rel.Touched(tx)
			h := b.hash
			for k, v := c.Seek(h[:]); len(k) >= len(h) && bytes.Equal(k[:len(h)], h[:]); k, v = c.Next() {
				off, n := binary.Varint(v)
				sz, m := binary.Uvarint(v[max(n, 0):])
				if n <= 0 || m <= 0 {
					return fmt.Errorf("%w: block index entry of %q", ErrBadDB, k[len(h):])
				}
				if uint32(sz) == b.size {
					hits = append(hits, hit{b, string(k[len(h):]), off})
				}
			}
		}
		return nil
	})
	if err != nil {
		s.fail(fmt.Errorf("reading the block index of folder %s: %w", s.folder, err))
		return
	}
	for _, h := range hits {
		if _, changed := s.dirty[h.name]; !changed && !skip[h.name] {
			fn(h.b, h.name, h.off)
		}
	}
	// What changed since the last Flush, as it is now (the other names
	// the map holds are as stored).
	for n := range s.dirty {
		v := t.m[n]
		if skip[n] || !packedHasFile(v) {
			continue
		}
		f := t.unpackFile(n, v)
		for _, b := range firstBlocks(&f) {
			if k := (sizedBlock{b.Hash, b.Size}); want[k] {
				fn(k, n, b.Offset)
			}
		}
	}
}

// sameCanonical returns, for each canonical form of wanted, the names of
// t's entries (tombstones too) of that form.
func (t *localTable) sameCanonical(wanted []string) map[string][]string {
	out := map[string][]string{}
	s := t.st
	err := s.db.b.View(func(tx *bbolt.Tx) error {
		fb, err := folderBucket(tx, s.folder, false)
		if err != nil || fb == nil {
			return err
		}
		cb := fb.Bucket(bucketCanon)
		if cb == nil {
			return nil
		}
		cur := cb.Cursor()
		for _, c := range wanted {
			s.db.rel.Touched(tx)
			prefix := append([]byte(c), 0)
			for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
				if n := string(k[len(prefix):]); !s.changed(n) {
					out[c] = append(out[c], n)
				}
			}
		}
		return nil
	})
	if err != nil {
		s.fail(fmt.Errorf("reading the names index of folder %s: %w", s.folder, err))
		return nil
	}
	// Those changed since the last Flush, as they are now.
	want := make(map[string]bool, len(wanted))
	for _, c := range wanted {
		want[c] = true
	}
	for n := range s.dirty {
		if v := t.m[n]; packedHasFile(v) {
			if c := Canonical(n); want[c] {
				out[c] = append(out[c], n)
			}
		}
	}
	return out
}

// changed reports whether name changed since the last Flush.
func (s *localStore) changed(name string) bool {
	_, ok := s.dirty[name]
	return ok
}
