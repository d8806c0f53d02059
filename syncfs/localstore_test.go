package syncfs

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// localOp changes l, as r says, at one of 40 names: an entry changed,
// added or removed (changeEntry), a stat set alone or dropped.
type localOp struct {
	seed uint64
	name string
	kind int
}

func randomLocalOp(r *rand.Rand) localOp {
	return localOp{seed: r.Uint64(), name: fmt.Sprintf("d%d/e%02d", r.IntN(3), r.IntN(40)), kind: r.IntN(8)}
}

func (o localOp) apply(l *Local) {
	r := rand.New(rand.NewPCG(o.seed, 2))
	switch o.kind {
	case 0:
		l.SetStat(o.name, DiskStat{Size: r.Int64N(100), Inode: r.Uint64()}) // an entry's, or alone
	case 1:
		l.DropStat(o.name)
	default:
		changeEntry(r, l, o.name)
	}
}

// checkLocal fails unless got holds what want does.
func checkLocal(t *testing.T, what string, want, got *Local) {
	t.Helper()
	if got.Len() != want.Len() {
		t.Fatalf("%s: Len %d; want %d", what, got.Len(), want.Len())
	}
	if w, g := want.Snapshot(), got.Snapshot(); !reflect.DeepEqual(w, g) {
		t.Fatalf("%s: All differs:\n%s", what, cmp.Diff(w, g))
	}
	for n, f := range want.All() {
		if g, ok := got.Get(n); !ok || !reflect.DeepEqual(f, g) {
			t.Fatalf("%s: Get(%q) = %+v, %v; want %+v", what, n, g, ok, f)
		}
	}
	if w, g := maps.Collect(want.Stats()), maps.Collect(got.Stats()); !reflect.DeepEqual(w, g) {
		t.Fatalf("%s: Stats differ:\n%s", what, cmp.Diff(w, g))
	}
	for n, d := range want.Stats() {
		if g, ok := got.Stat(n); !ok || g != d {
			t.Fatalf("%s: Stat(%q) = %+v, %v; want %+v", what, n, g, ok, d)
		}
	}
	if w, g := slices.Sorted(want.Names()), slices.Sorted(got.Names()); !slices.Equal(w, g) {
		t.Fatalf("%s: Names %q; want %q", what, g, w)
	}
	for _, n := range []string{"d0/e00", "d1/e13", "d2/e39", "none"} {
		_, okW := want.Get(n)
		_, okG := got.Get(n)
		_, okWS := want.Stat(n)
		_, okGS := got.Stat(n)
		if okW != okG || okWS != okGS {
			t.Fatalf("%s: %q held %v, %v; want %v, %v", what, n, okG, okGS, okW, okWS)
		}
	}
}

// storedOnly returns what a Local opened again holds of l: its entries
// with their stats (a stat alone is not stored).
func storedOnly(l *Local) Local {
	out := NewLocal()
	for _, f := range l.All() {
		out.Set(f)
	}
	for n, d := range l.Stats() {
		if _, ok := l.Get(n); ok {
			out.SetStat(n, d)
		}
	}
	return out
}

