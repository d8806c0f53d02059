//go:build linux

package folderstore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/baton-sync/baton/internal/boltmap/boltmaptest"
	"github.com/baton-sync/baton/syncfs"
)

// Appends of a few entries at a time, and reads of the tree and of the
// usage, do not leave the history's file resident in the process through
// its memory map (a server keeping a million files' history made 230 MiB
// of it resident).
func TestHistoryLetsGoOfMappedPages(t *testing.T) {
	dir := t.TempDir()
	st, _ := openStore(t, dir)
	path := filepath.Join(dir, "snapshots.db")
	// Every file holds the same block: one block file, and a reference
	// to it from each entry.
	data := []byte("x")
	blocks := []syncfs.Block{{Size: 1, Hash: syncfs.HashBytes(data)}}
	read := func(string, syncfs.Block) ([]byte, error) { return data, nil }
	entry := func(i int, v uint64) syncfs.FileInfo {
		return syncfs.FileInfo{Name: fmt.Sprintf("d%02d/f%06d", i%100, i), Type: syncfs.TypeFile, Size: 1, Blocks: blocks, FileHash: syncfs.FileHashOf(blocks),
			Version: syncfs.Vector{Counters: []syncfs.Counter{{Device: "dev", Value: v}}}}
	}
	const files = 20_000
	var changes []syncfs.FileInfo
	for i := range files {
		changes = append(changes, entry(i, 1))
	}
	if _, _, err := st.Append("f", epoch, changes, "dev", read); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() < 4<<20 {
			t.Fatalf("the history holds only %d bytes: the test measures nothing", fi.Size())
		}
		rss := boltmaptest.MappedRSS(t, path)
		t.Logf("after %s: %d of %d bytes resident", what, rss, fi.Size())
		if rss > fi.Size()/8 {
			t.Errorf("%s left %d of the history's %d bytes resident", what, rss, fi.Size())
		}
	}
	check("an Append of 20,000 entries")
	for i := 0; i < files; i += 97 {
		if _, _, err := st.Append("f", epoch, []syncfs.FileInfo{entry(i, 2)}, "dev", read); err != nil {
			t.Fatal(err)
		}
	}
	check("Appends of one entry here and there")
	tree, err := st.Tree("f", 0)
	if err == nil {
		tree, err = st.Tree("f", uint64(1+files/97))
	}
	if err != nil || len(tree) != files {
		t.Fatalf("Tree: %d entries, %v", len(tree), err)
	}
	check("a read of the tree")
	if u, err := st.Usage("f"); err != nil || u.Snapshots != 2+files/97 || u.Blocks != 1 {
		t.Fatalf("Usage: %+v, %v", u, err)
	}
	check("a read of the usage")
}
