package foldersync

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/syncfs"
)

// An index's signed pages are kept for the next peer that asks until
// dropPages, and are signed again, holding the same, after it.
func TestPagesKeptUntilDropped(t *testing.T) {
	key, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dev := key.Public().ID().String()
	snap := syncfs.Snapshot{}
	for i := range 20000 {
		name := fmt.Sprintf("dir/file%06d", i)
		snap[name] = syncfs.FileInfo{Name: name, Type: syncfs.TypeDir, Version: syncfs.Vector{}.Update(dev)}
	}
	p, _ := newPublished(nil, "f", dev, 1, 1, snap, nil, true)
	count := func(pages [][]byte) int {
		t.Helper()
		var n int
		for _, pg := range pages {
			idx, _, err := syncfs.OpenIndex(pg)
			if err != nil {
				t.Fatal(err)
			}
			n += len(idx.Files)
		}
		return n
	}
	first, err := p.pages(key, 0)
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.pages(key, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) < 2 || &again[0] != &first[0] {
		t.Errorf("the %d pages were not kept for the next request", len(first))
	}
	p.dropPages()
	if p.full != nil || p.deltas != nil {
		t.Errorf("dropPages kept pages")
	}
	after, err := p.pages(key, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(after); n != len(snap) {
		t.Errorf("the pages signed again hold %d entries; want %d", n, len(snap))
	}
}
