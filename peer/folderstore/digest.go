package folderstore

import (
	"encoding/binary"

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
		if fi.Deleted {
			continue
		}
		e, err := encodeEntry(fi)
		if err != nil {
			return syncfs.Hash{}, err
		}
		h.Write(binary.AppendUvarint(nil, uint64(len(e.enc))))
		h.Write(e.enc)
	}
	var out syncfs.Hash
	copy(out[:], h.Sum(nil))
	return out, nil
}
