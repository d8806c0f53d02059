package folderstore_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.etcd.io/bbolt"

	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/syncfs"
)

// fileOf returns an entry for name holding data in one block, by dev.
func fileOf(name string, data []byte, dev string, v uint64) syncfs.FileInfo {
	h := syncfs.HashBytes(data)
	blocks := []syncfs.Block{{Size: uint32(len(data)), Hash: h}}
	return syncfs.FileInfo{Name: name, Type: syncfs.TypeFile, Size: int64(len(data)), Blocks: blocks,
		FileHash: syncfs.FileHashOf(blocks), Version: syncfs.Vector{Counters: []syncfs.Counter{{Device: dev, Value: v}}}}
}

func TestAppendHistoryExport(t *testing.T) {
	dir := t.TempDir()
	st, _ := openStore(t, dir)
	content := map[syncfs.Hash][]byte{}
	read := func(_ string, b syncfs.Block) ([]byte, error) { return content[b.Hash], nil }
	put := func(fi syncfs.FileInfo, data []byte) syncfs.FileInfo { content[fi.Blocks[0].Hash] = data; return fi }

	a1 := put(fileOf("docs/a.txt", []byte("one"), "dev1", 1), []byte("one"))
	if _, skipped, err := st.Append("f", epoch, []syncfs.FileInfo{a1}, "dev1", read); err != nil || len(skipped) > 0 {
		t.Fatal(err, skipped)
	}
	a2 := put(fileOf("docs/a.txt", []byte("two"), "dev2", 2), []byte("two"))
	lost := fileOf("b.txt", []byte("never read"), "dev2", 2)
	if _, skipped, err := st.Append("f", epoch.Add(1e9), []syncfs.FileInfo{a2, lost}, "dev2", read); err != nil || len(skipped) != 1 || skipped[0] != "b.txt" {
		t.Fatalf("skipped %v, err %v; want b.txt skipped", skipped, err)
	}
	del := a2
	del.Deleted, del.Blocks, del.Size = true, nil, 0
	if _, _, err := st.Append("f", epoch.Add(2e9), []syncfs.FileInfo{del}, "dev1", read); err != nil {
		t.Fatal(err)
	}
	hist, err := st.History("f", "docs")
	if err != nil || len(hist) != 3 || hist[0].Device != "dev1" || hist[1].Device != "dev2" || !hist[2].Entry.Deleted {
		t.Fatalf("history %+v, err %v", hist, err)
	}
	seq, err := st.SeqAt("f", epoch.Add(1500e6))
	if err != nil || seq != 2 {
		t.Fatalf("SeqAt = %d, %v; want 2", seq, err)
	}
	out := filepath.Join(dir, "out")
	if err := st.Export("f", seq, out); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(out, "docs", "a.txt")); err != nil || string(got) != "two" {
		t.Fatalf("exported %q, %v; want two", got, err)
	}
	if _, err := os.Stat(filepath.Join(out, "b.txt")); !os.IsNotExist(err) {
		t.Fatalf("b.txt exported though its blocks were never stored: %v", err)
	}
	if _, err := st.SeqAt("f", epoch.Add(-1)); err == nil {
		t.Fatal("SeqAt before the first snapshot succeeded")
	}
}

