package foldersync

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"

	"github.com/baton-sync/baton/syncfs"
)

// testStores returns the stores a tree is tested with: none (every chunk
// in memory), and stores that keep the chunks of trees of more than 0 and
// 100 entries.
func testStores(t *testing.T) map[string]*chunkStore {
	out := map[string]*chunkStore{"in memory": nil}
	for _, above := range []int{0, 100} {
		out[fmt.Sprintf("stored above %d", above)] = testChunkStore(t, above)
	}
	return out
}

// A pubTree holds what a map would, in name order, and an older tree is
// left as it was by the changes made after it; whether its chunks are in
// memory or in a store.
func TestPubTreeMatchesMap(t *testing.T) {
	for name, store := range testStores(t) {
		t.Run(name, func(t *testing.T) { testPubTreeMatchesMap(t, store) })
	}
}

func testPubTreeMatchesMap(t *testing.T, store *chunkStore) {
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string]uint64{}
	tree := pubTree{store: store}
	type version struct {
		tree  pubTree
		model map[string]uint64
	}
	var history []version
	for seq := uint64(1); seq <= 60; seq++ {
		size := rng.IntN(20) + 1
		if seq%10 == 1 {
			size = 700 // a large batch, split in several chunks
		}
		byName := map[string]pubEntry{}
		for range size {
			n := fmt.Sprintf("d%d/f%04d", rng.IntN(5), rng.IntN(2000))
			byName[n] = pubEntry{fi: syncfs.FileInfo{Name: n}, changed: seq}
		}
		var changes []pubEntry
		for _, n := range slices.Sorted(maps.Keys(byName)) {
			changes = append(changes, byName[n])
			model[n] = seq
		}
		tree = tree.with(changes)
		history = append(history, version{tree, maps.Clone(model)})
	}
	for i, v := range history {
		checkTree(t, fmt.Sprintf("version %d", i+1), v.tree, v.model)
	}
	last := history[len(history)-1]
	for _, since := range []uint64{0, 1, 30, 59, 60} {
		var got []string
		for e := range last.tree.since(since) {
			got = append(got, e.fi.Name)
		}
		var want []string
		for _, n := range slices.Sorted(maps.Keys(last.model)) {
			if last.model[n] > since {
				want = append(want, n)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("since(%d) = %d names; want %d", since, len(got), len(want))
		}
	}
}

func checkTree(t *testing.T, what string, tree pubTree, model map[string]uint64) {
	t.Helper()
	var names []string
	for e := range tree.all() {
		names = append(names, e.fi.Name)
		if e.changed != model[e.fi.Name] {
			t.Errorf("%s: %s changed at %d; want %d", what, e.fi.Name, e.changed, model[e.fi.Name])
		}
	}
	if want := slices.Sorted(maps.Keys(model)); !slices.Equal(names, want) {
		t.Fatalf("%s: tree holds %d names (sorted: %v); want %d", what, len(names), slices.IsSorted(names), len(want))
	}
	if tree.len() != len(model) {
		t.Errorf("%s: len() = %d; want %d", what, tree.len(), len(model))
	}
	for n, seq := range model {
		if e, ok := tree.get(n); !ok || e.changed != seq {
			t.Errorf("%s: get(%s) = %d, %v; want %d, true", what, n, e.changed, ok, seq)
		}
	}
	if _, ok := tree.get("zz/absent"); ok {
		t.Errorf("%s: get of an absent name found it", what)
	}
	for i, c := range tree.chunks {
		if n := len(c.entries()); n == 0 || n > chunkMax || n != c.n {
			t.Errorf("%s: chunk %d holds %d entries, says %d", what, i, n, c.n)
		}
	}
}

