package syncfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// leftoverPeer is device A: a folder whose changes B takes.
type leftoverPeer struct {
	t     *testing.T
	root  string
	local Local
	step  time.Duration // the next mtime, after baseTime
}

// write puts data at name on A (a later mtime each time) and rescans.
func (p *leftoverPeer) write(name string, data []byte) {
	p.t.Helper()
	p.step += time.Minute
	put(p.t, p.root, name, data, 0o644, baseTime.Add(p.step))
	p.local, _ = mustScan(p.t, scanner(p.root, devA), p.local)
}

// removeAll removes name on A and rescans.
func (p *leftoverPeer) removeAll(name string) {
	p.t.Helper()
	if err := os.RemoveAll(filepath.Join(p.root, filepath.FromSlash(name))); err != nil {
		p.t.Fatal(err)
	}
	p.local, _ = mustScan(p.t, scanner(p.root, devA), p.local)
}

// rename renames from to to on A and rescans.
func (p *leftoverPeer) rename(from, to string) {
	p.t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(p.root, filepath.FromSlash(to))), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(p.root, filepath.FromSlash(from)), filepath.Join(p.root, filepath.FromSlash(to))); err != nil {
		p.t.Fatal(err)
	}
	p.local, _ = mustScan(p.t, scanner(p.root, devA), p.local)
}

// TestApplyLeavesNoTemporaries runs orders of fetch, newer version,
// rename and deletion in which a fetch is cut off half way (its partial
// file kept to be resumed) and the file, then its directory, are deleted
// or moved away before it arrives, as rapid git checkouts do. Every
// change must go through on B, and no temporary file may stay behind.
func TestApplyLeavesNoTemporaries(t *testing.T) {
	const dir, big = "proj/cmd/baton", "proj/cmd/baton/main.bin"
	for _, tc := range []struct {
		name string
		// had: B took a first version of big before the cut fetch.
		had bool
		// restart: the cut fetch was by another Applier (an earlier
		// process): nothing in memory knows its partial file.
		restart bool
		// then changes A after the cut fetch, with more cut fetches
		// (cut) in between.
		then func(a *leftoverPeer, cut func())
	}{
		{name: "deleted before it arrived", then: func(a *leftoverPeer, cut func()) {
			a.removeAll(dir)
		}},
		{name: "deleted after a restart", restart: true, then: func(a *leftoverPeer, cut func()) {
			a.removeAll(dir)
		}},
		{name: "file then directory deleted", then: func(a *leftoverPeer, cut func()) {
			a.removeAll(big)
			a.removeAll(dir)
		}},
		{name: "older version here, newer cut, then deleted", had: true, then: func(a *leftoverPeer, cut func()) {
			a.write(big, rnd(33, 3<<20))
			cut()
			a.removeAll(dir)
		}},
		{name: "newer version then deleted", then: func(a *leftoverPeer, cut func()) {
			a.write(big, rnd(34, 3<<20))
			a.removeAll(dir)
		}},
		{name: "moved to another directory", then: func(a *leftoverPeer, cut func()) {
			a.rename(big, "proj/internal/main.bin")
			a.removeAll(dir)
		}},
		{name: "directory moved", had: true, then: func(a *leftoverPeer, cut func()) {
			a.write(big, rnd(35, 3<<20))
			cut()
			a.rename(dir, "proj/cmd/batond")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &leftoverPeer{t: t, root: t.TempDir()}
			rootB := t.TempDir()
			a.write("proj/README", []byte("readme\n"))
			if tc.had {
				a.write(big, rnd(31, 3<<20))
			} else {
				a.write(dir+"/keep.txt", []byte("keep\n"))
			}
			b, _ := mustScan(t, scanner(rootB, devB), Local{})
			syncInto(t, &b, rootB, devB, a.local, a.root)
			if !tc.had {
				a.removeAll(dir + "/keep.txt")
				syncInto(t, &b, rootB, devB, a.local, a.root)
			}

			// A fetch of a new version of big, cut off after a few blocks:
			// its partial file is kept.
			ap := &Applier{Root: rootB}
			cut := func() {
				t.Helper()
				plan := Plan(&b, a.local.Snapshot(), devB)
				ap.Source = &cutSource{inner: newDirSource(a.root, a.local), after: 2}
				ap.Concurrency = 1
				failed := false
				for _, r := range ap.Apply(context.Background(), &b, plan) {
					failed = failed || r.Err != nil && r.Action.Name == big
				}
				if !failed || len(tempFiles(t, rootB)) != 1 {
					t.Fatalf("the cut fetch of %s: failed %v, temporary files %v; want a failure and its partial file", big, failed, tempFiles(t, rootB))
				}
			}
			a.write(big, rnd(32, 3<<20))
			cut()
			tc.then(a, cut)
			if tc.restart {
				ap = &Applier{Root: rootB}
			}

			// B takes A's changes: every one must go through.
			plan := Plan(&b, a.local.Snapshot(), devB)
			ap.Source, ap.Concurrency = newDirSource(a.root, a.local), 0
			ap.Resume(context.Background(), plan)
			for _, r := range ap.Apply(context.Background(), &b, plan) {
				if r.Err != nil {
					t.Errorf("%v", r.Err)
				}
			}
			if tmp := tempFiles(t, rootB); len(tmp) > 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
			if d := treeDiff(tree(t, a.root), tree(t, rootB)); d != "" {
				t.Errorf("B differs from A:\n%s", d)
			}
			// Nothing left to do.
			if plan := Plan(&b, a.local.Snapshot(), devB); len(plan) > 0 {
				t.Errorf("plan after applying: %v; want none", plan)
			}
		})
	}
}

