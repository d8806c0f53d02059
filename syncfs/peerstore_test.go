package syncfs

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// TestPeerStore puts entries of two indexes, replaces some, and checks
// that Get, All and Drop see exactly what was put under each key, and that
// a store is made anew when opened again.
func TestPeerStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.db")
	s, err := OpenPeerStore(path)
	if err != nil {
		t.Fatal(err)
	}
	v1 := Vector{}.Update(devA)
	v2 := v1.Update(devB)
	file := func(name string, v Vector, content string) FileInfo {
		blocks := []Block{{Offset: 0, Size: uint32(len(content)), Hash: HashBytes([]byte(content))}}
		return FileInfo{Name: name, Type: TypeFile, Size: int64(len(content)), ModTime: 5, Mode: 0o644, Version: v, Blocks: blocks, FileHash: FileHashOf(blocks)}
	}
	a := []FileInfo{
		{Name: "d", Type: TypeDir, Mode: 0o755, Version: v1},
		file("d/a.txt", v1, "alpha"),
		file("d/b.txt", v1, "beta"),
	}
	if err := s.Put("f/A/1", a); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("f/B/2", []FileInfo{file("d/a.txt", v2, "other")}); err != nil {
		t.Fatal(err)
	}
	newer := file("d/b.txt", v2, "beta two")
	gone := FileInfo{Name: "d/c.txt", Type: TypeFile, Deleted: true, Version: v2}
	if err := s.Put("f/A/1", []FileInfo{newer, gone}); err != nil {
		t.Fatal(err)
	}

	want := Snapshot{"d": a[0], "d/a.txt": a[1], "d/b.txt": newer, "d/c.txt": gone}
	got, err := s.All("f/A/1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("All(f/A/1) differs (-want +got):\n%s", diff)
	}
	got, err = s.Get("f/A/1", []string{"d/b.txt", "missing", "d/c.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(Snapshot{"d/b.txt": newer, "d/c.txt": gone}, got); diff != "" {
		t.Errorf("Get(f/A/1) differs (-want +got):\n%s", diff)
	}
	got, err = s.Get("f/B/2", []string{"d/a.txt", "d/b.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["d/a.txt"].Version.Compare(v2) != Equal || got["d/a.txt"].Size != 5 {
		t.Errorf("Get(f/B/2) = %v; want B's d/a.txt alone", got)
	}

	// The summaries stored beside the entries are those of what was put
	// last, read by name or all in name order.
	sums := map[string]PeerSummary{}
	for n, f := range want {
		sums[n] = SummaryOf(f)
	}
	var walked []string
	err = s.EachSummary("f/A/1", "", func(n []byte, sum PeerSummary) bool {
		walked = append(walked, string(n))
		if sum != sums[string(n)] {
			t.Errorf("EachSummary(f/A/1): %s's summary %x; want %x", n, sum, sums[string(n)])
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"d", "d/a.txt", "d/b.txt", "d/c.txt"}; !slices.Equal(walked, want) {
		t.Errorf("EachSummary(f/A/1) walked %q; want %q", walked, want)
	}
	// A walk from after a name, stored or not, that stops when told.
	for _, c := range []struct {
		after string
		stop  int
		want  []string
	}{
		{"d", 0, []string{"d/a.txt", "d/b.txt", "d/c.txt"}},
		{"d/a", 0, []string{"d/a.txt", "d/b.txt", "d/c.txt"}},
		{"d/a.txt", 1, []string{"d/b.txt"}},
		{"d/c.txt", 0, nil},
		{"", 2, []string{"d", "d/a.txt"}},
	} {
		walked = nil
		err = s.EachSummary("f/A/1", c.after, func(n []byte, _ PeerSummary) bool {
			walked = append(walked, string(n))
			return c.stop == 0 || len(walked) < c.stop
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(walked, c.want) {
			t.Errorf("EachSummary(f/A/1) after %q, stopping after %d: walked %q; want %q", c.after, c.stop, walked, c.want)
		}
	}
	asked := []string{"d/b.txt", "missing", "d"}
	var read []string
	err = s.Summaries("f/A/1", slices.Clone(asked), func(n string, sum PeerSummary, ok bool) {
		read = append(read, fmt.Sprintf("%s %v %v", n, ok, ok && sum == sums[n]))
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"d true true", "d/b.txt true true", "missing false false"}; !slices.Equal(read, want) {
		t.Errorf("Summaries(f/A/1, %q) = %q; want %q", asked, read, want)
	}
	read = nil
	err = s.Summaries("never-put", slices.Clone(asked[:1]), func(n string, _ PeerSummary, ok bool) {
		read = append(read, fmt.Sprintf("%s %v", n, ok))
	})
	if err != nil || !slices.Equal(read, []string{"d/b.txt false"}) {
		t.Errorf("Summaries(never-put) = %q, %v; want d/b.txt not there", read, err)
	}

	if err := s.Drop("f/A/1"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.All("f/A/1"); err != nil || len(got) != 0 {
		t.Errorf("All(f/A/1) after Drop = %v, %v; want nothing", got, err)
	}
	if got, err := s.Get("f/B/2", []string{"d/a.txt"}); err != nil || len(got) != 1 {
		t.Errorf("Get(f/B/2) after dropping f/A/1 = %v, %v; want its entry", got, err)
	}
	if err := s.Drop("never-put"); err != nil {
		t.Errorf("Drop of a key never put: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A cache: opening it again starts empty.
	s, err = OpenPeerStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.All("f/B/2"); err != nil || len(got) != 0 {
		t.Errorf("All(f/B/2) after reopening = %v, %v; want nothing", got, err)
	}
}

// TestPeerStoreRefusesAForeignFile checks that a store whose file cannot
// be replaced says so.
func TestPeerStoreRefusesAForeignFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "peers.db")
	if err := os.MkdirAll(filepath.Join(dir, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if s, err := OpenPeerStore(dir); err == nil {
		s.Close()
		t.Fatal("OpenPeerStore over a non-empty directory succeeded")
	}
}

// TestSummaryOf checks that entries at equal versions have the same
// summary, and entries at other versions another.
func TestSummaryOf(t *testing.T) {
	v := Vector{}.Update(devA)
	versions := []Vector{
		{},
		v,
		v.Update(devA),
		v.Update(devB),
		Vector{}.Update(devB),
		{Counters: []Counter{{Device: devA + devB[:1], Value: 1}}},
		{Counters: []Counter{{Device: devA, Value: 1 << 8}}},
	}
	seen := map[PeerSummary]int{}
	for i, v := range versions {
		s := SummaryOf(FileInfo{Name: "a", Version: v})
		if j, ok := seen[s]; ok {
			t.Errorf("versions %v and %v have the same summary", versions[j], v)
		}
		seen[s] = i
		same := Vector{Counters: slices.Clone(v.Counters)}
		if got := SummaryOf(FileInfo{Name: "b", Type: TypeDir, Version: same}); got != s {
			t.Errorf("SummaryOf of a copy of %v = %x; want %x", v, got, s)
		}
	}
}

// Move puts every entry of one key into another, over the entries of the
// same names, however many transactions it takes, and drops the first.
func TestPeerStoreMove(t *testing.T) {
	s, err := OpenPeerStore(filepath.Join(t.TempDir(), "peers.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v1 := Vector{}.Update(devA)
	v2 := v1.Update(devB)
	entry := func(i int, v Vector) FileInfo {
		return FileInfo{Name: fmt.Sprintf("d%02d/f%06d", i%7, i), Type: TypeFile, Version: v, FileHash: FileHashOf(nil)}
	}
	var held, delta []FileInfo
	want := Snapshot{}
	for i := range 2 * maxTxEntries {
		held = append(held, entry(i, v1))
		want[held[i].Name] = held[i]
	}
	for i := maxTxEntries; i < 4*maxTxEntries+3; i++ { // half over held's, the rest new
		e := entry(i, v2)
		delta = append(delta, e)
		want[e.Name] = e
	}
	slices.SortFunc(held, func(a, b FileInfo) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(delta, func(a, b FileInfo) int { return cmp.Compare(a.Name, b.Name) })
	if err := s.Put("held", held); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("stage", delta); err != nil {
		t.Fatal(err)
	}
	if err := s.Move("held", "stage"); err != nil {
		t.Fatal(err)
	}
	got, err := s.All("held")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("held has %d entries after the move; want %d", len(got), len(want))
	}
	for n, w := range want {
		if !got[n].Version.Equal(w.Version) {
			t.Fatalf("%s at %v after the move; want %v", n, got[n].Version, w.Version)
		}
	}
	if rest, err := s.All("stage"); err != nil || len(rest) != 0 {
		t.Errorf("the moved key still holds %d entries (%v)", len(rest), err)
	}
	if err := s.Move("held", "nothing"); err != nil {
		t.Errorf("moving a key that holds nothing: %v", err)
	}
}
