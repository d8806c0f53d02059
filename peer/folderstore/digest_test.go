package folderstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/syncfs"
)

// Two stores that reached the same tree by different histories have the
// same tree digest for their latest snapshots (and different roots); a
// different version of one entry changes it; a tombstone does not count.
func TestTreeDigest(t *testing.T) {
	content := map[syncfs.Hash][]byte{}
	read := func(_ string, b syncfs.Block) ([]byte, error) { return content[b.Hash], nil }
	file := func(name, data, dev string, v uint64) syncfs.FileInfo {
		fi := fileOf(name, []byte(data), dev, v)
		content[fi.Blocks[0].Hash] = []byte(data)
		return fi
	}
	a1, a2, b := file("a.txt", "one", "dev1", 1), file("a.txt", "two", "dev1", 2), file("d/b.txt", "bee", "dev2", 1)
	gone := file("gone.txt", "x", "dev2", 2)
	gone.Deleted, gone.Blocks, gone.Size, gone.FileHash = true, nil, 0, syncfs.Hash{}

	latest := func(st *folderstore.Store) (folderstore.Snapshot, syncfs.Hash) {
		t.Helper()
		snaps, err := st.Snapshots("f")
		if err != nil || len(snaps) == 0 {
			t.Fatalf("snapshots: %v, %v", snaps, err)
		}
		last := snaps[len(snaps)-1]
		tree, err := st.Tree("f", last.Seq)
		if err != nil {
			t.Fatal(err)
		}
		d, err := folderstore.TreeDigest(tree)
		if err != nil {
			t.Fatal(err)
		}
		if read, err := st.TreeDigest(context.Background(), "f", last.Seq); err != nil || read != d {
			t.Errorf("the store's TreeDigest of snapshot %d = %x, %v; want %x, the digest of its Tree", last.Seq, read[:8], err, d[:8])
		}
		return last, d
	}
	// s1 saw every change; s2, rebuilt, only the outcome.
	s1, _ := openStore(t, t.TempDir())
	for i, ch := range [][]syncfs.FileInfo{{a1}, {b}, {a2, gone}} {
		if _, _, err := s1.Append("f", epoch.Add(time.Duration(i)*time.Second), ch, "dev1", read); err != nil {
			t.Fatal(err)
		}
	}
	s2, _ := openStore(t, t.TempDir())
	if _, _, err := s2.Append("f", epoch.Add(7*time.Second), []syncfs.FileInfo{a2, b}, "dev1", read); err != nil {
		t.Fatal(err)
	}
	snap1, d1 := latest(s1)
	snap2, d2 := latest(s2)
	if d1 != d2 {
		t.Errorf("TreeDigest of the same tree in two stores = %x and %x; want equal", d1[:8], d2[:8])
	}
	if snap1.Root == snap2.Root {
		t.Errorf("the two stores' latest roots are equal (%x): the test does not tell the digest from the root", snap1.Root[:8])
	}
	// s2 without a2's newer version: another tree.
	s3, _ := openStore(t, t.TempDir())
	if _, _, err := s3.Append("f", epoch, []syncfs.FileInfo{a1, b}, "dev1", read); err != nil {
		t.Fatal(err)
	}
	if _, d3 := latest(s3); d3 == d1 {
		t.Errorf("TreeDigest of a tree with an older a.txt = %x, the same as the newer tree's", d3[:8])
	}
	// The same content with another version vector is another tree too.
	other := a2
	other.Version = syncfs.Vector{Counters: []syncfs.Counter{{Device: "dev3", Value: 9}}}
	d4, err := folderstore.TreeDigest(syncfs.Snapshot{"a.txt": other, "d/b.txt": b})
	if err != nil || d4 == d1 {
		t.Errorf("TreeDigest with a.txt at another version = %x, %v; want another digest than %x", d4[:8], err, d1[:8])
	}
}
