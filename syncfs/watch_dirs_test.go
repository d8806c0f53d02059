package syncfs

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// startDirsOnly starts a Watcher of root in the directories-only mode
// macOS uses, with the given rescan interval (zero: none).
func startDirsOnly(t *testing.T, root string, rescan time.Duration) *Watcher {
	t.Helper()
	w, err := NewWatcher(root, nil, watchConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.DirsOnly, w.Rescan = true, rescan
	startWatcher(t, w)
	return w
}

// With directories watched only, what changes a directory's entries is
// reported from the directory's event alone (no rescan runs here): a new
// file, a file saved atomically over another, a new nested directory, a
// removal, a renamed directory and a file created in it. A write to a
// file in place is not: that is what the rescan is for.
func TestWatcherDirsOnlyEvents(t *testing.T) {
	root := t.TempDir()
	put(t, root, "old.txt", []byte("v1"), 0o644, baseTime)
	put(t, root, "doc.txt", []byte("v1"), 0o644, baseTime)
	put(t, root, "sub/f", []byte("x"), 0o644, baseTime)
	w := startDirsOnly(t, root, 0)

	check := func(what, name string) {
		t.Helper()
		for _, b := range waitCovered(t, w, name) {
			if slices.Contains(b, "") {
				t.Errorf("%s: batch %q is a full rescan; want the entry reported", what, b)
			}
		}
	}
	put(t, root, "sub/new.txt", []byte("n"), 0o644, baseTime)
	check("new file", "sub/new.txt")

	put(t, root, ".doc.txt.swp", []byte("v2, saved atomically"), 0o644, baseTime)
	if err := os.Rename(filepath.Join(root, ".doc.txt.swp"), filepath.Join(root, "doc.txt")); err != nil {
		t.Fatal(err)
	}
	check("atomic save", "doc.txt")

	put(t, root, "n1/n2/n3/a.txt", []byte("deep"), 0o644, baseTime)
	check("mkdir -p with a file", "n1/n2/n3/a.txt")
	put(t, root, "n1/n2/n3/b.txt", []byte("deeper"), 0o644, baseTime)
	check("file in the new nested directory", "n1/n2/n3/b.txt")

	if err := os.Remove(filepath.Join(root, "sub/f")); err != nil {
		t.Fatal(err)
	}
	check("remove", "sub/f")

	if err := os.Rename(filepath.Join(root, "sub"), filepath.Join(root, "moved")); err != nil {
		t.Fatal(err)
	}
	check("renamed directory", "moved/new.txt")
	put(t, root, "moved/later.txt", []byte("l"), 0o644, baseTime)
	check("file in the renamed directory", "moved/later.txt")

	// A write in place, then a sentinel: only the sentinel is reported.
	if err := os.WriteFile(filepath.Join(root, "old.txt"), []byte("v2, written in place"), 0o644); err != nil {
		t.Fatal(err)
	}
	put(t, root, "sentinel", []byte("x"), 0o644, baseTime)
	for _, b := range waitCovered(t, w, "sentinel") {
		if covered(b, "old.txt") {
			t.Errorf("batch %q reports a write in place, which a directory watch on kqueue does not see", b)
		}
	}
}

// The periodic rescan picks up a write to a file in place, which the
// directory's watch does not see.
func TestWatcherDirsOnlyRescan(t *testing.T) {
	root := t.TempDir()
	put(t, root, "sub/old.txt", []byte("v1"), 0o644, baseTime)
	w := startDirsOnly(t, root, 50*time.Millisecond)
	if err := os.WriteFile(filepath.Join(root, "sub/old.txt"), []byte("v2, written in place"), 0o644); err != nil {
		t.Fatal(err)
	}
	seen := waitCovered(t, w, "sub/old.txt")
	if last := seen[len(seen)-1]; !slices.Equal(last, []string{""}) {
		t.Errorf("write in place reported as %q; want the whole folder's rescan", last)
	}
}

func TestDiffListing(t *testing.T) {
	old := listing{"a": {id: 1}, "b": {id: 2}, "d": {isDir: true, id: 4}, "same": {id: 5}}
	cur := listing{"a": {id: 1}, "b": {id: 9}, "c": {id: 3}, "d": {id: 4}, "same": {id: 5}}
	got := diffListing(old, cur)
	want := []listChange{
		{name: "b", gone: true, came: true}, // replaced (renamed over)
		{name: "c", came: true},             // new
		{name: "d", gone: true, came: true}, // a directory replaced by a file
	}
	if !slices.Equal(got, want) {
		t.Errorf("diffListing = %+v; want %+v", got, want)
	}
	delete(cur, "a")
	if got := diffListing(old, cur); len(got) == 0 || got[0] != (listChange{name: "a", gone: true}) {
		t.Errorf("a removed: diffListing = %+v", got)
	}
}
