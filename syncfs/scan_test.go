package syncfs

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestScanFindsEntries(t *testing.T) {
	root := t.TempDir()
	put(t, root, "a.txt", []byte("alpha"), 0o640, baseTime)
	put(t, root, "d/e/f.bin", rnd(3, 600<<10), 0o600, baseTime)
	put(t, root, "d/empty", nil, 0o644, baseTime)
	put(t, root, "build/out.o", []byte("x"), 0o644, baseTime)
	put(t, root, "bad\x01name", []byte("x"), 0o644, baseTime)
	if err := os.Symlink("a.txt", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := mkfifo(filepath.Join(root, "pipe")); err != nil {
		t.Fatal(err)
	}
	ign, _ := ParseIgnoreString("build/\n")
	s := scanner(root, devA)
	s.Ignore = ign
	l, st := mustScan(t, s, Local{})

	var names []string
	for _, f := range l.Snapshot().Sorted() {
		names = append(names, f.Name)
		if err := f.Validate(); err != nil {
			t.Errorf("entry %s: %v", f.Name, err)
		}
		if got := f.Version.Counter(devA); got != 1 {
			t.Errorf("%s version %v; want a first version by %s", f.Name, f.Version, devA)
		}
	}
	if want := []string{"a.txt", "d", "d/e", "d/e/f.bin", "d/empty", "link"}; !slices.Equal(names, want) {
		t.Errorf("names %q; want %q", names, want)
	}
	if len(st.Skipped) != 2 {
		t.Errorf("skipped %q; want the bad name and the pipe", st.Skipped)
	}
	f := l.Entry("d/e/f.bin")
	data, _ := os.ReadFile(filepath.Join(root, "d/e/f.bin"))
	blocks, sum, _ := HashFile(strings.NewReader(string(data)))
	if diff := cmp.Diff(blocks, f.Blocks); diff != "" || sum != f.FileHash || f.Mode != 0o600 || f.ModTime != baseTime.UnixNano() {
		t.Errorf("f.bin entry wrong: mode %o mtime %d blocks diff %s", f.Mode, f.ModTime, diff)
	}
	if l.Entry("link").SymlinkTarget != "a.txt" || l.Entry("d").Mode != 0o755 {
		t.Errorf("link %+v, d %+v", l.Entry("link"), l.Entry("d"))
	}
	if st.Files != 3 || st.Dirs != 2 || st.Symlinks != 1 || st.Hashed != 3 || st.Changed != 6 {
		t.Errorf("stats %+v", st)
	}
}

func TestScanDetectsChanges(t *testing.T) {
	root := t.TempDir()
	put(t, root, "same.txt", []byte("unchanged"), 0o644, baseTime)
	put(t, root, "edit.txt", []byte("aaaa"), 0o644, baseTime)
	put(t, root, "gone.txt", []byte("bye"), 0o644, baseTime)
	s := scanner(root, devA)
	l1, _ := mustScan(t, s, Local{})

	l2, st := mustScan(t, s, l1)
	if st.Reused != 3 || st.Hashed != 0 || st.Changed != 0 {
		t.Fatalf("rescan without changes: %+v; want 3 reused, nothing hashed or changed", st)
	}
	if diff := cmp.Diff(stateOf(&l1), stateOf(&l2)); diff != "" {
		t.Fatalf("rescan without changes changed the Local:\n%s", diff)
	}

	// A same-size edit with the mtime put back is seen (the change time
	// and inode differ); a removal becomes a tombstone.
	put(t, root, "edit.txt", []byte("bbbb"), 0o644, baseTime)
	os.Remove(filepath.Join(root, "gone.txt"))
	l3, st := mustScan(t, s, l2)
	if st.Changed != 2 || st.Deleted != 1 || st.Hashed != 1 {
		t.Fatalf("stats %+v; want edit.txt rehashed and changed, gone.txt deleted", st)
	}
	if e := l3.Entry("edit.txt"); e.FileHash != fileHashOf([]byte("bbbb")) || e.Version.Compare(l2.Entry("edit.txt").Version) != Greater {
		t.Errorf("edit.txt = %+v; want the new hash at a newer version", e)
	}
	g := l3.Entry("gone.txt")
	if !g.Deleted || g.Version.Compare(l2.Entry("gone.txt").Version) != Greater || g.Validate() != nil {
		t.Errorf("gone.txt = %+v; want a valid tombstone at a newer version", g)
	}
	if _, ok := l3.Stat("gone.txt"); ok {
		t.Error("tombstone kept a disk stat")
	}
	// Back again: a version after the tombstone's.
	put(t, root, "gone.txt", []byte("back"), 0o644, baseTime)
	l4, _ := mustScan(t, s, l3)
	if g4 := l4.Entry("gone.txt"); g4.Deleted || g4.Version.Compare(g.Version) != Greater {
		t.Errorf("re-created gone.txt = %+v; want live at a version after the tombstone", g4)
	}
	// The previous Local is not modified.
	if !l3.Entry("gone.txt").Deleted {
		t.Error("Scan modified prev")
	}
}

// A file found by the walk and removed before it could be hashed is
// deleted: its previous entry becomes a tombstone, and the files beside it
// stay.
func TestScanFileRemovedWhileHashed(t *testing.T) {
	root := t.TempDir()
	put(t, root, "f", []byte("first"), 0o644, baseTime)
	put(t, root, "g", []byte("stays"), 0o644, baseTime)
	s := scanner(root, devA)
	l, _ := mustScan(t, s, Local{})
	put(t, root, "f", []byte("second, longer"), 0o644, baseTime.Add(time.Second))
	s.afterHash = func(name string) {
		if name == "f" {
			if err := os.Remove(filepath.Join(root, "f")); err != nil {
				t.Error(err)
			}
		}
	}
	l2, st := mustScan(t, s, l)
	if f := l2.Entry("f"); !f.Deleted || st.Deleted != 1 {
		t.Errorf("f removed while hashed: %+v, %d deleted; want a tombstone", f, st.Deleted)
	}
	if g := l2.Entry("g"); g.Deleted {
		t.Error("g, untouched, was deleted")
	}
}

func TestScanFileChangingWhileHashed(t *testing.T) {
	root := t.TempDir()
	put(t, root, "f", []byte("first"), 0o644, baseTime)
	s := scanner(root, devA)
	n := 0
	s.afterHash = func(string) {
		if n++; n == 1 {
			put(t, root, "f", []byte("second, longer"), 0o644, baseTime)
		}
	}
	l, st := mustScan(t, s, Local{})
	if got := l.Entry("f").FileHash; got != fileHashOf([]byte("second, longer")) || st.Hashed != 2 || len(st.Unstable) != 0 {
		t.Fatalf("after a change during hashing: hash matches new content %v, stats %+v; want the new content after 2 attempts", got == fileHashOf([]byte("second, longer")), st)
	}

	// A file that never settles is left as it was, and hashed next time.
	put(t, root, "f", []byte("third"), 0o644, baseTime)
	s.afterHash = func(string) {
		n++
		put(t, root, "f", []byte(strings.Repeat("x", n)), 0o644, baseTime)
	}
	l2, st := mustScan(t, s, l)
	if !slices.Equal(st.Unstable, []string{"f"}) || st.Changed != 0 {
		t.Fatalf("stats %+v; want f unstable and nothing changed", st)
	}
	if diff := cmp.Diff(l.Entry("f"), l2.Entry("f")); diff != "" {
		t.Errorf("unstable file's entry changed:\n%s", diff)
	}
	if _, ok := l2.Stat("f"); ok {
		t.Error("unstable file kept a trusted disk stat")
	}
	s.afterHash = nil
	_, st = mustScan(t, s, l2)
	if st.Hashed != 1 || st.Changed != 1 {
		t.Errorf("next scan: %+v; want f hashed and changed", st)
	}
}

func TestScanRacyFileIsRehashed(t *testing.T) {
	root := t.TempDir()
	put(t, root, "f", []byte("abc"), 0o644, time.Now())
	s := &Scanner{Root: root, Self: devA} // the real clock: f was just written
	l, _ := mustScan(t, s, Local{})
	if d, _ := l.Stat("f"); !d.Racy {
		t.Fatal("a file changed just now is not marked racy")
	}
	// Same size, same mtime: only a rehash can see this.
	mt := time.Unix(0, l.Entry("f").ModTime)
	put(t, root, "f", []byte("abd"), 0o644, mt)
	l2, st := mustScan(t, s, l)
	if st.Hashed != 1 || l2.Entry("f").FileHash != fileHashOf([]byte("abd")) {
		t.Errorf("racy file not rehashed: %+v", st)
	}
}

func TestScanPaths(t *testing.T) {
	root := t.TempDir()
	put(t, root, "a/1", []byte("1"), 0o644, baseTime)
	put(t, root, "a/2", []byte("2"), 0o644, baseTime)
	put(t, root, "b/3", []byte("3"), 0o644, baseTime)
	s := scanner(root, devA)
	l, _ := mustScan(t, s, Local{})
	os.Remove(filepath.Join(root, "a/1"))
	os.Remove(filepath.Join(root, "b/3"))
	put(t, root, "a/new/4", []byte("4"), 0o644, baseTime)
	l2, st := mustScan(t, s, l, "a/new", "a/1", "a/new/4")
	if !l2.Entry("a/1").Deleted || l2.Entry("b/3").Deleted || l2.Entry("a/new/4").Name == "" || l2.Entry("a/new").Type != TypeDir {
		t.Errorf("partial scan: a/1 %+v, b/3 %+v, a/new/4 %+v", l2.Entry("a/1"), l2.Entry("b/3"), l2.Entry("a/new/4"))
	}
	if st.Changed != 3 {
		t.Errorf("partial scan stats %+v; want a/1 deleted, a/new and a/new/4 new", st)
	}
	l3, st := mustScan(t, s, l2, "")
	if !l3.Entry("b/3").Deleted || st.Changed != 1 {
		t.Errorf("full scan after partial: b/3 %+v, stats %+v", l3.Entry("b/3"), st)
	}
}

func TestScanCancelled(t *testing.T) {
	root := t.TempDir()
	put(t, root, "f", []byte("x"), 0o644, baseTime)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := scanner(root, devA).Scan(ctx, Local{}); err == nil {
		t.Error("Scan with a cancelled context succeeded")
	}
}

// Update records files as they are hashed and reports them to Progress;
// while it runs nothing is deleted, and at the end what is gone is.
func TestUpdateReportsProgressWithoutEarlyDeletions(t *testing.T) {
	root := t.TempDir()
	put(t, root, "gone.txt", []byte("old"), 0o644, baseTime)
	s := scanner(root, devA)
	l, _ := mustScan(t, s, Local{})
	if err := os.Remove(filepath.Join(root, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		put(t, root, "d/f"+string(rune('a'+i)), rnd(uint64(i), 1000), 0o644, baseTime)
	}
	var reported []string
	calls := 0
	s.Progress = func(names []string) {
		calls++
		reported = append(reported, names...)
		if slices.Contains(names, "gone.txt") {
			return // the last report
		}
		if l.Entry("gone.txt").Deleted {
			t.Errorf("report %d: gone.txt deleted while the scan runs", calls)
		}
		for _, n := range names {
			if _, ok := l.Get(n); !ok {
				t.Errorf("report %d: %s reported but not recorded", calls, n)
			}
		}
	}
	st, err := s.Update(context.Background(), &l)
	if err != nil {
		t.Fatal(err)
	}
	if calls < 2 {
		t.Errorf("Progress called %d times; want a report per hashed file and a last one", calls)
	}
	if !slices.Equal(reported, st.Names) || len(st.Names) != st.Changed || st.Changed != 8 {
		t.Errorf("reported %q, stats name %q (%d changed); want the same 8 names", reported, st.Names, st.Changed)
	}
	if !l.Entry("gone.txt").Deleted || l.Entry("d/fc").Deleted {
		t.Errorf("after the scan: gone.txt %+v, d/fc %+v", l.Entry("gone.txt"), l.Entry("d/fc"))
	}
}

// A scan of one new file looks at that file only: the other entries stay
// as they were, even one gone from the disk meanwhile.
func TestUpdateOfOnePathLeavesTheRest(t *testing.T) {
	root := t.TempDir()
	put(t, root, "a", []byte("a"), 0o644, baseTime)
	put(t, root, "d/b", []byte("b"), 0o644, baseTime)
	s := scanner(root, devA)
	l, _ := mustScan(t, s, Local{})
	if err := os.Remove(filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	put(t, root, "d/c", []byte("c"), 0o644, baseTime)
	st, err := s.Update(context.Background(), &l, "d/c")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Names, []string{"d/c"}) || l.Entry("a").Deleted || l.Entry("d/c").Deleted {
		t.Errorf("changed %q, a %+v, d/c %+v; want only d/c recorded", st.Names, l.Entry("a"), l.Entry("d/c"))
	}
	if err := os.RemoveAll(filepath.Join(root, "d")); err != nil {
		t.Fatal(err)
	}
	st, err = s.Update(context.Background(), &l, "d")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"d", "d/b", "d/c"}; !slices.Equal(st.Names, want) {
		t.Errorf("after removing d: changed %q; want %q", st.Names, want)
	}
}

// A rescan records each unchanged file as it finds it: what it holds until
// the walk ends is the directories and the files to hash, not an entry of
// every file of the folder.
func TestRescanHoldsOnlyWhatToHash(t *testing.T) {
	root := t.TempDir()
	for i := range 50 {
		put(t, root, filepath.Join("d", "f"+strconv.Itoa(i)), []byte(strconv.Itoa(i)), 0o644, baseTime)
	}
	s := scanner(root, devA)
	l, _ := mustScan(t, s, Local{})
	put(t, root, "d/f7", []byte("changed"), 0o644, baseTime.Add(time.Second))
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var stats ScanStats
	sc := &scan{s: s, root: rootFS{r}, l: &l, now: time.Now, stats: &stats, seen: newSeenSet(), gone: map[string]bool{}, keep: map[string]bool{}}
	if err := sc.walkScope(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	var held []string
	for _, f := range sc.found {
		held = append(held, f.info.Name)
	}
	slices.Sort(held)
	if want := []string{"d", "d/f7"}; !slices.Equal(held, want) {
		t.Errorf("the walk holds %q; want %q (the directory and the changed file)", held, want)
	}
	if len(sc.seen.m) != 51 {
		t.Errorf("the walk saw %d names; want 51", len(sc.seen.m))
	}
}

// A scan names the entries whose disk stat it changed without a new
// version, and only those, for a store to write them.
func TestScanRestated(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"a", "b", "c", "d/e"} {
		put(t, root, n, []byte(n), 0o644, baseTime)
	}
	now := time.Now() // every file was changed just now (its ctime): racy
	s := &Scanner{Root: root, Self: devA, Now: func() time.Time { return now }}
	check := func(prev Local, st ScanStats, next Local, want ...string) {
		t.Helper()
		var changed []string
		for n, d := range next.Stats() {
			if p, ok := prev.Stat(n); !ok || p != d {
				changed = append(changed, n)
			}
		}
		for n := range prev.Stats() {
			if _, ok := next.Stat(n); !ok {
				changed = append(changed, n)
			}
		}
		slices.Sort(changed)
		got := slices.Compact(slices.Sorted(slices.Values(st.Restated)))
		if !slices.Equal(got, changed) || !slices.Equal(got, want) {
			t.Errorf("restated %q; the stats that changed are %q; want %q", got, changed, want)
		}
	}
	l1, st := mustScan(t, s, Local{})
	check(Local{}, st, l1, "a", "b", "c", "d", "d/e")

	now = now.Add(time.Hour)
	l2, st := mustScan(t, s, l1)
	if st.Changed != 0 {
		t.Fatalf("a rescan of files no longer racy changed %q", st.Names)
	}
	check(l1, st, l2, "a", "b", "c", "d/e")

	l3, st := mustScan(t, s, l2)
	check(l2, st, l3)

	// b replaced by a copy of itself (a new inode), c removed.
	put(t, root, "b.new", []byte("b"), 0o644, baseTime)
	if err := os.Rename(filepath.Join(root, "b.new"), filepath.Join(root, "b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "c")); err != nil {
		t.Fatal(err)
	}
	l4, st := mustScan(t, s, l3)
	if !slices.Equal(st.Names, []string{"c"}) {
		t.Errorf("changed %q; want only c's deletion", st.Names)
	}
	check(l3, st, l4, "b", "c")
}

// readDirCounter counts the directories a scan lists.
type readDirCounter struct {
	FS
	n atomic.Int32
}

func (c *readDirCounter) ReadDir(name string) ([]fs.DirEntry, error) {
	c.n.Add(1)
	return c.FS.ReadDir(name)
}

// A scan of many new files records and hashes them as the walk goes, a
// batch at a time, not once it has found them all: the first are
// reported before the last directory is listed.
func TestScanRecordsAsItWalks(t *testing.T) {
	root := t.TempDir()
	dirs := []string{"a", "b", "c"}
	for _, d := range dirs {
		for i := range scanBatch * 2 / 3 {
			put(t, root, fmt.Sprintf("%s/%05d", d, i), []byte{byte(i)}, 0o644, baseTime)
		}
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	counter := &readDirCounter{FS: DirFS(r)}
	s := scanner(root, devA)
	s.FS = counter
	listed := int32(-1) // directories listed when Progress is first called
	s.Progress = func([]string) {
		if listed < 0 {
			listed = counter.n.Load()
		}
	}
	l, st := mustScan(t, s, Local{})
	if want := len(dirs) * (scanBatch * 2 / 3); st.Files != want || st.Hashed != want || l.Len() != want+len(dirs) {
		t.Fatalf("found %d files, hashed %d, %d entries; want %d files and the directories", st.Files, st.Hashed, l.Len(), want)
	}
	if all := int32(1 + len(dirs)); listed < 0 || listed >= all {
		t.Errorf("first progress after %d of %d directories were listed; want it before the last", listed, all)
	}
}

// A seenSet holds every name added and, but for hash collisions (about
// one scan in 40 million at a million names), no other; each scan draws
// its own seed.
func TestSeenSet(t *testing.T) {
	s := newSeenSet()
	for i := range 100000 {
		s.add("d" + strconv.Itoa(i%100) + "/f" + strconv.Itoa(i))
	}
	for i := range 100000 {
		if n := "d" + strconv.Itoa(i%100) + "/f" + strconv.Itoa(i); !s.has(n) {
			t.Fatalf("%s added and not held", n)
		}
		if n := "d" + strconv.Itoa(i%100) + "/g" + strconv.Itoa(i); s.has(n) {
			t.Errorf("%s held though never added", n)
		}
	}
	if o := newSeenSet(); o.seed == s.seed {
		t.Error("two scans drew the same seed")
	}
}