// A Local opened from a DB holds what an in-memory one does through
// random changes, flushes and reopenings, whether it holds its entries
// whole (a limit above the folder's size) or only those not flushed (a
// limit of 0 to 8), and past the limit holds in memory no more than what
// the DB cannot hold (the stats of names without an entry).
func TestOpenLocalHoldsWhatWasSet(t *testing.T) {
	for _, limit := range []int{0, 1, 8, 1000} {
		for seed := range uint64(8) {
			r := rand.New(rand.NewPCG(seed, uint64(limit)))
			db := openTestDB(t)
			db.b.NoSync = true
			l, err := db.OpenLocal("f", limit)
			if err != nil {
				t.Fatal(err)
			}
			l.t.st.cache = limit
			want := NewLocal()
			for step := range 300 {
				what := fmt.Sprintf("limit %d seed %d step %d", limit, seed, step)
				check := step%4 == 0
				switch r.IntN(20) {
				case 0, 1, 2:
					if err := l.Flush(); err != nil {
						t.Fatal(err)
					}
					if l.Unflushed() != 0 {
						t.Fatalf("%s: %d unflushed after a Flush", what, l.Unflushed())
					}
					if l.t.st.whole && l.Len() > limit {
						t.Fatalf("%s: held whole past its limit", what)
					}
					if !l.t.st.whole && len(l.t.m) > limit {
						for n, v := range l.t.m {
							if packedHasFile(v) || !packedHasStat(v) {
								t.Fatalf("%s: %q still held in memory after a Flush, past the cache", what, n)
							}
						}
					}
				case 3:
					if err := l.Flush(); err != nil {
						t.Fatal(err)
					}
					if l, err = db.OpenLocal("f", limit); err != nil {
						t.Fatal(err)
					}
					l.t.st.cache = limit
					want, check = storedOnly(&want), true
				default:
					op := randomLocalOp(r)
					op.apply(&l)
					op.apply(&want)
				}
				if check {
					checkLocal(t, what, &want, &l)
				}
			}
			c := l.Clone()
			if c.t.st != nil {
				t.Fatal("a clone is kept in the DB")
			}
			checkLocal(t, "clone", &want, &c)
		}
	}
}

// A walk of a Local held past its limit produces every entry that was
// there before it began and was not removed meanwhile, once, as it is
// when reached, while the loop changes, adds and removes entries (some
// flushed, some not).
func TestOpenLocalWalkWhileChanging(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 3))
		db := openTestDB(t)
		db.b.NoSync = true
		l, err := db.OpenLocal("f", 4)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2000 {
			randomLocalOp(r).apply(&l)
			if i == 1000 {
				if err := l.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
		before := slices.Collect(l.Names())
		removed := map[string]bool{}
		seen := map[string]int{}
		for n, f := range l.All() {
			seen[n]++
			if g, ok := l.Get(n); !ok || !reflect.DeepEqual(f, g) {
				t.Fatalf("seed %d: %q produced as %+v, held as %+v, %v", seed, n, f, g, ok)
			}
			for range 3 {
				op := randomLocalOp(r)
				if op.kind >= 2 {
					if _, ok := l.Get(op.name); ok {
						removed[op.name] = true // it may be deleted
					}
				}
				op.apply(&l)
			}
		}
		for n, c := range seen {
			if c != 1 {
				t.Fatalf("seed %d: %q produced %d times", seed, n, c)
			}
		}
		for _, n := range before {
			if seen[n] == 0 && !removed[n] {
				t.Fatalf("seed %d: %q, there before the walk and not changed, not produced", seed, n)
			}
		}
	}
}

// Readers may look a Local held past its limit up at once (the scanner's
// workers do): run with -race.
func TestOpenLocalReadersAtOnce(t *testing.T) {
	db := openTestDB(t)
	db.b.NoSync = true
	l, err := db.OpenLocal("f", 8)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 500 {
		randomLocalOp(r).apply(&l)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		randomLocalOp(r).apply(&l)
	}
	want := l.Snapshot()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for n, f := range want {
				if g, ok := l.Get(n); !ok || !reflect.DeepEqual(f, g) {
					t.Errorf("Get(%q) = %+v, %v; want %+v", n, g, ok, f)
				}
				l.Stat(n)
			}
		})
	}
	wg.Wait()
}