// TestDropSuperseded keeps the partial file of a cut fetch, then has A
// change or delete the file while its directory stays: the partial file
// goes as soon as B sees the later version, even where no action touches
// the name (B never had the file), and stays while its version is the
// one wanted.
func TestDropSuperseded(t *testing.T) {
	const big = "d/big"
	for _, tc := range []struct {
		name string
		then func(a *leftoverPeer)
		want int // partial files DropSuperseded removes
	}{
		{"unchanged", func(a *leftoverPeer) {}, 0},
		{"other file changed", func(a *leftoverPeer) { a.write("d/other", []byte("other, edited\n")) }, 0},
		{"newer version", func(a *leftoverPeer) { a.write(big, rnd(42, 3<<20)) }, 1},
		{"deleted", func(a *leftoverPeer) { a.removeAll(big) }, 1},
		{"moved", func(a *leftoverPeer) { a.rename(big, "e/big") }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &leftoverPeer{t: t, root: t.TempDir()}
			rootB := t.TempDir()
			a.write("d/other", []byte("other\n"))
			b, _ := mustScan(t, scanner(rootB, devB), Local{})
			syncInto(t, &b, rootB, devB, a.local, a.root)
			a.write(big, rnd(41, 3<<20))
			ap := &Applier{Root: rootB, Source: &cutSource{inner: newDirSource(a.root, a.local), after: 2}, Concurrency: 1}
			ap.Apply(context.Background(), &b, Plan(&b, a.local.Snapshot(), devB))
			if tmp := tempFiles(t, rootB); len(tmp) != 1 {
				t.Fatalf("after the cut fetch: temporary files %v; want the partial file", tmp)
			}
			tc.then(a)
			if got := ap.DropSuperseded(a.local.Snapshot()); got != tc.want || len(tempFiles(t, rootB)) != 1-tc.want {
				t.Errorf("DropSuperseded removed %d, left %v; want %d removed", got, tempFiles(t, rootB), tc.want)
			}
			// What is left is resumed, or there is nothing left.
			ap.Source, ap.Concurrency = newDirSource(a.root, a.local), 0
			for _, r := range ap.Apply(context.Background(), &b, Plan(&b, a.local.Snapshot(), devB)) {
				if r.Err != nil {
					t.Error(r.Err)
				}
				if r.Action.Name == big && (tc.want == 0) != (r.Resumed > 0) {
					t.Errorf("%v: resumed %d bytes", r.Action, r.Resumed)
				}
			}
			if tmp := tempFiles(t, rootB); len(tmp) > 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
			if d := treeDiff(tree(t, a.root), tree(t, rootB)); d != "" {
				t.Errorf("B differs from A:\n%s", d)
			}
		})
	}
}

