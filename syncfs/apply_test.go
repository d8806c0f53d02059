package syncfs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fileHashOf returns the file hash of data, chunked as the scanner does.
func fileHashOf(data []byte) Hash {
	_, sum, err := HashFile(bytes.NewReader(data))
	if err != nil {
		panic(err)
	}
	return sum
}

var applySteps = []string{"create-temp", "write", "fsync", "check", "rename", "dir-fsync"}

// TestApplyCrashSafety fails each step of writing a file in turn, for a
// plain fetch and for a conflict, and checks that the target holds the old
// content or the new, never a mix, that no local content is lost, that
// only a temporary file holding the new content is left behind, and that
// a retry takes it and leaves none.
func TestApplyCrashSafety(t *testing.T) {
	oldData, newData := rnd(10, 700<<10), rnd(11, 900<<10)
	copy(newData[:300<<10], oldData) // some blocks come from the old file
	for _, conflict := range []bool{false, true} {
		for _, step := range applySteps {
			name := step
			if conflict {
				name = "conflict/" + step
			}
			t.Run(name, func(t *testing.T) {
				rootA, rootB := t.TempDir(), t.TempDir()
				put(t, rootA, "f", oldData, 0o644, baseTime)
				a, _ := mustScan(t, scanner(rootA, devA), Local{})
				b := a.Clone()
				put(t, rootB, "f", oldData, 0o644, baseTime)
				b, _ = mustScan(t, scanner(rootB, devB), b)

				put(t, rootA, "f", newData, 0o600, baseTime.Add(time.Hour))
				a, _ = mustScan(t, scanner(rootA, devA), a)
				if conflict {
					// A concurrent, older local edit on B.
					put(t, rootB, "f", oldData[:500<<10], 0o644, baseTime.Add(time.Minute))
					b, _ = mustScan(t, scanner(rootB, devB), b)
				}
				before, _ := os.ReadFile(filepath.Join(rootB, "f"))
				plan := Plan(&b, a.Snapshot(), devB)
				if len(plan) != 1 || plan[0].Kind != map[bool]ActionKind{false: ActFetch, true: ActConflict}[conflict] {
					t.Fatalf("plan = %v", plan)
				}
				injected := errors.New("injected failure")
				ap := &Applier{Root: rootB, Source: newDirSource(rootA, a), hook: func(s, _ string) error {
					if s == step {
						return injected
					}
					return nil
				}}
				res := ap.Apply(context.Background(), &b, plan)
				if !errors.Is(res[0].Err, injected) {
					t.Fatalf("Apply error = %v; want the injected failure", res[0].Err)
				}
				got, err := os.ReadFile(filepath.Join(rootB, "f"))
				if err != nil {
					t.Fatal(err)
				}
				placed := step == "dir-fsync"
				switch {
				case placed && string(got) != string(newData):
					t.Errorf("after a failed %s the target is not the new file", step)
				case !placed && string(got) != string(before):
					t.Errorf("after a failed %s the target is not the old file (%d bytes)", step, len(got))
				}
				if placed != errors.Is(res[0].Err, ErrNotDurable) {
					t.Errorf("error %v: ErrNotDurable = %v; want %v", res[0].Err, !placed, placed)
				}
				// A failure before any block is written leaves no
				// temporary file; one after the content is assembled
				// keeps it, under the version's name, for the next
				// attempt.
				assembled := step == "fsync" || step == "check" || step == "rename"
				tmp := tempFiles(t, rootB)
				switch {
				case !assembled && len(tmp) > 0:
					t.Errorf("temporary files left: %v", tmp)
				case assembled && (len(tmp) != 1 || filepath.Base(tmp[0]) != partialName("f", plan[0].File.FileHash)):
					t.Errorf("temporary files %v; want the partial file of the new version", tmp)
				}
				if conflict && placed {
					ents, _ := os.ReadDir(rootB)
					if len(ents) != 2 {
						t.Errorf("entries %v; want f and its conflict copy", ents)
					}
				}
				// The next scan agrees with what is on disk and a retry
				// converges.
				b, _ = mustScan(t, scanner(rootB, devB), b)
				fetched, _ := syncInto(t, &b, rootB, devB, a, rootA)
				if got, _ := os.ReadFile(filepath.Join(rootB, "f")); string(got) != string(newData) {
					t.Errorf("after a retry the target is not the new file")
				}
				if assembled && fetched != 0 {
					t.Errorf("the retry fetched %d bytes; want none (all in the kept temporary file)", fetched)
				}
				if tmp := tempFiles(t, rootB); len(tmp) > 0 {
					t.Errorf("temporary files left after the retry: %v", tmp)
				}
			})
		}
	}
}

