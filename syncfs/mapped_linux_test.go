//go:build linux

package syncfs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/baton-sync/baton/internal/boltmap/boltmaptest"
)

// After a bulk read or write, a store's file does not stay resident in
// the process through its memory map.
func TestStoresLetGoOfMappedPages(t *testing.T) {
	dir := t.TempDir()
	ps, err := OpenPeerStore(filepath.Join(dir, "peers.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	db, err := OpenDB(filepath.Join(dir, "folders.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var files []FileInfo
	l := NewLocal()
	for i := range 30_000 {
		f := FileInfo{Name: fmt.Sprintf("d%02d/f%06d", i%10, i), Type: TypeFile, Version: Vector{}.Update(devA), FileHash: FileHashOf(nil)}
		files = append(files, f)
		l.Set(f)
	}
	if err := ps.Put("k", files); err != nil {
		t.Fatal(err)
	}
	if all, err := ps.All("k"); err != nil || len(all) != len(files) {
		t.Fatalf("All: %d entries, %v", len(all), err)
	}
	if err := db.PutLocal("f", l); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Local("f"); err != nil || got.Len() != len(files) {
		t.Fatalf("Local: %d entries, %v", got.Len(), err)
	}
	for _, name := range []string{"peers.db", "folders.db"} {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		rss := boltmaptest.MappedRSS(t, path)
		t.Logf("%s: %d bytes, %d resident through the map", name, fi.Size(), rss)
		if fi.Size() < 2<<20 {
			t.Fatalf("%s holds only %d bytes: the test measures nothing", name, fi.Size())
		}
		if rss > fi.Size()/8 {
			t.Errorf("%s: %d of its %d bytes stay resident through the map", name, rss, fi.Size())
		}
	}
}

// Small writes of entries here and there do not leave the store resident
// either.
func TestSmallWritesLetGoOfMappedPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "folders.db")
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := NewLocal()
	entry := func(i int, v Vector) FileInfo {
		return FileInfo{Name: fmt.Sprintf("d%02d/f%06d", i%100, i), Type: TypeFile, Version: v, FileHash: FileHashOf(nil)}
	}
	for i := range 30_000 {
		l.Set(entry(i, Vector{}.Update(devA)))
	}
	if err := db.PutLocal("f", l); err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := 0; i < 30_000; i += 7 {
		f := entry(i, Vector{}.Update(devA).Update(devA))
		l.Set(f)
		if names = append(names, f.Name); len(names) == 300 {
			if err := db.PutLocalEntries("f", l, names); err != nil {
				t.Fatal(err)
			}
			names = names[:0]
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	rss := boltmaptest.MappedRSS(t, path)
	t.Logf("%d of %d bytes resident after writes of 300 entries", rss, fi.Size())
	if rss > fi.Size()/8 {
		t.Errorf("writes of 300 entries left %d of the store's %d bytes resident", rss, fi.Size())
	}
}

// A walk of a store's summaries, whole or by name, lets go of the pages
// it read as it goes: at no point is most of the file resident.
func TestSummaryWalksLetGoOfMappedPages(t *testing.T) {
	path, ps, files := peerStoreOf(t, 30_000)
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 2<<20 {
		t.Fatalf("the store holds only %d bytes: the test measures nothing", fi.Size())
	}
	var most int64
	measure := func(i int) {
		if i%1000 == 999 {
			most = max(most, boltmaptest.MappedRSS(t, path))
		}
	}
	i := 0
	if err := ps.EachSummary("k", "", func([]byte, PeerSummary) bool { measure(i); i++; return true }); err != nil {
		t.Fatal(err)
	}
	t.Logf("EachSummary: at most %d of %d bytes resident", most, fi.Size())
	if most > fi.Size()/8 {
		t.Errorf("EachSummary: %d of the store's %d bytes resident at once", most, fi.Size())
	}
	most, i = 0, 0
	// Asked in no order.
	rand.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	if err := ps.Summaries("k", names, func(string, PeerSummary, bool) { measure(i); i++ }); err != nil {
		t.Fatal(err)
	}
	t.Logf("Summaries: at most %d of %d bytes resident", most, fi.Size())
	if most > fi.Size()/8 {
		t.Errorf("Summaries: %d of the store's %d bytes resident at once", most, fi.Size())
	}
}

// peerStoreOf returns a new peer store, and its path, holding n entries
// under the key "k", which it also returns.
func peerStoreOf(t *testing.T, n int) (string, *PeerStore, []FileInfo) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "peers.db")
	ps, err := OpenPeerStore(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	files := make([]FileInfo, 0, n)
	for i := range n {
		files = append(files, FileInfo{Name: fmt.Sprintf("d%02d/f%06d", i%10, i), Type: TypeFile, Version: Vector{}.Update(devA), FileHash: FileHashOf(nil)})
	}
	if err := ps.Put("k", files); err != nil {
		t.Fatal(err)
	}
	return path, ps, files
}
