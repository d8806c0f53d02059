package foldersync

import (
	"errors"
	"fmt"
	"testing"

	"github.com/baton-sync/baton/syncfs"
)

// A Published index yields, in name order, the entries changed after a
// sequence as they are in it, from chunks in memory or in the engine's
// store; once the store is closed (the engine stopped), an index whose
// chunks are there yields ErrIndexGone rather than nothing.
func TestPublishedSince(t *testing.T) {
	s := testChunkStore(t, 100)
	entry := func(i, seq int) pubEntry {
		return pubEntry{fi: syncfs.FileInfo{Name: fmt.Sprintf("f%04d", i), Size: int64(seq), Version: syncfs.Vector{}.Update("a")}, changed: uint64(seq)}
	}
	var batch []pubEntry
	for i := range 500 {
		batch = append(batch, entry(i, 10))
	}
	tree := pubTree{store: s}.with(batch)
	tree = tree.with([]pubEntry{entry(7, 11), entry(300, 11)})
	tree = tree.with([]pubEntry{entry(300, 12), entry(499, 12)})
	ix := Published{&published{session: 1, seq: 12, tree: tree}}
	read := func(since uint64) ([]string, error) {
		var names []string
		for fi, err := range ix.Since(since) {
			if err != nil {
				return names, err
			}
			names = append(names, fmt.Sprint(fi.Name, "@", fi.Size))
		}
		return names, nil
	}
	if got, err := read(10); err != nil || fmt.Sprint(got) != "[f0007@11 f0300@12 f0499@12]" {
		t.Errorf("Since(10) = %v, %v; want f0007 at 11, f0300 and f0499 at 12", got, err)
	}
	if got, err := read(11); err != nil || fmt.Sprint(got) != "[f0300@12 f0499@12]" {
		t.Errorf("Since(11) = %v, %v; want f0300 and f0499 at 12", got, err)
	}
	if got, err := read(0); err != nil || len(got) != 500 {
		t.Errorf("Since(0) = %d entries, %v; want all 500", len(got), err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := read(0); !errors.Is(err, ErrIndexGone) {
		t.Errorf("Since(0) once the store is closed = %d entries, %v; want ErrIndexGone", len(got), err)
	}
}