// A Flush that fails keeps what it was to store, held in memory, and the
// next one that goes through stores it; a Local held past its limit
// that read its DB in vain says so at its next Flush.
func TestOpenLocalFlushFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := db.OpenLocal("f", 2)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(4, 4))
	for range 100 {
		randomLocalOp(r).apply(&l)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		randomLocalOp(r).apply(&l)
	}
	want := storedOnly(&l)
	n := l.Unflushed()
	db.Close()
	if err := l.Flush(); err == nil {
		t.Fatal("a Flush into a closed database went through")
	}
	if l.Unflushed() != n {
		t.Fatalf("after a failed Flush, %d unflushed; want %d", l.Unflushed(), n)
	}
	if db, err = OpenDB(path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l.t.st.db = db // the same file, open again
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := db.OpenLocal("f", 2)
	if err != nil {
		t.Fatal(err)
	}
	checkLocal(t, "opened again", &want, &got)

	// A read that fails (the database closed under the Local).
	db.Close()
	if _, ok := got.Get("d0/e00"); ok {
		t.Fatal("a read of a closed database found an entry")
	}
	if err := got.Flush(); err == nil || !strings.Contains(err.Error(), "reading d0/e00") {
		t.Fatalf("Flush after a failed read: %v; want the read's error", err)
	}
}

// A plan against a Local held past its limit, which looks up the names
// that clash with new ones and the local holders of needed blocks in its
// indexes, equals the plan against the same entries in memory, which
// walks them: random folders whose names clash by case and whose files
// share blocks, changed, flushed or not, and opened again.
func TestPlanWithIndexedLocal(t *testing.T) {
	names := []string{"a", "A", "b", "d/x", "d/X", "D/x", "e/f", "E/F", "g", "h/i"}
	blocks := make([]Block, 6)
	for i := range blocks {
		blocks[i] = Block{Size: uint32(10 + i%2), Hash: HashBytes([]byte{byte(i)})}
	}
	file := func(r *rand.Rand, n, dev string, value uint64) FileInfo {
		var bs []Block
		off := int64(0)
		for range 1 + r.IntN(3) {
			b := blocks[r.IntN(len(blocks))]
			b.Offset = off
			off += int64(b.Size)
			bs = append(bs, b)
		}
		return FileInfo{Name: n, Type: TypeFile, Size: off, Mode: 0o644, Blocks: bs, FileHash: FileHashOf(bs),
			Version: Vector{Counters: []Counter{{Device: dev, Value: value}}}}
	}
	for seed := range uint64(150) {
		r := rand.New(rand.NewPCG(seed, 7))
		db := openTestDB(t)
		db.b.NoSync = true
		l, err := db.OpenLocal("f", 0)
		if err != nil {
			t.Fatal(err)
		}
		cache := int(seed % 2 * 4) // none kept after a Flush, or a few
		l.t.st.cache = cache
		for i, n := range names {
			switch r.IntN(4) {
			case 0:
			case 1:
				l.Set(FileInfo{Name: n, Type: TypeDir, Mode: 0o755, Version: Vector{}.Update(devA)})
			case 2:
				l.Set(tombstone(FileInfo{Name: n, Type: TypeFile}, Vector{}.Update(devA)))
			default:
				l.Set(file(r, n, devA, uint64(i+1)))
			}
			if r.IntN(3) == 0 {
				if err := l.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		if r.IntN(3) == 0 {
			if l, err = db.OpenLocal("f", 0); err != nil {
				t.Fatal(err)
			}
			l.t.st.cache = cache
		}
		for range r.IntN(3) { // changed since, not flushed
			n := names[r.IntN(len(names))]
			if r.IntN(3) == 0 {
				l.Delete(n)
			} else {
				l.Set(file(r, n, devA, 99))
			}
		}
		if indexedLocal(&l) == nil && l.Len() > 0 {
			t.Fatalf("seed %d: the Local is not held on disk", seed)
		}
		remote := Snapshot{}
		for _, n := range names {
			if r.IntN(2) == 0 {
				remote[n] = file(r, n, devB, 1)
			}
		}
		mem := l.Clone()
		want := PlanWith(&mem, remote, devA, PlanOptions{})
		got := PlanWith(&l, remote, devA, PlanOptions{})
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("seed %d: the plan differs:\n%s", seed, cmp.Diff(want, got))
		}
	}
}