// TestReadsAreBounded makes a folder of 50 files and then 400 snapshots
// that each change one of them: the latest tree reads the two snapshots
// that hold its entries, not the history; a file's history reads the
// snapshots that changed it; SeqAt finds any snapshot.
func TestReadsAreBounded(t *testing.T) {
	st, _ := openStore(t, t.TempDir())
	w := newWorld(t, 3, "f")
	var first []syncfs.FileInfo
	for i := range 50 {
		first = append(first, w.fileEntry(fmt.Sprintf("f%03d", i), "dev-a", w.chunks[i%len(w.chunks)]))
	}
	if _, _, err := st.Append("f", w.now, first, "dev-a", w.read); err != nil {
		t.Fatal(err)
	}
	for _, fi := range first {
		w.tree[fi.Name] = fi
	}
	var last folderstore.Snapshot
	for i := range 400 {
		w.now = w.now.Add(time.Minute)
		hot := w.fileEntry("f007", "dev-b", w.chunks[i%len(w.chunks)], w.chunks[(i+1)%len(w.chunks)])
		snap, _, err := st.Append("f", w.now, []syncfs.FileInfo{hot}, "dev-b", w.read)
		if err != nil {
			t.Fatal(err)
		}
		w.tree[hot.Name], last = hot, snap
	}
	var reads []uint64
	folderstore.SetReadHook(st, func(seq uint64) { reads = append(reads, seq) })
	tree, err := st.Tree("f", last.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(w.tree, map[string]syncfs.FileInfo(tree)); diff != "" {
		t.Fatalf("Tree (-want +got):\n%s", diff)
	}
	if !slices.Equal(reads, []uint64{1, last.Seq}) {
		t.Fatalf("Tree read snapshots %v; want only the two that hold its entries, [1 %d]", reads, last.Seq)
	}
	reads = nil
	hist, err := st.History("f", "f012")
	if err != nil || len(hist) != 1 || !slices.Equal(reads, []uint64{1}) {
		t.Fatalf("History of a file changed once: %d versions, %v, read %v; want 1, snapshot 1", len(hist), err, reads)
	}
	reads = nil
	if hist, err := st.History("f", "f007"); err != nil || len(hist) != 401 || len(reads) != 401 {
		t.Fatalf("History of a file changed 401 times: %d versions, %v, %d snapshots read", len(hist), err, len(reads))
	}
	for _, minutes := range []int{0, 1, 200, 400, 10000} {
		want := min(uint64(minutes)+1, last.Seq)
		if got, err := st.SeqAt("f", epoch.Add(time.Duration(minutes)*time.Minute+time.Second)); err != nil || got != want {
			t.Fatalf("SeqAt(+%d min) = %d, %v; want %d", minutes, got, err, want)
		}
	}
}

// TestHistoryOfDirectory lists a directory's versions: its own and its
// entries', not those of names that merely start with its name.
func TestHistoryOfDirectory(t *testing.T) {
	st, _ := openStore(t, t.TempDir())
	w := newWorld(t, 4, "f")
	var changes []syncfs.FileInfo
	for _, name := range []string{"d1/x", "d1x", "d1-y/z", "d1/sub/q", "d0"} {
		changes = append(changes, w.fileEntry(name, "dev-a", w.chunks[0]))
	}
	changes = append(changes, syncfs.FileInfo{Name: "d1", Type: syncfs.TypeDir, Mode: 0o755, Version: w.version("dev-a")})
	if _, _, err := st.Append("f", w.now, changes, "dev-a", w.read); err != nil {
		t.Fatal(err)
	}
	hist, err := st.History("f", "/d1/")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range hist {
		names = append(names, v.Entry.Name)
	}
	if want := []string{"d1", "d1/sub/q", "d1/x"}; !slices.Equal(names, want) {
		t.Fatalf("History(d1) = %v; want %v", names, want)
	}
}

// TestChangedAgainstTree compares Changed with the latest Tree over
// random histories (pruned too): given every path of the tree, some
// changed, and new paths, it returns exactly those whose latest version
// differs or is absent, in the order given; and it refuses a history whose
// snapshot holding a version it read was altered.
func TestChangedAgainstTree(t *testing.T) {
	same := func(a, b syncfs.FileInfo) bool {
		return a.Deleted == b.Deleted && a.Version.Compare(b.Version) == syncfs.Equal
	}
	for seed := range uint64(6) {
		c := newCrashSetup(t, 0)
		c.w = newWorld(t, seed, "docs")
		for range 25 {
			c.w.appendChange(c.st)
		}
		if seed%2 == 1 {
			p, _ := folderstore.ParsePolicy("all:6h,daily:forever")
			if _, err := c.st.Prune(c.w.folder, p, c.w.now); err != nil {
				t.Fatal(err)
			}
		}
		snaps, err := c.st.Snapshots(c.w.folder)
		if err != nil {
			t.Fatal(err)
		}
		tree, err := c.st.Tree(c.w.folder, snaps[len(snaps)-1].Seq)
		if err != nil {
			t.Fatal(err)
		}
		var entries, want []syncfs.FileInfo
		for i, name := range slices.Sorted(maps.Keys(tree)) {
			fi := tree[name]
			if i%3 == 1 {
				fi.Version = c.w.version("dev-z")
				want = append(want, fi)
			}
			entries = append(entries, fi)
		}
		for _, name := range []string{"new/a", "0-first", "zz"} {
			fi := c.w.fileEntry(name, "dev-z", []byte(name))
			entries, want = append(entries, fi), append(want, fi)
		}
		got, err := c.st.Changed(c.w.folder, entries, same)
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(got, want) {
			t.Fatalf("seed %d: Changed (-want +got):\n%s", seed, cmp.Diff(want, got))
		}
		if got, err := c.st.Changed("another", entries, same); err != nil || len(got) != len(entries) {
			t.Fatalf("Changed of a folder with no history = %d entries, %v; want all %d", len(got), err, len(entries))
		}
		if seed > 0 {
			continue
		}
		last := snaps[len(snaps)-1]
		editDB(t, c, func(tx *bbolt.Tx) error {
			hdr := getHeader(t, tx, c.w.folder, last.Seq)
			hdr.Time--
			putHeader(t, tx, hdr)
			return nil
		})
		if _, err := c.st.Changed(c.w.folder, entries, same); !errors.Is(err, folderstore.ErrTampered) {
			t.Fatalf("Changed over an altered snapshot = %v; want ErrTampered", err)
		}
	}
}

// AppendFrom reads its changes as it writes them, a chunk at a time: a
// stream of several chunks makes one snapshot, authored by the device
// that made most of its entries; a stream that fails part way commits
// nothing, leaves no pending entries and a store that verifies, and the
// next Append takes the same sequence.
func TestAppendFromStream(t *testing.T) {
	st, _ := openStore(t, t.TempDir())
	folderstore.SetAppendChunk(st, 4)
	content := map[syncfs.Hash][]byte{}
	read := func(_ string, b syncfs.Block) ([]byte, error) { return content[b.Hash], nil }
	var entries []syncfs.FileInfo
	for i := range 11 {
		data := []byte(fmt.Sprint("file ", i))
		dev := "dev1"
		if i%3 == 0 {
			dev = "dev2"
		}
		fi := fileOf(fmt.Sprintf("f%02d", i), data, dev, 1)
		content[fi.Blocks[0].Hash] = data
		entries = append(entries, fi)
	}
	stream := func(failAt int) func(func(syncfs.FileInfo, error) bool) {
		return func(yield func(syncfs.FileInfo, error) bool) {
			for i, fi := range entries {
				if i == failAt {
					yield(syncfs.FileInfo{}, errors.New("the index went away"))
					return
				}
				if !yield(fi, nil) {
					return
				}
			}
		}
	}
	if _, _, err := st.AppendFrom("f", epoch, stream(9), read); err == nil {
		t.Fatal("AppendFrom of a stream that failed after two chunks succeeded")
	}
	if snaps, err := st.Snapshots("f"); err != nil || len(snaps) != 0 {
		t.Fatalf("after a failed stream: %d snapshots, %v; want none", len(snaps), err)
	}
	if n, err := folderstore.PendingEntries(st, "f"); err != nil || n != 0 {
		t.Fatalf("after a failed stream: %d pending entries, %v; want none", n, err)
	}
	if err := st.Verify(); err != nil {
		t.Fatalf("Verify after a failed stream: %v", err)
	}
	snap, skipped, err := st.AppendFrom("f", epoch, stream(-1), read)
	if err != nil || len(skipped) > 0 {
		t.Fatalf("AppendFrom: %v, skipped %v", err, skipped)
	}
	if snap.Seq != 1 || snap.Count != 11 || snap.Author != "dev1" {
		t.Errorf("snapshot %d of %d entries by %q; want 1 of 11 by dev1 (7 of them)", snap.Seq, snap.Count, snap.Author)
	}
	tree, err := st.Tree("f", snap.Seq)
	if err != nil || len(tree) != 11 {
		t.Fatalf("tree of %d entries, %v; want 11", len(tree), err)
	}
	if _, _, err := st.AppendFrom("f", epoch, stream(-1), read, folderstore.WithEvidence([]byte("pages"))); !errors.Is(err, folderstore.ErrBadEvidence) {
		t.Errorf("evidence without an author = %v; want ErrBadEvidence", err)
	}
}

// A Comparison's windows each compare with the latest tree, and find a
// tampered snapshot in any window, whichever checked it first.
func TestComparisonWindows(t *testing.T) {
	c := &crashSetup{dir: t.TempDir()}
	c.open(t)
	st := c.st
	content := map[syncfs.Hash][]byte{}
	read := func(_ string, b syncfs.Block) ([]byte, error) { return content[b.Hash], nil }
	var all []syncfs.FileInfo
	for i := range 20 {
		data := []byte(fmt.Sprint("file ", i))
		fi := fileOf(fmt.Sprintf("f%02d", i), data, "dev1", 1)
		content[fi.Blocks[0].Hash] = data
		all = append(all, fi)
	}
	if _, _, err := st.Append("f", epoch, all[:10], "dev1", read); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Append("f", epoch, all[10:], "dev1", read); err != nil {
		t.Fatal(err)
	}
	same := func(a, b syncfs.FileInfo) bool { return a.FileHash == b.FileHash }
	changed := all[3]
	changed.FileHash[0] ^= 1
	cmp := st.Compare("f", same)
	for i, w := range [][]syncfs.FileInfo{{all[0], changed}, {all[4], all[12]}, {all[5], all[13], fileOf("new", []byte("x"), "dev1", 1)}} {
		got, err := cmp.Changed(w)
		if err != nil {
			t.Fatalf("window %d: %v", i, err)
		}
		var names []string
		for _, fi := range got {
			names = append(names, fi.Name)
		}
		want := [][]string{{"f03"}, nil, {"new"}}[i]
		if !slices.Equal(names, want) {
			t.Errorf("window %d: changed %v; want %v", i, names, want)
		}
	}
	editDB(t, c, func(tx *bbolt.Tx) error {
		hdr := getHeader(t, tx, "f", 2)
		hdr.Time -= int64(time.Minute)
		putHeader(t, tx, hdr)
		return nil
	})
	cmp = c.st.Compare("f", same)
	if _, err := cmp.Changed(all[:2]); err != nil {
		t.Fatalf("a window of the untampered snapshot: %v", err)
	}
	if _, err := cmp.Changed(all[14:16]); !errors.Is(err, folderstore.ErrTampered) {
		t.Errorf("a window of the tampered snapshot = %v; want ErrTampered", err)
	}
}
