package folderstore

import (
	"encoding/binary"
	"testing"

	"github.com/baton-sync/baton/syncfs"
)

// TestBlockSet adds 100,000 blocks three times each (compacting on the
// way): each is in the set once, and blocks never added are not.
func TestBlockSet(t *testing.T) {
	hash := func(i uint64) syncfs.Hash {
		return syncfs.HashBytes(binary.BigEndian.AppendUint64(nil, i))
	}
	var b blockSet
	for range 3 {
		for i := range uint64(100000) {
			b.add(hash(i))
		}
	}
	b.compact()
	if b.len() != 100000 {
		t.Fatalf("%d blocks in the set; want 100000", b.len())
	}
	for i := range uint64(100000) {
		if !b.has(hash(i)) {
			t.Fatalf("block %d added and not in the set", i)
		}
	}
	for i := uint64(100000); i < 110000; i++ {
		if b.has(hash(i)) {
			t.Fatalf("block %d never added is in the set", i)
		}
	}
}
