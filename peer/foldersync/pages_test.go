package foldersync

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/syncfs"
)

// An index's signed pages are kept for the next peer that asks while they
// are small; a large folder's are signed again instead, and hold the same.
func TestPagesKeptOnlyWhenSmall(t *testing.T) {
	key, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dev := key.Public().ID().String()
	snap := func(n int) syncfs.Snapshot {
		s := syncfs.Snapshot{}
		for i := range n {
			name := fmt.Sprintf("dir/file%06d", i)
			s[name] = syncfs.FileInfo{Name: name, Type: syncfs.TypeDir, Version: syncfs.Vector{}.Update(dev)}
		}
		return s
	}
	for _, tc := range []struct {
		files int
		kept  bool
	}{{10, true}, {20000, false}} {
		p, _ := newPublished(nil, "f", dev, 1, 1, snap(tc.files), nil, true)
		first, err := p.pages(key, 0)
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, pg := range first {
			size += len(pg)
		}
		if kept := p.full != nil; kept != tc.kept {
			t.Errorf("%d entries (%d bytes of pages): pages kept %v; want %v", tc.files, size, kept, tc.kept)
		}
		again, err := p.pages(key, 0)
		if err != nil {
			t.Fatal(err)
		}
		var entries int
		for _, pg := range again {
			idx, _, err := syncfs.OpenIndex(pg)
			if err != nil {
				t.Fatal(err)
			}
			entries += len(idx.Files)
		}
		if entries != tc.files {
			t.Errorf("%d entries: the pages asked again hold %d", tc.files, entries)
		}
	}
}
