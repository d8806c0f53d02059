package syncfs

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// randomEntry returns an entry named n of any kind, with the values a
// packing could get wrong: negative and extreme numbers, blocks that do
// not follow one another, hashes zero, derived or not, several devices.
func randomEntry(r *rand.Rand, n string) FileInfo {
	devs := []string{devA, devB, "12D3KooWThirdDevice", "d"}
	var v Vector
	for range r.IntN(4) {
		v = v.Update(devs[r.IntN(len(devs))])
	}
	if r.IntN(4) == 0 {
		v.Counters = append([]Counter(nil), v.Counters...)
		for i := range v.Counters {
			v.Counters[i].Value = r.Uint64()
		}
	}
	num := func() int64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return -r.Int64()
		case 2:
			return math.MaxInt64 - r.Int64N(3)
		}
		return r.Int64N(1 << 40)
	}
	f := FileInfo{Name: n, Type: FileType(r.IntN(3)), Size: num(), ModTime: num(), Mode: r.Uint32(), Version: v, Deleted: r.IntN(5) == 0}
	if f.Type == TypeSymlink || r.IntN(10) == 0 {
		f.SymlinkTarget = fmt.Sprintf("target\x00%d/ü", r.Uint32())
	}
	if r.IntN(3) > 0 {
		var off int64
		for range 1 + r.IntN(4) {
			if r.IntN(3) == 0 {
				off += num() // not where the previous block ended
			}
			b := Block{Offset: off, Size: r.Uint32(), Hash: HashBytes([]byte(fmt.Sprint(r.Uint64())))}
			f.Blocks = append(f.Blocks, b)
			off += int64(b.Size)
		}
	}
	switch r.IntN(3) {
	case 0:
	case 1:
		f.FileHash = FileHashOf(f.Blocks)
	default:
		f.FileHash = HashBytes([]byte(n))
	}
	return f
}

func randomStat(r *rand.Rand, f FileInfo) DiskStat {
	d := DiskStat{Size: f.Size, ModTime: f.ModTime, Inode: r.Uint64(), Ctime: r.Int64() - r.Int64(), Mode: r.Uint32(), Racy: r.IntN(2) == 0}
	if r.IntN(3) == 0 {
		d.Size = r.Int64() - r.Int64()
	}
	if r.IntN(3) == 0 {
		d.ModTime = r.Int64() - r.Int64()
	}
	if r.IntN(4) == 0 {
		d.Volume, d.InodeHigh = r.Uint64(), r.Uint64()
	}
	return d
}