// TestApplyDeleteDirKeepsUnknown deletes on A a directory that, on B,
// holds the applier's temporary files and a file B has not scanned yet:
// the temporary files go, the file stays, and the directory is kept as a
// conflict, recorded with a version that wins over A's deletion, so that
// A gets it back. A directory holding an entry B records as live (whose
// deletion failed) is not touched.
func TestApplyDeleteDirKeepsUnknown(t *testing.T) {
	a := &leftoverPeer{t: t, root: t.TempDir()}
	rootB := t.TempDir()
	a.write("d/sub/x", []byte("x\n"))
	b, _ := mustScan(t, scanner(rootB, devB), Local{})
	syncInto(t, &b, rootB, devB, a.local, a.root)
	put(t, rootB, "d/sub/"+TempPrefix+"0123456789abcdef", []byte("partial"), 0o600, time.Now())
	put(t, rootB, "d/"+TempPrefix+"ABCDEFGHIJKL", []byte("crash"), 0o600, time.Now())
	put(t, rootB, "d/new.txt", []byte("not scanned yet\n"), 0o644, time.Now())
	a.removeAll("d")

	plan := Plan(&b, a.local.Snapshot(), devB)
	ap := &Applier{Root: rootB, Source: newDirSource(a.root, a.local)}
	var conflict string
	for _, r := range ap.Apply(context.Background(), &b, plan) {
		if r.Err != nil {
			t.Errorf("%v", r.Err)
		}
		if r.Action.Name == "d" {
			conflict = r.Conflict
		} else if r.Conflict != "" {
			t.Errorf("%v: conflict %q; want none", r.Action, r.Conflict)
		}
	}
	if conflict == "" || !strings.Contains(conflict, "new.txt") {
		t.Errorf("deleting d: conflict %q; want one naming new.txt", conflict)
	}
	if tmp := tempFiles(t, rootB); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	if got, err := os.ReadFile(filepath.Join(rootB, "d/new.txt")); string(got) != "not scanned yet\n" {
		t.Errorf("d/new.txt: %q, %v; want it kept", got, err)
	}
	if _, err := os.Stat(filepath.Join(rootB, "d/sub")); err == nil {
		t.Error("d/sub, which held only temporary files, was not deleted")
	}
	d, dA := b.Entry("d"), a.local.Entry("d")
	if d.Deleted || d.Type != TypeDir || d.Version.Compare(dA.Version) != Greater {
		t.Errorf("B records d as %+v; want a live directory, newer than A's %v", d, dA.Version)
	}
	// B's scan finds the new file; A takes B's changes and gets d back.
	b, _ = mustScan(t, scanner(rootB, devB), b)
	syncInto(t, &a.local, a.root, devA, b, rootB)
	if diff := treeDiff(tree(t, rootB), tree(t, a.root)); diff != "" {
		t.Errorf("A differs from B after taking B's changes:\n%s", diff)
	}

	// An entry still recorded as live: no change at all.
	put(t, rootB, "e/y", []byte("y\n"), 0o644, baseTime)
	put(t, rootB, "e/"+TempPrefix+"0123456789abcdef", []byte("partial"), 0o600, time.Now())
	b, _ = mustScan(t, scanner(rootB, devB), b)
	del := Action{Kind: ActDelete, Name: "e", File: FileInfo{Name: "e", Type: TypeDir, Deleted: true, Version: b.Entry("e").Version.Update(devA)}}
	del.Also = ptr(b.Entry("e"))
	res := ap.Apply(context.Background(), &b, []Action{del})[0]
	if !errors.Is(res.Err, ErrDirNotEmpty) || res.Conflict != "" {
		t.Errorf("deleting e, which holds a live entry: err %v, conflict %q; want ErrDirNotEmpty", res.Err, res.Conflict)
	}
	if len(tempFiles(t, rootB)) != 1 || b.Entry("e").Deleted {
		t.Errorf("after the refused deletion: temporary files %v, e recorded deleted %v; want both kept", tempFiles(t, rootB), b.Entry("e").Deleted)
	}
}
