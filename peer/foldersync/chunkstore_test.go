package foldersync

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/baton-sync/baton/syncfs"
)

// testChunkStore returns an empty store, closed at the test's end, that
// keeps the chunks of trees of more than above entries.
func testChunkStore(t *testing.T, above int) *chunkStore {
	t.Helper()
	s, err := openChunkStore(filepath.Join(t.TempDir(), "pubchunks.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.above = above
	return s
}

// storedChunks returns how many chunks s holds on disk.
func storedChunks(t *testing.T, s *chunkStore) int {
	t.Helper()
	n := 0
	err := s.b.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketChunks).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A tree past its store's limit holds none of its chunks' entries in
// memory, and once the trees that held a chunk are gone, its record goes
// at the next store: the store holds what the trees in use hold.
func TestChunkStoreLetsGoOfOldChunks(t *testing.T) {
	s := testChunkStore(t, 300)
	entry := func(i, seq int) pubEntry {
		n := fmt.Sprintf("d/f%04d", i)
		return pubEntry{fi: syncfs.FileInfo{Name: n, Size: int64(seq), Version: syncfs.Vector{}.Update("a")}, changed: uint64(seq)}
	}
	tree := pubTree{store: s}
	var batch []pubEntry
	for i := range 1000 {
		batch = append(batch, entry(i, 1))
	}
	tree = tree.with(batch[:200]) // under the limit: in memory
	inMemory := len(tree.chunks)
	tree = tree.with(batch[200:])
	for seq := 2; seq < 40; seq++ {
		tree = tree.with([]pubEntry{entry(seq*17%1000, seq), entry(seq*29%1000, seq)})
	}
	held := 0
	for _, c := range tree.chunks {
		switch {
		case c.store == nil:
			held++
		case c.data != nil:
			t.Fatal("a stored chunk holds its data in memory")
		}
	}
	if held > inMemory {
		t.Fatalf("%d chunks in memory; want at most the %d made under the limit", held, inMemory)
	}
	if got := s.get(tree.chunks[len(tree.chunks)-1].id); len(got) == 0 {
		t.Fatal("a stored chunk reads empty")
	}
	// The earlier trees are gone: their chunks' records go, once the
	// collector says so, at the next store.
	want := len(tree.chunks) - held
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		tree = tree.with([]pubEntry{entry(999, 99)}) // a store
		want = len(tree.chunks) - held
		if storedChunks(t, s) <= want+1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // the cleanups run on their own goroutine
	}
	if got := storedChunks(t, s); got > want+1 {
		t.Fatalf("the store holds %d chunks; the tree in use %d", got, want)
	}
	for e := range tree.all() {
		if e.fi.Name == "d/f0999" && e.changed != 99 {
			t.Fatalf("d/f0999 changed at %d; want 99", e.changed)
		}
	}
	runtime.KeepAlive(tree)
}

// A block index past its store's limit keeps its places on disk: every
// block of the index in use is found, wherever its place is (the tail in
// memory, the places stored whole, or the tail merged into them since),
// a block no file holds any more is not, and an index no published index
// holds any more is removed at the next store.
func TestBlockIndexOnDisk(t *testing.T) {
	s := testChunkStore(t, 0)
	files := syncfs.Snapshot{}
	hashOf := func(i, round int) syncfs.Hash {
		return syncfs.HashBytes(fmt.Appendf(nil, "%d/%d", i, round))
	}
	const n = 3000
	put := func(i, round int) {
		name := fmt.Sprintf("d%d/f%05d", i%7, i)
		blocks := []syncfs.Block{{Offset: 0, Size: 10, Hash: hashOf(i, round)}, {Offset: 10, Size: 5, Hash: hashOf(i+n, round)}}
		files[name] = syncfs.FileInfo{Name: name, Size: 15, Blocks: blocks, FileHash: syncfs.FileHashOf(blocks),
			Version: syncfs.Vector{Counters: []syncfs.Counter{{Device: "a", Value: uint64(round + 1)}}}}
	}
	for i := range n {
		put(i, 0)
	}
	p, _ := newPublished(nil, "f", "a", 7, 100, files, nil, true, s)
	if p.blocks.disk == nil || p.blocks.main != nil {
		t.Fatal("the block index is not on disk")
	}
	current := make([]int, 2*n) // the round of each block's file
	first := p.blocks
	for round := 1; round <= 4; round++ {
		var names []string
		for i := range n {
			if (i+round)%3 != 0 {
				put(i, round)
				current[i], current[i+n] = round, round
				names = append(names, fmt.Sprintf("d%d/f%05d", i%7, i))
			}
		}
		slices.Sort(names)
		p, _ = newPublished(p, "f", "a", 7, uint64(100+round), files, names, false, s)
		for i := range 2 * n {
			k := i % n
			if _, ok := p.block(hashOf(k+i/n*n, current[i])); !ok {
				t.Fatalf("round %d: block %d (of round %d) not found", round, i, current[i])
			}
			if current[i] > 0 {
				if _, ok := p.block(hashOf(k+i/n*n, current[i]-1)); ok && current[i] == round {
					t.Fatalf("round %d: block %d of round %d, no file's any more, found", round, i, current[i]-1)
				}
			}
		}
	}
	if p.blocks == first {
		t.Fatal("the block index was never made anew: the test checks no removal")
	}
	buckets := func() int {
		k := 0
		s.b.View(func(tx *bbolt.Tx) error {
			return tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
				if len(name) > 6 && string(name[:6]) == "places" {
					k++
				}
				return nil
			})
		})
		return k
	}
	first = nil
	deadline := time.Now().Add(10 * time.Second)
	for buckets() > 1 && time.Now().Before(deadline) {
		runtime.GC()
		s.put(nil) // a store: freed indexes go
		time.Sleep(10 * time.Millisecond)
	}
	if k := buckets(); k != 1 {
		t.Fatalf("%d block indexes stored; want the one in use", k)
	}
	if _, ok := p.block(hashOf(1, current[1])); !ok {
		t.Fatal("the block index in use lost its places")
	}
	runtime.KeepAlive(p)
}

