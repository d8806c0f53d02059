package syncfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A block copied from a local file is taken without hashing it only while
// the file's stat is the one the Local recorded, not racily: a file
// rewritten behind the Local's back (same size, mtime put back, so only
// its ctime tells) or recorded too soon after a change is hashed, and a
// block it no longer holds is not copied.
func TestApplyCopyTrustsOnlyUnchangedSources(t *testing.T) {
	const size = 1 << 20
	setup := func(t *testing.T) (string, *Local, FileInfo) {
		root := t.TempDir()
		put(t, root, "old.bin", rnd(1, size), 0o644, baseTime)
		// The test scanner's clock is an hour ahead: the stats are not
		// racy.
		l, _ := mustScan(t, scanner(root, devA), Local{})
		old := l.Entry("old.bin")
		if len(old.Blocks) < 2 {
			t.Fatalf("old.bin has %d blocks; want several", len(old.Blocks))
		}
		if d, _ := l.Stat("old.bin"); d.Racy {
			t.Fatal("old.bin's stat was recorded as racy")
		}
		return root, &l, old
	}
	// new.bin: old.bin's content, every block copied from old.bin; no
	// source for fetching.
	copyAction := func(old FileInfo) Action {
		f := old
		f.Name, f.Version = "new.bin", Vector{}.Update(devB)
		var cp []BlockCopy
		for _, b := range old.Blocks {
			cp = append(cp, BlockCopy{Block: b, From: "old.bin", FromOffset: b.Offset})
		}
		return Action{Kind: ActFetch, Name: "new.bin", File: f, Copy: cp}
	}

	t.Run("unchanged", func(t *testing.T) {
		root, l, old := setup(t)
		res := (&Applier{Root: root}).Apply(context.Background(), l, []Action{copyAction(old)})
		if err := res[0].Err; err != nil || res[0].Copied != size {
			t.Fatalf("copying from the unchanged old.bin: err %v, copied %d; want nil, %d", err, res[0].Copied, size)
		}
		if got, _ := os.ReadFile(filepath.Join(root, "new.bin")); string(got) != string(rnd(1, size)) {
			t.Error("new.bin is not old.bin's content")
		}
	})

	for _, tc := range []struct {
		name   string
		change func(t *testing.T, root string, l *Local)
	}{
		{"rewritten with the same size and mtime", func(t *testing.T, root string, l *Local) {
			put(t, root, "old.bin", rnd(2, size), 0o644, baseTime)
		}},
		{"recorded racily", func(t *testing.T, root string, l *Local) {
			put(t, root, "old.bin", rnd(2, size), 0o644, baseTime)
			fi, err := os.Lstat(filepath.Join(root, "old.bin"))
			if err != nil {
				t.Fatal(err)
			}
			// The stat of the new content, recorded as taken just after
			// the change, beside the old content's blocks.
			d := statOf(fi)
			d.Racy = true
			l.SetStat("old.bin", d)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, l, old := setup(t)
			tc.change(t, root, l)
			res := (&Applier{Root: root}).Apply(context.Background(), l, []Action{copyAction(old)})
			if err := res[0].Err; !errors.Is(err, ErrBlockUnavailable) {
				t.Errorf("copying from a changed old.bin: err %v; want ErrBlockUnavailable (its blocks no longer verify, and there is no source)", err)
			}
			if _, err := os.Lstat(filepath.Join(root, "new.bin")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("new.bin exists (err %v); want nothing placed", err)
			}
		})
	}
}

// A source found unchanged when it is opened can still be written while
// its blocks are copied: a block read after such a write is hashed, not
// taken on the strength of the stat seen at opening.
func TestApplyCopyHashesSourceWrittenDuringCopy(t *testing.T) {
	const size = 1 << 20
	root := t.TempDir()
	put(t, root, "old.bin", rnd(1, size), 0o644, baseTime)
	l, _ := mustScan(t, scanner(root, devA), Local{})
	old := l.Entry("old.bin")
	if len(old.Blocks) < 2 {
		t.Fatalf("old.bin has %d blocks; want several", len(old.Blocks))
	}
	f := old
	f.Name, f.Version = "new.bin", Vector{}.Update(devB)
	var cp []BlockCopy
	for _, b := range old.Blocks {
		cp = append(cp, BlockCopy{Block: b, From: "old.bin", FromOffset: b.Offset})
	}
	last := old.Blocks[len(old.Blocks)-1]
	writes := 0
	ap := &Applier{Root: root, Concurrency: 1}
	ap.hook = func(step, name string) error {
		if step != "write" {
			return nil
		}
		if writes++; writes == 1 {
			// After the first block is copied, something rewrites the
			// last one in place.
			w, err := os.OpenFile(filepath.Join(root, "old.bin"), os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer w.Close()
			if _, err := w.WriteAt(rnd(2, int(last.Size)), last.Offset); err != nil {
				return err
			}
		}
		return nil
	}
	res := ap.Apply(context.Background(), &l, []Action{{Kind: ActFetch, Name: "new.bin", File: f, Copy: cp}})
	if err := res[0].Err; !errors.Is(err, ErrBlockUnavailable) {
		t.Errorf("copying from old.bin rewritten meanwhile: err %v; want ErrBlockUnavailable (its last block no longer verifies, and there is no source)", err)
	}
	if got, err := os.ReadFile(filepath.Join(root, "new.bin")); err == nil && string(got) != string(rnd(1, size)) {
		t.Error("new.bin was placed with content its entry does not list")
	}
}