// TestScanRemovesStaleTemp leaves a temporary file as a crash would and
// checks that a scan neither indexes it nor, once stale, keeps it.
func TestScanRemovesStaleTemp(t *testing.T) {
	root := t.TempDir()
	put(t, root, "d/"+TempPrefix+"abc", []byte("partial"), 0o600, baseTime)
	s := scanner(root, devA)
	s.StaleTemp = 2 * time.Hour // the clock is an hour ahead: not stale yet
	l, st := mustScan(t, s, Local{})
	if _, ok := l.Get("d/" + TempPrefix + "abc"); ok || st.TempRemoved != 0 {
		t.Fatalf("fresh temp file: indexed %v, removed %d; want neither", ok, st.TempRemoved)
	}
	s.StaleTemp = -1
	_, st = mustScan(t, s, l)
	if st.TempRemoved != 1 || len(tempFiles(t, root)) != 0 {
		t.Fatalf("stale temp file: removed %d, left %v; want it removed", st.TempRemoved, tempFiles(t, root))
	}
}

// TestApplyHostileNames feeds the applier actions with names that try to
// leave the folder, directly or through symlinks, and checks that every one
// fails and nothing outside the folder changes.
func TestApplyHostileNames(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "folder")
	sentinel := filepath.Join(base, "sentinel")
	put(t, sentinel, "keep.txt", []byte("do not touch"), 0o644, baseTime)
	put(t, root, "ok.txt", []byte("ok"), 0o644, baseTime)
	if err := os.Symlink(sentinel, filepath.Join(root, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../sentinel", filepath.Join(root, "rel")); err != nil {
		t.Fatal(err)
	}
	local, _ := mustScan(t, scanner(root, devB), Local{})
	sentinelBefore := tree(t, sentinel)

	// A source whose blocks are some content, to be written if allowed.
	srcRoot := t.TempDir()
	put(t, srcRoot, "x", []byte("hostile"), 0o644, baseTime)
	src, _ := mustScan(t, scanner(srcRoot, devA), Local{})
	x := src.Entry("x")

	var plan []Action
	names := []string{"../x", "/etc/x", "a/../../x", "abs/x", "rel/x", "abs/keep.txt", "rel/keep.txt", "rel/new/x", "", ".", "a\x00b",
		// The applier's own temporary names: never a synced entry.
		TempPrefix + "0123456789abcdef", "d/" + TempPrefix + "x/y"}
	for _, n := range names {
		f := x
		f.Name = n
		dir := FileInfo{Name: n, Type: TypeDir, Mode: 0o755, Version: x.Version}
		link := FileInfo{Name: n, Type: TypeSymlink, SymlinkTarget: "/etc/passwd", Version: x.Version}
		gone := FileInfo{Name: n, Type: TypeFile, Deleted: true, Version: x.Version}
		plan = append(plan,
			Action{Kind: ActFetch, Name: n, File: f, Need: f.Blocks},
			Action{Kind: ActMkDir, Name: n, File: dir},
			Action{Kind: ActSymlink, Name: n, File: link},
			Action{Kind: ActDelete, Name: n, File: gone},
			Action{Kind: ActMeta, Name: n, File: f},
			Action{Kind: ActRecord, Name: n, File: f},
			Action{Kind: ActRename, Name: n, From: "ok.txt", File: f},
			Action{Kind: ActRename, Name: "ok2.txt", From: n, File: f},
			Action{Kind: ActConflict, Name: "ok.txt", ConflictName: n, File: x, Need: x.Blocks},
			Action{Kind: ActFetch, Name: "copied.txt", File: x, Copy: []BlockCopy{{Block: x.Blocks[0], From: n}}},
		)
	}
	ap := &Applier{Root: root, Source: failingSource{}}
	for _, r := range ap.Apply(context.Background(), &local, plan) {
		if r.Err == nil {
			t.Errorf("%v succeeded; want an error", r.Action)
		}
	}
	for _, r := range ap.ApplyBatch(context.Background(), &local, plan) {
		if r.Err == nil {
			t.Errorf("%v succeeded in a batch; want an error", r.Action)
		}
	}
	if d := treeDiff(sentinelBefore, tree(t, sentinel)); d != "" {
		t.Fatalf("outside the folder changed:\n%s", d)
	}
	if entries, _ := os.ReadDir(base); len(entries) != 2 {
		t.Errorf("entries beside the folder: %v; want folder and sentinel only", entries)
	}
	for n := range local.All() {
		if CheckName(n) != nil || strings.HasPrefix(n, "abs/") || strings.HasPrefix(n, "rel/") {
			t.Errorf("recorded hostile name %q", n)
		}
	}

	// Replacing the symlinks themselves is fine: the link is replaced,
	// never followed.
	link := FileInfo{Name: "abs", Type: TypeFile, Size: x.Size, Blocks: x.Blocks, FileHash: x.FileHash, Mode: 0o644, ModTime: x.ModTime, Version: local.Entry("abs").Version.Update(devA)}
	res := (&Applier{Root: root, Source: newDirSource(srcRoot, src)}).Apply(context.Background(), &local, []Action{{Kind: ActFetch, Name: "abs", File: link, Need: x.Blocks}})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "abs")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("abs after replacing the symlink: %v, %v; want a regular file", fi, err)
	}
	if d := treeDiff(sentinelBefore, tree(t, sentinel)); d != "" {
		t.Fatalf("outside the folder changed:\n%s", d)
	}
}

