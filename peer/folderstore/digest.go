package folderstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash"

	"github.com/zeebo/blake3"

	"github.com/baton-sync/baton/syncfs"
)

// TreeContext is the BLAKE3 key-derivation context of tree digests. It is
// fixed: changing it changes every digest.
const TreeContext = "baton 2026-12-05 folder tree digest v1"

// TreeDigest returns the digest of a folder's tree: BLAKE3 in derive-key
// mode with TreeContext over each live entry (tombstones left out) in
// name order, as a uvarint length and its canonical encoding (name, type,
// size, mode, mtime, version, blocks and hash). Unlike a snapshot's Root,
// which chains one server's snapshots and covers their times and
// sequences, it depends on the tree alone: two servers that hold the same
// entries at the same versions have the same digest, whatever their
// histories (a server that rebuilt its store holds no tombstone of what
// was deleted before, hence live entries only).
func TreeDigest(tree syncfs.Snapshot) (syncfs.Hash, error) {
	h := blake3.NewDeriveKey(TreeContext)
	for _, fi := range tree.Sorted() {
		if err := digestEntry(h, fi); err != nil {
			return syncfs.Hash{}, err
		}
	}
	return sum(h), nil
}

func digestEntry(h hash.Hash, fi syncfs.FileInfo) error {
	if fi.Deleted {
		return nil
	}
	e, err := encodeEntry(fi)
	if err != nil {
		return err
	}
	h.Write(binary.AppendUvarint(nil, uint64(len(e.enc))))
	h.Write(e.enc)
	return nil
}

func sum(h hash.Hash) syncfs.Hash {
	var out syncfs.Hash
	copy(out[:], h.Sum(nil))
	return out
}

// TreeDigest returns the TreeDigest of folder's tree as of snapshot seq,
// or an error wrapping ErrSnapshotNotFound if there is no such snapshot.
// Unlike TreeDigest(Tree(folder, seq)) it holds neither the tree nor its
// names: one read transaction walks the paths index in name order, takes
// each path's version at seq, and then checks every snapshot it took one
// from against its signed root (ErrTampered), holding only their
// sequence numbers. It stops with ctx's error when ctx is done.
func (s *Store) TreeDigest(ctx context.Context, folder string, seq uint64) (syncfs.Hash, error) {
	h := blake3.NewDeriveKey(TreeContext)
	if seq == 0 {
		return sum(h), nil
	}
	defer s.settle()
	err := s.viewSnapshot(folder, seq, func(fb *folderTx, _ Snapshot) error {
		used := map[uint64]bool{}
		n := 0
		err := fb.eachPathAt(seq, func(name string, at uint64) error {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			v := fb.entries.Get(entryKey(at, name))
			if v == nil {
				return fmt.Errorf("the paths index names %q in snapshot %d, which does not hold it: %w", name, at, ErrTampered)
			}
			fi, err := rawEntry{name, v}.decode(at)
			if err != nil {
				return err
			}
			used[at] = true
			return digestEntry(h, fi)
		})
		if err != nil {
			return err
		}
		return s.checkUsed(fb, used, nil)
	})
	if err != nil {
		return syncfs.Hash{}, fmt.Errorf("digesting the tree of %q at snapshot %d: %w", folder, seq, err)
	}
	return sum(h), nil
}