// A published index made from the previous one and the names that changed
// equals one made from every entry, blocks and counts included.
func TestNewPublishedIncremental(t *testing.T) {
	files := syncfs.Snapshot{}
	put := func(name string, content int, v uint64) {
		h := syncfs.Hash{byte(content), byte(content >> 8)}
		files[name] = syncfs.FileInfo{Name: name, Size: 10, FileHash: h, Version: syncfs.Vector{Counters: []syncfs.Counter{{Device: "a", Value: v}}},
			Blocks: []syncfs.Block{{Offset: 0, Size: 10, Hash: h}}}
	}
	for i := range 300 {
		put(fmt.Sprintf("f%03d", i), i, 1)
	}
	p1, changed := newPublished(nil, "f", "a", 7, 100, files, nil, false, nil)
	if len(changed) != 300 || p1.files != 300 || p1.bytes != 3000 {
		t.Fatalf("first index: %d changed, %d files, %d bytes; want 300, 300, 3000", len(changed), p1.files, p1.bytes)
	}
	put("f010", 1000, 2)                                                                                                                      // new content
	files["f020"] = syncfs.FileInfo{Name: "f020", Deleted: true, Version: syncfs.Vector{Counters: []syncfs.Counter{{Device: "a", Value: 2}}}} // deleted
	p2, changed := newPublished(p1, "f", "a", 7, 101, files, []string{"f010", "f020", "f030"}, false, nil)
	if want := []string{"f010", "f020"}; !slices.Equal(changed, want) {
		t.Fatalf("changed = %v; want %v", changed, want)
	}
	if p2.files != 299 || p2.bytes != 2990 || p2.base != 100 {
		t.Errorf("second index: %d files, %d bytes, base %d; want 299, 2990, 100", p2.files, p2.bytes, p2.base)
	}
	if _, ok := p2.block(syncfs.Hash{10}); ok {
		t.Errorf("the second index serves a block its file no longer holds")
	}
	if loc, ok := p1.block(syncfs.Hash{10}); !ok || loc.name != "f010" {
		t.Errorf("the first index lost its block: %+v, %v", loc, ok)
	}
	if loc, ok := p2.block(syncfs.Hash{byte(1000 & 0xff), byte(1000 >> 8)}); !ok || loc.name != "f010" {
		t.Errorf("the second index does not serve the new block: %+v, %v", loc, ok)
	}
	if _, ok := p1.block(syncfs.Hash{byte(1000 & 0xff), byte(1000 >> 8)}); ok {
		t.Errorf("the first index serves a block of a later one")
	}
	var delta []string
	for e := range p2.tree.since(100) {
		delta = append(delta, e.fi.Name)
	}
	if want := []string{"f010", "f020"}; !slices.Equal(delta, want) {
		t.Errorf("delta since 100 = %v; want %v", delta, want)
	}
	if p, _ := newPublished(p2, "f", "a", 7, 102, files, []string{"f010"}, false, nil); p != nil {
		t.Errorf("an index with nothing changed was made")
	}
	full, _ := newPublished(p2, "f", "a", 7, 102, files, nil, true, nil)
	if full != nil {
		t.Errorf("comparing everything found a change that is not there")
	}
}

// An empty folder is published too: peers learn it has nothing.
func TestNewPublishedEmpty(t *testing.T) {
	p, _ := newPublished(nil, "f", "a", 7, 100, syncfs.Snapshot{}, nil, true, nil)
	if p == nil || p.tree.len() != 0 {
		t.Fatalf("newPublished of an empty folder = %v; want an empty index", p)
	}
}

// The block index finds every block by its whole hash: two hashes that
// share the bytes it is keyed by are told apart, and a block held by
// several files is still found once the first of them no longer holds it.
func TestBlockIndexPlaces(t *testing.T) {
	var a, b syncfs.Hash // the same first 8 bytes
	a[0], b[0], a[20], b[20] = 7, 7, 1, 2
	files := syncfs.Snapshot{}
	put := func(name string, h syncfs.Hash, v uint64) {
		files[name] = syncfs.FileInfo{Name: name, Size: 10, FileHash: h, Version: syncfs.Vector{Counters: []syncfs.Counter{{Device: "a", Value: v}}},
			Blocks: []syncfs.Block{{Offset: 0, Size: 10, Hash: h}}}
	}
	put("x1", a, 1)
	put("x2", b, 1)
	put("x3", a, 1)
	p1, _ := newPublished(nil, "f", "a", 7, 100, files, nil, false, nil)
	if loc, ok := p1.block(a); !ok || loc.name != "x1" && loc.name != "x3" {
		t.Errorf("block a: %+v, %v; want in x1 or x3", loc, ok)
	}
	if loc, ok := p1.block(b); !ok || loc.name != "x2" {
		t.Errorf("block b: %+v, %v; want in x2", loc, ok)
	}
	// Both files of a deleted but x3: a is found there.
	var c syncfs.Hash
	c[0] = 9
	put("x1", c, 2)
	p2, _ := newPublished(p1, "f", "a", 7, 101, files, []string{"x1"}, false, nil)
	put("x3", c, 2)
	put("x1", a, 3)
	p3, _ := newPublished(p2, "f", "a", 7, 102, files, []string{"x1", "x3"}, false, nil)
	if loc, ok := p2.block(a); !ok || loc.name != "x3" {
		t.Errorf("block a after x1 changed: %+v, %v; want in x3", loc, ok)
	}
	if loc, ok := p3.block(a); !ok || loc.name != "x1" {
		t.Errorf("block a after x3 changed and x1 took it back: %+v, %v; want in x1", loc, ok)
	}
	if loc, ok := p3.block(b); !ok || loc.name != "x2" {
		t.Errorf("block b at the end: %+v, %v; want in x2", loc, ok)
	}
}

