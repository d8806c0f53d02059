package syncfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestApplySymlinkSwapRace swaps a directory of the folder for a symbolic
// link out of it (absolute and relative, in turn) and back, in a loop,
// while the applier writes files into it, alone and in batches, and
// removes files from it: whatever the interleaving of its checks with the
// swaps, nothing outside the folder is created, changed or removed (the
// race Syncthing's issue #3801 describes: check, then use).
func TestApplySymlinkSwapRace(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "folder")
	outside := filepath.Join(base, "outside")
	real := filepath.Join(root, "d")
	for _, d := range []string{real, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Files the applier removes from d, and files of the same names
	// outside that a removal through the link would take.
	const rounds, removals = 150, 4
	for r := range rounds {
		for i := range removals {
			put(t, root, fmt.Sprintf("d/old-%d-%d", r, i), []byte("old"), 0o644, baseTime)
			put(t, outside, fmt.Sprintf("old-%d-%d", r, i), []byte("outside"), 0o644, baseTime)
		}
	}
	local, _ := mustScan(t, scanner(root, devB), Local{})
	outsideBefore := tree(t, outside)

	// The content written: a multi-block file (applied alone) and small
	// ones (applied in batches).
	srcRoot := t.TempDir()
	put(t, srcRoot, "big", rnd(7, 600<<10), 0o644, baseTime)
	put(t, srcRoot, "small", []byte("small file"), 0o644, baseTime)
	src, _ := mustScan(t, scanner(srcRoot, devA), Local{})
	source := newDirSource(srcRoot, src)
	named := func(f FileInfo, name string) FileInfo {
		f.Name = name
		return f
	}

	// The swapper: d is the directory, then missing, then a link out of
	// the folder, then missing, then the directory again.
	hold := filepath.Join(root, "hold")
	link := filepath.Join(root, "link")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var swapErr error
	wg.Go(func() {
		targets := []string{outside, "../outside"}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			steps := []func() error{
				func() error { return os.Symlink(targets[i%2], link) },
				func() error { return os.Rename(real, hold) },
				func() error { return os.Rename(link, real) },
				func() error { return os.Rename(real, link) },
				func() error { return os.Rename(hold, real) },
				func() error { return os.Remove(link) },
			}
			for _, s := range steps {
				if err := s(); err != nil {
					swapErr = err
					return
				}
			}
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ap := &Applier{Root: root, Source: source}
	var written, refused int
	count := func(res []Result) {
		for _, r := range res {
			if r.Err == nil || errors.Is(r.Err, ErrNotDurable) {
				// Done while d was the directory (its fsync may then
				// meet the link).
				written++
			} else {
				// Refused: d was a link or missing at some step.
				refused++
			}
		}
	}
	for r := 0; r < rounds && ctx.Err() == nil; r++ {
		big := named(src.Entry("big"), fmt.Sprintf("d/big-%d", r))
		count(ap.Apply(ctx, &local, []Action{{Kind: ActFetch, Name: big.Name, File: big, Need: big.Blocks}}))
		var batch []Action
		for i := range 4 {
			small := named(src.Entry("small"), fmt.Sprintf("d/small-%d-%d", r, i))
			batch = append(batch, Action{Kind: ActFetch, Name: small.Name, File: small, Need: small.Blocks})
		}
		for i := range removals {
			n := fmt.Sprintf("d/old-%d-%d", r, i)
			l := local.Entry(n)
			batch = append(batch, Action{Kind: ActDelete, Name: n, File: tombstone(l, l.Version.Update(devA))})
		}
		count(ap.ApplyBatch(ctx, &local, batch))
	}
	close(stop)
	wg.Wait()
	stop = make(chan struct{}) // for the deferred close
	if swapErr != nil {
		t.Fatalf("swapping the directory: %v", swapErr)
	}
	if d := treeDiff(outsideBefore, tree(t, outside)); d != "" {
		t.Errorf("outside the folder changed:\n%s", d)
	}
	if ents, _ := os.ReadDir(base); len(ents) != 2 {
		t.Errorf("entries beside the folder: %v; want folder and outside only", ents)
	}
	t.Logf("%d actions applied, %d refused while the directory was not there", written, refused)
	if written == 0 || refused == 0 {
		t.Errorf("%d actions applied, %d refused; want some of each (the swaps did not overlap the writes)", written, refused)
	}
}
