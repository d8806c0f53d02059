package syncfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSyncFoldersEndToEnd scans two real folders, plans and applies A's
// changes to B with blocks read from A's files, and checks after each round
// that the trees are equal and that B's rescan finds nothing to announce.
func TestSyncFoldersEndToEnd(t *testing.T) {
	rootA, rootB := t.TempDir(), t.TempDir()
	sa, sb := scanner(rootA, devA), scanner(rootB, devB)

	const bigSize = 8 << 20
	big := rnd(1, bigSize)
	put(t, rootA, "big.bin", big, 0o644, baseTime)
	put(t, rootA, "docs/a.txt", []byte("alpha"), 0o644, baseTime)
	put(t, rootA, "docs/deep/b.txt", []byte("beta"), 0o600, baseTime.Add(time.Second))
	put(t, rootA, "empty", nil, 0o644, baseTime)
	put(t, rootA, "tool.sh", []byte("#!/bin/sh\n"), 0o755, baseTime)
	if err := os.Mkdir(filepath.Join(rootA, "emptydir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("docs/a.txt", filepath.Join(rootA, "link")); err != nil {
		t.Fatal(err)
	}

	a, _ := mustScan(t, sa, Local{})
	b, _ := mustScan(t, sb, Local{})

	round := func(name string) int64 {
		t.Helper()
		fetched, _ := syncInto(t, &b, rootB, devB, a, rootA)
		if d := treeDiff(tree(t, rootA), tree(t, rootB)); d != "" {
			t.Fatalf("%s: trees differ after sync:\n%s", name, d)
		}
		var st ScanStats
		b, st = mustScan(t, sb, b)
		if st.Changed != 0 || st.Hashed != 0 {
			t.Errorf("%s: rescan of B after applying: %d changed, %d hashed; want 0, 0 (the applier records what it writes)", name, st.Changed, st.Hashed)
		}
		if tmp := tempFiles(t, rootB); len(tmp) > 0 {
			t.Errorf("%s: temp files left: %v", name, tmp)
		}
		return fetched
	}
	if got := round("initial"); got < bigSize {
		t.Errorf("initial sync fetched %d bytes; want at least %d", got, bigSize)
	}

	// Changes on A: a 64 KiB edit in the middle of the large file, a new
	// file, a deletion, a rename, a new directory with a file, a new
	// symlink, a chmod.
	const editAt, editLen = 3 << 20, 64 << 10
	copy(big[editAt:], rnd(2, editLen))
	put(t, rootA, "big.bin", big, 0o644, baseTime.Add(time.Minute))
	put(t, rootA, "new.txt", []byte("new file"), 0o644, baseTime)
	if err := os.Remove(filepath.Join(rootA, "empty")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(rootA, "docs/deep/b.txt"), filepath.Join(rootA, "docs/b-moved.txt")); err != nil {
		t.Fatal(err)
	}
	put(t, rootA, "made/by/mkdir/p.txt", []byte("nested"), 0o644, baseTime)
	if err := os.Symlink("../big.bin", filepath.Join(rootA, "docs/link2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(rootA, "tool.sh"), 0o700); err != nil {
		t.Fatal(err)
	}
	var st ScanStats
	a, st = mustScan(t, sa, a)
	if st.Hashed != 5 { // big.bin, new.txt, b-moved.txt, p.txt, tool.sh (chmod changes its ctime)
		t.Errorf("rescan of A hashed %d files; want 5 (unchanged files reuse their hashes)", st.Hashed)
	}
	fetched := round("changes")
	// The edit touches a block or two (about 384 KiB each on average, at
	// most 2 MiB), and the new small files come along.
	if fetched < editLen || fetched > editLen+4<<20 {
		t.Errorf("after a %d-byte edit in a %d-byte file, fetched %d bytes; want about the edit, not the file", editLen, bigSize, fetched)
	}
	t.Logf("a %d KiB edit in an %d MiB file fetched %d KiB", editLen>>10, bigSize>>20, fetched>>10)
	if f := b.Entry("docs/deep/b.txt"); !f.Deleted {
		t.Errorf("B's entry for the renamed-away file = %+v; want a tombstone", f)
	}

	// A directory removed on A with its content.
	if err := os.RemoveAll(filepath.Join(rootA, "made")); err != nil {
		t.Fatal(err)
	}
	a, _ = mustScan(t, sa, a)
	round("remove tree")
}

// TestSyncConflictKeepsBoth edits the same file on both sides and syncs
// both ways: both contents survive, one as a conflict copy, and the trees
// converge.
func TestSyncConflictKeepsBoth(t *testing.T) {
	rootA, rootB := t.TempDir(), t.TempDir()
	sa, sb := scanner(rootA, devA), scanner(rootB, devB)
	put(t, rootA, "notes.txt", []byte("original"), 0o644, baseTime)
	a, _ := mustScan(t, sa, Local{})
	b, _ := mustScan(t, sb, Local{})
	syncInto(t, &b, rootB, devB, a, rootA)

	put(t, rootA, "notes.txt", []byte("edited on A"), 0o644, baseTime.Add(time.Minute))
	put(t, rootB, "notes.txt", []byte("edited on B, later"), 0o644, baseTime.Add(2*time.Minute))
	a, _ = mustScan(t, sa, a)
	b, _ = mustScan(t, sb, b)

	for i := range 3 {
		syncInto(t, &b, rootB, devB, a, rootA)
		b, _ = mustScan(t, sb, b)
		syncInto(t, &a, rootA, devA, b, rootB)
		a, _ = mustScan(t, sa, a)
		if treeDiff(tree(t, rootA), tree(t, rootB)) == "" {
			break
		}
		if i == 2 {
			t.Fatalf("trees did not converge:\n%s", treeDiff(tree(t, rootA), tree(t, rootB)))
		}
	}
	contents := map[string]bool{}
	for _, root := range []string{rootA, rootB} {
		ents, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			data, err := os.ReadFile(filepath.Join(root, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			contents[string(data)] = true
			if e.Name() != "notes.txt" && !strings.Contains(e.Name(), ".sync-conflict-") {
				t.Errorf("unexpected entry %s", e.Name())
			}
		}
	}
	for _, want := range []string{"edited on A", "edited on B, later"} {
		if !contents[want] {
			t.Errorf("content %q lost; have %v", want, contents)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(rootA, "notes.txt")); string(got) != "edited on B, later" {
		t.Errorf("notes.txt on A = %q; want the later edit", got)
	}
}