// A block index made in memory moves its places to disk once it grows
// past its store's limit, and finds them there.
func TestBlockIndexGrowsOntoDisk(t *testing.T) {
	s := testChunkStore(t, 6000)
	files := syncfs.Snapshot{}
	var names []string
	add := func(from, to int) {
		names = names[:0]
		for i := from; i < to; i++ {
			name := fmt.Sprintf("f%05d", i)
			blocks := []syncfs.Block{{Size: 7, Hash: syncfs.HashBytes(fmt.Appendf(nil, "%d", i))}}
			files[name] = syncfs.FileInfo{Name: name, Size: 7, Blocks: blocks, FileHash: syncfs.FileHashOf(blocks), Version: syncfs.Vector{}.Update("a")}
			names = append(names, name)
		}
	}
	add(0, 1000)
	p, _ := newPublished(nil, "f", "a", 7, 100, files, nil, true, s)
	if p.blocks.disk != nil {
		t.Fatal("a small block index is on disk")
	}
	for round := 1; p.blocks.disk == nil; round++ {
		if round > 5 {
			t.Fatalf("the block index of %d places is still in memory", len(files))
		}
		add(round*2500, (round+1)*2500)
		p, _ = newPublished(p, "f", "a", 7, uint64(100+round), files, names, false, s)
	}
	if p.blocks.main != nil {
		t.Fatal("the block index holds its places in memory and on disk")
	}
	for n, fi := range files {
		if loc, ok := p.block(fi.Blocks[0].Hash); !ok || loc.name != n {
			t.Fatalf("the block of %s: %+v, %v", n, loc, ok)
		}
	}
}
