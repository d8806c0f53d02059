package foldersync

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/baton-sync/baton/syncfs"
)

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
	s, err := openChunkStore(filepath.Join(t.TempDir(), "pubchunks.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.above = 300
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