// A Local holds exactly what it was given: random changes of entries
// and stats, checked after each against maps of what was set, and its
// clones, copies and iterators with it.
func TestLocalHoldsWhatWasSet(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		files, disk := Snapshot{}, map[string]DiskStat{}
		var l Local // the zero Local, ready to use
		var clone Local
		var cloneFiles Snapshot
		names := []string{"a", "b", "dir/c", "ü", "x/y/z", "e"}
		for step := range 200 {
			n := names[r.IntN(len(names))]
			switch r.IntN(6) {
			case 0, 1:
				f := randomEntry(r, n)
				l.Set(f)
				files[n] = f
			case 2:
				f := files[n]
				d := randomStat(r, f)
				l.SetStat(n, d)
				disk[n] = d
			case 3:
				l.DropStat(n)
				delete(disk, n)
			case 4:
				if r.IntN(3) == 0 {
					l.Delete(n)
					delete(files, n)
					delete(disk, n)
				}
			case 5:
				clone, cloneFiles = l.Clone(), maps.Clone(files)
			}
			for _, n := range names {
				got, ok := l.Get(n)
				want, wantOK := files[n]
				if ok != wantOK || !reflect.DeepEqual(want, got) {
					t.Fatalf("seed %d step %d: Get(%q) = %+v, %v; want %+v, %v", seed, step, n, got, ok, want, wantOK)
				}
				gotD, ok := l.Stat(n)
				wantD, wantOK := disk[n]
				if ok != wantOK || gotD != wantD {
					t.Fatalf("seed %d step %d: Stat(%q) = %+v, %v; want %+v, %v", seed, step, n, gotD, ok, wantD, wantOK)
				}
			}
			if l.Len() != len(files) {
				t.Fatalf("seed %d step %d: Len %d; want %d", seed, step, l.Len(), len(files))
			}
			if got := l.Snapshot(); !reflect.DeepEqual(files, got) {
				t.Fatalf("seed %d step %d: All differs:\n%s", seed, step, cmp.Diff(files, got))
			}
			if got := maps.Collect(l.Stats()); !reflect.DeepEqual(disk, got) {
				t.Fatalf("seed %d step %d: Stats differ:\n%s", seed, step, cmp.Diff(disk, got))
			}
			if got, want := slices.Sorted(l.Names()), slices.Sorted(maps.Keys(files)); !slices.Equal(got, want) {
				t.Fatalf("seed %d step %d: Names %q; want %q", seed, step, got, want)
			}
			copied := l // a copy by value holds the same
			if got := copied.Snapshot(); !reflect.DeepEqual(files, got) {
				t.Fatalf("seed %d step %d: a copy differs:\n%s", seed, step, cmp.Diff(files, got))
			}
		}
		if diff := cmp.Diff(cloneFiles, clone.Snapshot(), cmp.Comparer(func(a, b Snapshot) bool {
			return len(a) == 0 && len(b) == 0 || cmp.Equal(map[string]FileInfo(a), map[string]FileInfo(b))
		})); cloneFiles != nil && diff != "" {
			t.Fatalf("seed %d: a clone changed with the Local:\n%s", seed, diff)
		}
	}
}

// LocalOf holds the entries and stats it is given, and a Local that
// holds a stat alone (an entry's, set before the entry) counts no entry.
func TestLocalOf(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	files := Snapshot{}
	disk := map[string]DiskStat{}
	for i := range 100 {
		n := fmt.Sprintf("f%03d", i)
		files[n] = randomEntry(r, n)
		if i%2 == 0 {
			disk[n] = randomStat(r, files[n])
		}
	}
	disk["only-stat"] = DiskStat{Size: 5, Inode: 1}
	l := LocalOf(files, disk)
	if diff := cmp.Diff(files, l.Snapshot()); diff != "" {
		t.Errorf("entries differ:\n%s", diff)
	}
	if diff := cmp.Diff(disk, maps.Collect(l.Stats())); diff != "" {
		t.Errorf("stats differ:\n%s", diff)
	}
	if _, ok := l.Get("only-stat"); ok || l.Len() != len(files) {
		t.Errorf("a stat alone counted as an entry: Len %d, want %d", l.Len(), len(files))
	}
	l.DropStat("only-stat")
	if _, ok := l.Stat("only-stat"); ok {
		t.Error("a stat alone was not dropped")
	}
}

// A Local holds a file of one block with its stat in far less than a
// FileInfo and a DiskStat in maps.
func TestLocalPacksSmall(t *testing.T) {
	var l Local
	v := Vector{}.Update("12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBRWmq6yPF5xyZb")
	b := []Block{{Size: 1024, Hash: HashBytes([]byte("x"))}}
	f := FileInfo{Name: "d07/f0001234", Type: TypeFile, Size: 1024, Mode: 0o644, ModTime: 1_765_000_000_123_456_789, Version: v, Blocks: b, FileHash: FileHashOf(b)}
	l.Set(f)
	l.SetStat(f.Name, DiskStat{Size: 1024, ModTime: f.ModTime, Inode: 123456, Ctime: f.ModTime + 5, Mode: 0o644})
	if n := len(l.t.m[f.Name]); n > 64 { // an allocation of 64 bytes
		t.Errorf("a file of one block with its stat packed in %d bytes; want at most 64", n)
	}
	got, _ := l.Get(f.Name)
	if diff := cmp.Diff(f, got); diff != "" {
		t.Errorf("entry differs:\n%s", diff)
	}
}