// Over random sequences of published indexes, each finds every block its
// live files hold, at a place that holds it, and none that only earlier or
// later indexes hold: through adds, merges of the block index and its
// remaking when stale places outnumber the live ones.
func TestBlockIndexRandom(t *testing.T) {
	for name, store := range testStores(t) {
		t.Run(name, func(t *testing.T) { testBlockIndexRandom(t, store) })
	}
}

func testBlockIndexRandom(t *testing.T, store *chunkStore) {
	seeds := uint64(6)
	if store != nil {
		seeds = 2 // each lookup reads the store: a few times the time
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 11))
		files := syncfs.Snapshot{}
		hash := func() syncfs.Hash {
			var h syncfs.Hash
			// Few distinct first bytes: some hashes share a key.
			h[0], h[1], h[9] = byte(rng.IntN(4)), byte(rng.IntN(64)), byte(rng.IntN(256))
			h[20] = byte(rng.IntN(256))
			return h
		}
		var pubs []*published
		var snaps []syncfs.Snapshot
		var prev *published
		every := map[syncfs.Hash]bool{} // every block of every round
		for round := range 20 {
			var names []string
			for range 1 + rng.IntN(150) {
				n := fmt.Sprintf("d/f%03d", rng.IntN(200))
				names = append(names, n)
				v := syncfs.Vector{Counters: []syncfs.Counter{{Device: "a", Value: uint64(round + 1)}}}
				if rng.IntN(5) == 0 {
					files[n] = syncfs.FileInfo{Name: n, Deleted: true, Version: v}
					continue
				}
				var blocks []syncfs.Block
				off := int64(0)
				for range 1 + rng.IntN(4) {
					sz := uint32(1 + rng.IntN(100))
					blocks = append(blocks, syncfs.Block{Offset: off, Size: sz, Hash: hash()})
					every[blocks[len(blocks)-1].Hash] = true
					off += int64(sz)
				}
				files[n] = syncfs.FileInfo{Name: n, Size: off, Blocks: blocks, FileHash: syncfs.FileHashOf(blocks), Version: v}
			}
			slices.Sort(names)
			names = slices.Compact(names)
			p, _ := newPublished(prev, "f", "a", 7, uint64(100+round), files, names, false, store)
			if p == nil {
				continue
			}
			prev = p
			pubs = append(pubs, p)
			snaps = append(snaps, maps.Clone(files))
		}
		for i, p := range pubs {
			live := map[syncfs.Hash]bool{}
			for _, fi := range snaps[i] {
				if fi.Deleted {
					continue
				}
				for _, b := range fi.Blocks {
					live[b.Hash] = true
					loc, ok := p.block(b.Hash)
					if !ok {
						t.Fatalf("seed %d, index %d: block %x of %s not found", seed, i, b.Hash[:10], fi.Name)
					}
					held, _ := p.get(loc.name)
					j := slices.IndexFunc(held.fi.Blocks, func(hb syncfs.Block) bool { return hb.Offset == loc.offset })
					if held.fi.Deleted || j < 0 || held.fi.Blocks[j].Hash != b.Hash || held.fi.Blocks[j].Size != loc.size {
						t.Fatalf("seed %d, index %d: block %x found at %+v, which does not hold it", seed, i, b.Hash[:10], loc)
					}
				}
			}
			for h := range every {
				if _, ok := p.block(h); ok != live[h] {
					t.Fatalf("seed %d, index %d: block %x found %v; live %v", seed, i, h[:10], ok, live[h])
				}
			}
		}
	}
}

// randomEntry returns an entry named name with random fields of every
// kind an index holds.
func randomEntry(rng *rand.Rand, name string, seq uint64) pubEntry {
	fi := syncfs.FileInfo{Name: name, ModTime: rng.Int64() - rng.Int64(), Mode: uint32(rng.IntN(0o1000))}
	devs := []string{"12D3KooWAlice", "12D3KooWBob", "12D3KooWServer"}
	for _, d := range devs {
		if rng.IntN(2) == 0 {
			fi.Version.Counters = append(fi.Version.Counters, syncfs.Counter{Device: d, Value: rng.Uint64N(1<<40) + 1})
		}
	}
	randomHash := func() syncfs.Hash {
		var h syncfs.Hash
		for i := range h {
			h[i] = byte(rng.IntN(256))
		}
		return h
	}
	switch rng.IntN(5) {
	case 0:
		fi.Type = syncfs.TypeDir
	case 1:
		fi.Type, fi.SymlinkTarget = syncfs.TypeSymlink, "../target/"+name
	case 2:
		fi.Deleted = true
	default:
		off := int64(0)
		for range rng.IntN(6) {
			off += int64(rng.IntN(3)) // a gap now and then
			b := syncfs.Block{Offset: off, Size: uint32(rng.IntN(1 << 20)), Hash: randomHash()}
			fi.Blocks = append(fi.Blocks, b)
			off += int64(b.Size)
		}
		fi.Size = off
		switch rng.IntN(3) {
		case 0:
			fi.FileHash = syncfs.FileHashOf(fi.Blocks)
		case 1:
			fi.FileHash = randomHash() // not what the blocks give: kept as it is
		}
	}
	return pubEntry{fi: fi, changed: seq}
}

