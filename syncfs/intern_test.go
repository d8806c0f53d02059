package syncfs

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

// decoded returns a copy of fi that shares no memory with it, as decoding
// it again would.
func decoded(fi FileInfo) FileInfo {
	fi.Name = strings.Clone(fi.Name)
	var cs []Counter
	for _, c := range fi.Version.Counters {
		cs = append(cs, Counter{Device: strings.Clone(c.Device), Value: c.Value})
	}
	fi.Version = Vector{Counters: cs}
	if fi.Blocks != nil {
		fi.Blocks = append([]Block(nil), fi.Blocks...)
	}
	return fi
}

func sameString(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

func TestInternerShares(t *testing.T) {
	dev := "12D3KooWDevice" + strings.Repeat("x", 38)
	held := FileInfo{Name: "dir/a.txt", Type: TypeFile, Size: 3, Version: Vector{}.Update(dev),
		Blocks: []Block{{Offset: 0, Size: 3, Hash: Hash{1}}}}
	held.FileHash = FileHashOf(held.Blocks)

	var in Interner
	// The same entry, decoded: everything shared with the held one.
	got := in.Entry(decoded(held), held, true)
	if diff := cmp.Diff(held, got); diff != "" {
		t.Fatalf("Entry changed the entry (-want +got):\n%s", diff)
	}
	if !sameString(got.Name, held.Name) || &got.Blocks[0] != &held.Blocks[0] || &got.Version.Counters[0] != &held.Version.Counters[0] {
		t.Errorf("Entry of an entry equal to the held one shares name %v, blocks %v, version %v; want all shared",
			sameString(got.Name, held.Name), &got.Blocks[0] == &held.Blocks[0], &got.Version.Counters[0] == &held.Version.Counters[0])
	}

	// Newer content: the blocks and version are its own, but the device
	// ID and a single-counter version are shared between entries.
	newer := held
	newer.Version = held.Version.Update(dev)
	newer.Blocks = []Block{{Offset: 0, Size: 3, Hash: Hash{2}}}
	newer.FileHash = FileHashOf(newer.Blocks)
	other := newer
	other.Name = "dir/b.txt"
	g1 := in.Entry(decoded(newer), held, true)
	g2 := in.Entry(decoded(other), FileInfo{}, false)
	if diff := cmp.Diff(newer, g1); diff != "" {
		t.Fatalf("Entry of a newer entry (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(other, g2); diff != "" {
		t.Fatalf("Entry of an entry not held (-want +got):\n%s", diff)
	}
	if &g1.Blocks[0] == &held.Blocks[0] {
		t.Errorf("a newer entry's blocks are the held entry's")
	}
	third := decoded(other)
	third.Name, third.Version = "dir/c.txt", third.Version.Update(dev)
	g3 := in.Entry(third, FileInfo{}, false)
	if !sameString(g3.Version.Counters[0].Device, g1.Version.Counters[0].Device) {
		t.Errorf("the device ID of two versions received is not interned")
	}
	if &g1.Version.Counters[0] != &g2.Version.Counters[0] {
		t.Errorf("two entries with the same single-counter version %v do not share it", g1.Version)
	}
}