type failingSource struct{}

func (failingSource) Block(context.Context, Hash, uint32) (VerifiedBlock, error) {
	return VerifiedBlock{}, errors.New("no blocks here")
}

// TestApplyChangedMeanwhile changes the target after the plan and checks
// that the applier leaves it alone.
func TestApplyChangedMeanwhile(t *testing.T) {
	rootA, rootB := t.TempDir(), t.TempDir()
	put(t, rootA, "f", []byte("version 1"), 0o644, baseTime)
	put(t, rootA, "g", []byte("to delete"), 0o644, baseTime)
	a, _ := mustScan(t, scanner(rootA, devA), Local{})
	b, _ := mustScan(t, scanner(rootB, devB), Local{})
	syncInto(t, &b, rootB, devB, a, rootA)

	put(t, rootA, "f", []byte("version 2 from A"), 0o644, baseTime.Add(time.Hour))
	os.Remove(filepath.Join(rootA, "g"))
	a, _ = mustScan(t, scanner(rootA, devA), a)
	plan := Plan(&b, a.Snapshot(), devB)

	// The user edits both on B before the plan is applied (no scan yet).
	put(t, rootB, "f", []byte("user edit on B"), 0o644, baseTime.Add(2*time.Hour))
	put(t, rootB, "g", []byte("user edit of g"), 0o644, baseTime.Add(2*time.Hour))
	ap := &Applier{Root: rootB, Source: newDirSource(rootA, a)}
	res := ap.Apply(context.Background(), &b, plan)
	var kinds []ActionKind
	for _, r := range res {
		kinds = append(kinds, r.Action.Kind)
		if !errors.Is(r.Err, ErrChangedMeanwhile) {
			t.Errorf("%v: error %v; want ErrChangedMeanwhile", r.Action, r.Err)
		}
	}
	if !slices.Contains(kinds, ActFetch) || !slices.Contains(kinds, ActDelete) {
		t.Fatalf("plan kinds %v; want a fetch and a delete", kinds)
	}
	for n, want := range map[string]string{"f": "user edit on B", "g": "user edit of g"} {
		if got, _ := os.ReadFile(filepath.Join(rootB, n)); string(got) != want {
			t.Errorf("%s = %q; want the user's edit %q", n, got, want)
		}
	}
	if tmp := tempFiles(t, rootB); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// TestApplyBatchCrashSafety fails each step of a batch in turn, for one
// file of the batch and for all of them, and checks that each target
// holds its old content or its new one, that only the failed files are
// reported failed (ErrNotDurable once placed), that a removal is done
// only when reported, and that no temporary file is left behind.
func TestApplyBatchCrashSafety(t *testing.T) {
	names := []string{"f1", "d/f2", "d/f3", "e/f4"}
	for _, step := range applySteps {
		for _, target := range []string{"d/f2", "*"} {
			t.Run(step+"/"+target, func(t *testing.T) {
				rootA, rootB := t.TempDir(), t.TempDir()
				for i, n := range names {
					put(t, rootA, n, rnd(uint64(20+i), 3000+i), 0o644, baseTime)
				}
				put(t, rootA, "d/gone", []byte("to remove"), 0o644, baseTime)
				a, _ := mustScan(t, scanner(rootA, devA), Local{})
				var b Local
				syncInto(t, &b, rootB, devB, a, rootA)
				b, _ = mustScan(t, scanner(rootB, devB), b)

				want := map[string][]byte{}
				for i, n := range names {
					want[n] = rnd(uint64(40+i), 5000+i)
					put(t, rootA, n, want[n], 0o600, baseTime.Add(time.Hour))
				}
				os.Remove(filepath.Join(rootA, "d/gone"))
				a, _ = mustScan(t, scanner(rootA, devA), a)
				before := tree(t, rootB)
				plan := Plan(&b, a.Snapshot(), devB)
				for _, act := range plan {
					if !Batchable(act, &b) {
						t.Fatalf("plan action %v not batchable", act)
					}
				}
				injected := errors.New("injected failure")
				failed := func(name string) bool { return target == "*" || name == target }
				ap := &Applier{Root: rootB, Source: newDirSource(rootA, a), hook: func(s, name string) error {
					if s == step && failed(name) {
						return injected
					}
					return nil
				}}
				res := ap.ApplyBatch(context.Background(), &b, plan)
				if len(res) != len(plan) {
					t.Fatalf("%d results for %d actions", len(res), len(plan))
				}
				after := tree(t, rootB)
				for _, r := range res {
					n := r.Action.Name
					// A removal has no temporary file: only its dir-fsync
					// step can fail.
					hit := failed(n) && (r.Action.Kind == ActFetch || step == "dir-fsync")
					placed := !hit || step == "dir-fsync"
					switch {
					case hit && !errors.Is(r.Err, injected):
						t.Errorf("%s: error %v; want the injected failure", n, r.Err)
					case !hit && r.Err != nil:
						t.Errorf("%s: error %v; want success", n, r.Err)
					case hit && placed != errors.Is(r.Err, ErrNotDurable):
						t.Errorf("%s: error %v: ErrNotDurable = %v; want %v", n, r.Err, !placed, placed)
					}
					if r.Action.Kind == ActDelete {
						if _, still := after[n]; still == placed {
							t.Errorf("%s: present %v after the batch; want removed %v", n, still, placed)
						}
						continue
					}
					got, _ := os.ReadFile(filepath.Join(rootB, n))
					switch {
					case placed && !bytes.Equal(got, want[n]):
						t.Errorf("%s: not the new file after a failed %s", n, step)
					case !placed && after[n] != before[n]:
						t.Errorf("%s: not the old file after a failed %s", n, step)
					}
				}
				if tmp := tempFiles(t, rootB); len(tmp) > 0 {
					t.Errorf("temporary files left: %v", tmp)
				}
				// The next scan agrees with the disk and a retry converges.
				b, _ = mustScan(t, scanner(rootB, devB), b)
				syncInto(t, &b, rootB, devB, a, rootA)
				if d := treeDiff(tree(t, rootA), tree(t, rootB)); d != "" {
					t.Errorf("after a retry the folders differ:\n%s", d)
				}
			})
		}
	}
}

// TestApplyBatchMixed gives ApplyBatch actions it cannot batch (a new
// directory, a symlink) among files, some in that directory: they are
// applied alone, first, and everything lands.
func TestApplyBatchMixed(t *testing.T) {
	rootA, rootB := t.TempDir(), t.TempDir()
	put(t, rootA, "new/a", []byte("a"), 0o644, baseTime)
	put(t, rootA, "new/b", rnd(3, 200<<10), 0o644, baseTime)
	put(t, rootA, "top", []byte("top"), 0o644, baseTime)
	if err := os.Symlink("top", filepath.Join(rootA, "link")); err != nil {
		t.Fatal(err)
	}
	a, _ := mustScan(t, scanner(rootA, devA), Local{})
	b, _ := mustScan(t, scanner(rootB, devB), Local{})
	plan := Plan(&b, a.Snapshot(), devB)
	ap := &Applier{Root: rootB, Source: newDirSource(rootA, a)}
	for _, r := range ap.ApplyBatch(context.Background(), &b, plan) {
		if r.Err != nil {
			t.Errorf("%v: %v", r.Action, r.Err)
		}
	}
	if d := treeDiff(tree(t, rootA), tree(t, rootB)); d != "" {
		t.Errorf("folders differ after ApplyBatch:\n%s", d)
	}
	b2, st := mustScan(t, scanner(rootB, devB), b)
	if st.Changed != 0 || st.Hashed != 0 {
		t.Errorf("scan after ApplyBatch: %+v; want nothing changed or rehashed (the records match the disk)", st)
	}
	if len(Plan(&b2, a.Snapshot(), devB)) != 0 {
		t.Errorf("plan after ApplyBatch not empty")
	}
}

// TestApplyBatchDirGone removes, in a batch, a file whose directory is
// already gone from disk: as with Apply, the removal is recorded (at most
// ErrNotDurable), not failed.
func TestApplyBatchDirGone(t *testing.T) {
	rootA, rootB := t.TempDir(), t.TempDir()
	put(t, rootA, "keep", []byte("keep"), 0o644, baseTime)
	put(t, rootA, "d/f", []byte("f"), 0o644, baseTime)
	put(t, rootA, "d/g", []byte("g"), 0o644, baseTime)
	a, _ := mustScan(t, scanner(rootA, devA), Local{})
	var b Local
	syncInto(t, &b, rootB, devB, a, rootA)
	os.Remove(filepath.Join(rootA, "d/f"))
	os.Remove(filepath.Join(rootA, "d/g"))
	a, _ = mustScan(t, scanner(rootA, devA), a)
	if err := os.RemoveAll(filepath.Join(rootB, "d")); err != nil { // gone before B's next scan
		t.Fatal(err)
	}
	plan := Plan(&b, a.Snapshot(), devB)
	ap := &Applier{Root: rootB, Source: newDirSource(rootA, a)}
	n := 0
	for _, r := range ap.ApplyBatch(context.Background(), &b, plan) {
		if r.Action.Kind == ActDelete && (r.Action.Name == "d/f" || r.Action.Name == "d/g") {
			n++
			if r.Err != nil && !errors.Is(r.Err, ErrNotDurable) { // its directory cannot be fsynced: it is gone
				t.Errorf("%v: %v; want the removal recorded", r.Action, r.Err)
			}
			if f := b.Entry(r.Action.Name); !f.Deleted {
				t.Errorf("%s recorded as %+v; want a tombstone", r.Action.Name, f)
			}
		}
	}
	if n != 2 {
		t.Fatalf("plan %v: want removals of d/f and d/g", plan)
	}
}