// Every field of every kind of entry comes out of a tree as it went in,
// by get and by since.
func TestPubTreeKeepsEntries(t *testing.T) {
	for name, store := range testStores(t) {
		t.Run(name, func(t *testing.T) { testPubTreeKeepsEntries(t, store) })
	}
}

func testPubTreeKeepsEntries(t *testing.T, store *chunkStore) {
	rng := rand.New(rand.NewPCG(3, 4))
	model := map[string]pubEntry{}
	tree := pubTree{store: store}
	for seq := uint64(1000); seq < 1040; seq++ {
		byName := map[string]pubEntry{}
		for range rng.IntN(300) + 1 {
			n := fmt.Sprintf("dir%d/sub/file-%04d.txt", rng.IntN(4), rng.IntN(1500))
			byName[n] = randomEntry(rng, n, seq)
		}
		var changes []pubEntry
		for _, n := range slices.Sorted(maps.Keys(byName)) {
			changes = append(changes, byName[n])
			model[n] = byName[n]
		}
		tree = tree.with(changes)
	}
	same := func(what string, got, want pubEntry) {
		t.Helper()
		if got.changed != want.changed || !reflect.DeepEqual(got.fi, want.fi) {
			t.Errorf("%s %s:\n got %+v at %d\nwant %+v at %d", what, want.fi.Name, got.fi, got.changed, want.fi, want.changed)
		}
	}
	for n, want := range model {
		got, ok := tree.get(n)
		if !ok {
			t.Fatalf("get(%s) found nothing", n)
		}
		same("get", got, want)
	}
	count := 0
	for got := range tree.since(1020) {
		count++
		same("since", got, model[got.fi.Name])
		if got.changed <= 1020 {
			t.Errorf("since(1020) yields %s changed at %d", got.fi.Name, got.changed)
		}
	}
	want := 0
	for _, e := range model {
		if e.changed > 1020 {
			want++
		}
	}
	if count != want {
		t.Errorf("since(1020) yields %d entries; want %d", count, want)
	}
}

// BenchmarkPublished publishes a folder of 100,000 files of one block
// whole, then changes of 100 of them, and looks every entry up, as a
// host does when it starts, as its folder changes and as it serves
// blocks. The heap the index holds is reported as index-B.
func BenchmarkPublished(b *testing.B) {
	const n = 100000
	files := syncfs.Snapshot{}
	names := make([]string, 0, n)
	put := func(i int, v uint64) {
		name := fmt.Sprintf("d%02d/f%07d", i%100, i)
		blocks := []syncfs.Block{{Size: 1024, Hash: syncfs.Hash{byte(i), byte(i >> 8), byte(i >> 16), byte(v)}}}
		files[name] = syncfs.FileInfo{Name: name, Size: 1024, ModTime: int64(i) << 20, Mode: 0o644,
			Version: syncfs.Vector{Counters: []syncfs.Counter{{Device: "12D3KooWAlice", Value: v}}},
			Blocks:  blocks, FileHash: syncfs.FileHashOf(blocks)}
	}
	for i := range n {
		put(i, 1)
	}
	for name := range files {
		names = append(names, name)
	}
	b.Run("whole", func(b *testing.B) {
		var held uint64
		for b.Loop() {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			p, _ := newPublished(nil, "f", "a", 7, 100, files, nil, true, nil)
			runtime.GC()
			runtime.ReadMemStats(&after)
			held = after.HeapAlloc - before.HeapAlloc
			runtime.KeepAlive(p)
		}
		b.ReportMetric(float64(held), "index-B")
	})
	p, _ := newPublished(nil, "f", "a", 7, 100, files, nil, true, nil)
	b.Run("change100", func(b *testing.B) {
		seq := uint64(101)
		for b.Loop() {
			changed := make([]string, 0, 100)
			for k := range 100 {
				i := (int(seq)*7919 + k*104729) % n
				put(i, seq)
				changed = append(changed, fmt.Sprintf("d%02d/f%07d", i%100, i))
			}
			if next, _ := newPublished(p, "f", "a", 7, seq, files, changed, false, nil); next != nil {
				p = next
			}
			seq++
		}
	})
	b.Run("get", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok := p.get(names[i%n]); !ok {
				b.Fatal("entry not found")
			}
			i++
		}
	})
}
