package syncfs

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
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
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("All(f/A/1) differs (-want +got):\n%s", diff)
	}
	got, err = s.Get("f/A/1", []string{"d/b.txt", "missing", "d/c.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Snapshot{"d/b.txt": newer, "d/c.txt": gone}, got); diff != "" {
		t.Errorf("Get(f/A/1) differs (-want +got):\n%s", diff)
	}
	got, err = s.Get("f/B/2", []string{"d/a.txt", "d/b.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["d/a.txt"].Version.Compare(v2) != Equal || got["d/a.txt"].Size != 5 {
		t.Errorf("Get(f/B/2) = %v; want B's d/a.txt alone", got)
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
