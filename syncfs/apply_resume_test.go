package syncfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// cutSource passes the first after blocks asked for on to inner, then
// interrupts the transfer: it cancels the apply's context if cancel is
// set, else fails.
type cutSource struct {
	inner  BlockSource
	after  int64
	cancel context.CancelFunc
	calls  atomic.Int64
}

var errCut = errors.New("peer gone")

func (s *cutSource) Block(ctx context.Context, h Hash, size uint32) (VerifiedBlock, error) {
	if s.calls.Add(1) > s.after {
		if s.cancel != nil {
			s.cancel()
			return VerifiedBlock{}, context.Canceled
		}
		return VerifiedBlock{}, errCut
	}
	return s.inner.Block(ctx, h, size)
}

// resumeSetup puts a large file on A and returns the plan that fetches it
// into an empty B, with A's Local.
func resumeSetup(t *testing.T, data []byte) (rootA, rootB string, a, b Local, plan []Action) {
	t.Helper()
	rootA, rootB = t.TempDir(), t.TempDir()
	put(t, rootA, "big", data, 0o444, baseTime)
	a, _ = mustScan(t, scanner(rootA, devA), Local{})
	b, _ = mustScan(t, scanner(rootB, devB), Local{})
	plan = Plan(&b, a.Snapshot(), devB)
	if len(plan) != 1 || plan[0].Kind != ActFetch || len(plan[0].Need) < 8 {
		t.Fatalf("plan = %v; want one fetch of many blocks", plan)
	}
	return rootA, rootB, a, b, plan
}

// interrupt applies plan with a source cut after n blocks, one at a time,
// and returns the bytes it fetched; it checks that the apply failed and
// left the partial file of the version.
func interrupt(t *testing.T, ap *Applier, b *Local, plan []Action, n int64, cancel bool) int64 {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	cut := &cutSource{inner: ap.Source, after: n}
	if cancel {
		cut.cancel = stop
	}
	inner := ap.Source
	ap.Source = cut
	ap.Concurrency = 1
	res := ap.Apply(ctx, b, plan)[0]
	ap.Source, ap.Concurrency = inner, 0
	if res.Err == nil {
		t.Fatal("the interrupted apply succeeded")
	}
	if res.Fetched == 0 || res.Fetched >= plan[0].File.Size {
		t.Fatalf("the interrupted apply fetched %d of %d bytes", res.Fetched, plan[0].File.Size)
	}
	tmp := tempFiles(t, ap.Root)
	if len(tmp) != 1 || filepath.Base(tmp[0]) != partialName("big", plan[0].File.FileHash) {
		t.Fatalf("after the interruption temporary files are %v; want the version's partial file", tmp)
	}
	return res.Fetched
}

func needBytes(blocks []Block) (n int64) {
	for _, b := range blocks {
		n += int64(b.Size)
	}
	return n
}

// TestApplyResume interrupts a fetch (a failing source, a cancelled
// context) and checks that the next attempt, with or without Resume
// beforehand, fetches only the blocks the partial file lacks and produces
// the file.
func TestApplyResume(t *testing.T) {
	data := rnd(20, 8<<20)
	for _, tc := range []struct {
		name           string
		cancel, resume bool
	}{
		{"fail", false, false},
		{"fail/resume", false, true},
		{"cancel", true, false},
		{"cancel/resume", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rootA, rootB, a, b, plan := resumeSetup(t, data)
			src := newDirSource(rootA, a)
			ap := &Applier{Root: rootB, Source: src}
			first := interrupt(t, ap, &b, plan, 5, tc.cancel)
			size := plan[0].File.Size

			if tc.resume {
				// Another Applier, as after a restart: nothing in memory.
				ap = &Applier{Root: rootB, Source: src}
				found := ap.Resume(context.Background(), plan)
				if found != first || needBytes(plan[0].Need) != size-first {
					t.Fatalf("Resume found %d bytes, left %d to fetch; want %d and %d", found, needBytes(plan[0].Need), first, size-first)
				}
			}
			src.served.Store(0)
			res := ap.Apply(context.Background(), &b, plan)[0]
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if res.Resumed != first || res.Fetched != size-first || src.served.Load() != size-first {
				t.Errorf("resumed %d, fetched %d, served %d; want %d, %d, %d", res.Resumed, res.Fetched, src.served.Load(), first, size-first, size-first)
			}
			if got, _ := os.ReadFile(filepath.Join(rootB, "big")); string(got) != string(data) {
				t.Error("the resumed file differs from the source")
			}
			if fi, _ := os.Stat(filepath.Join(rootB, "big")); fi.Mode().Perm() != 0o444 {
				t.Errorf("mode %v; want 0444", fi.Mode().Perm())
			}
			if tmp := tempFiles(t, rootB); len(tmp) > 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}
}

// TestApplyResumeCorrupt flips a bit in a block of a partial file, before
// and after Resume checked it (soon after, so that the stat could stay
// the same within the timestamps' granularity), and checks that the
// block is fetched again.
func TestApplyResumeCorrupt(t *testing.T) {
	data := rnd(21, 8<<20)
	for _, afterResume := range []bool{false, true} {
		t.Run(map[bool]string{false: "before", true: "after-resume"}[afterResume], func(t *testing.T) {
			rootA, rootB, a, b, plan := resumeSetup(t, data)
			src := newDirSource(rootA, a)
			ap := &Applier{Root: rootB, Source: src}
			first := interrupt(t, ap, &b, plan, 5, false)
			size := plan[0].File.Size
			tp := filepath.Join(rootB, partialName("big", plan[0].File.FileHash))
			// A block the partial file holds: the first one fetched.
			kept := plan[0].Need[0]
			flip := func() {
				f, err := os.OpenFile(tp, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				var c [1]byte
				off := kept.Offset + int64(kept.Size)/2
				if _, err := f.ReadAt(c[:], off); err != nil {
					t.Fatal(err)
				}
				c[0] ^= 0x10
				if _, err := f.WriteAt(c[:], off); err != nil {
					t.Fatal(err)
				}
			}
			ap = &Applier{Root: rootB, Source: src}
			if afterResume {
				if found := ap.Resume(context.Background(), plan); found != first {
					t.Fatalf("Resume found %d bytes; want %d", found, first)
				}
				flip()
			} else {
				flip()
			}
			src.served.Store(0)
			res := ap.Apply(context.Background(), &b, plan)[0]
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			want := size - first + int64(kept.Size)
			if res.Fetched != want || res.Resumed != first-int64(kept.Size) {
				t.Errorf("fetched %d, resumed %d; want %d, %d (the corrupted block again)", res.Fetched, res.Resumed, want, first-int64(kept.Size))
			}
			if got, _ := os.ReadFile(filepath.Join(rootB, "big")); string(got) != string(data) {
				t.Error("the resumed file differs from the source")
			}
		})
	}
}

// TestApplyResumeOtherVersion leaves a partial file for one version and
// applies another: the partial file is not used, and is removed.
func TestApplyResumeOtherVersion(t *testing.T) {
	rootA, rootB, a, b, plan := resumeSetup(t, rnd(22, 4<<20))
	ap := &Applier{Root: rootB, Source: newDirSource(rootA, a)}
	interrupt(t, ap, &b, plan, 3, false)
	old := partialName("big", plan[0].File.FileHash)

	v2 := rnd(23, 4<<20)
	put(t, rootA, "big", v2, 0o644, baseTime.Add(time.Hour))
	a, _ = mustScan(t, scanner(rootA, devA), a)
	plan = Plan(&b, a.Snapshot(), devB)
	if partialName("big", plan[0].File.FileHash) == old {
		t.Fatal("two versions share a partial file name")
	}
	ap.Source = newDirSource(rootA, a)
	if found := ap.Resume(context.Background(), plan); found != 0 {
		t.Errorf("Resume found %d bytes of another version", found)
	}
	res := ap.Apply(context.Background(), &b, plan)[0]
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if res.Resumed != 0 || res.Fetched != int64(len(v2)) {
		t.Errorf("resumed %d, fetched %d; want 0, %d", res.Resumed, res.Fetched, len(v2))
	}
	if got, _ := os.ReadFile(filepath.Join(rootB, "big")); string(got) != string(v2) {
		t.Error("the file differs from the new version")
	}
	if tmp := tempFiles(t, rootB); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// TestApplyResumeUnusable puts at the partial file's name what must not
// be used (a symlink, a directory, a file larger than the target) and
// checks that it is removed and the file fetched whole, without writing
// through the symlink.
func TestApplyResumeUnusable(t *testing.T) {
	data := rnd(24, 8<<20)
	for _, kind := range []string{"symlink", "dir", "larger"} {
		t.Run(kind, func(t *testing.T) {
			rootA, rootB, a, b, plan := resumeSetup(t, data)
			tp := filepath.Join(rootB, partialName("big", plan[0].File.FileHash))
			victim := filepath.Join(rootB, "victim")
			switch kind {
			case "symlink":
				// A file that holds the right content, so that a symlink
				// followed would pass the block check.
				put(t, rootB, "victim", data, 0o644, baseTime)
				if err := os.Symlink("victim", tp); err != nil {
					t.Fatal(err)
				}
				b, _ = mustScan(t, scanner(rootB, devB), b)
				plan = Plan(&b, a.Snapshot(), devB)
				plan[0].Copy, plan[0].Need = nil, plan[0].File.Blocks // fetch it all
			case "dir":
				if err := os.MkdirAll(filepath.Join(tp, "sub"), 0o755); err != nil {
					t.Fatal(err)
				}
			case "larger":
				put(t, rootB, filepath.Base(tp), append(data, 1), 0o600, baseTime)
			}
			ap := &Applier{Root: rootB, Source: newDirSource(rootA, a)}
			if found := ap.Resume(context.Background(), plan); found != 0 {
				t.Errorf("Resume found %d bytes", found)
			}
			res := ap.Apply(context.Background(), &b, plan)
			for _, r := range res {
				if r.Err != nil {
					t.Fatal(r.Err)
				}
				if r.Action.Name == "big" && (r.Resumed != 0 || r.Fetched != int64(len(data))) {
					t.Errorf("resumed %d, fetched %d; want 0, %d", r.Resumed, r.Fetched, len(data))
				}
			}
			if got, _ := os.ReadFile(filepath.Join(rootB, "big")); string(got) != string(data) {
				t.Error("the file differs from the source")
			}
			if fi, err := os.Lstat(filepath.Join(rootB, "big")); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("big is %v (%v); want a regular file", fi, err)
			}
			if kind == "symlink" {
				if fi, err := os.Lstat(victim); err != nil || fi.Mode().Perm() != 0o644 || !fi.ModTime().Equal(baseTime) {
					t.Errorf("the symlink's target changed: %v, %v", fi, err)
				}
			}
			if tmp := tempFiles(t, rootB); len(tmp) > 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}
}

// TestScanKeepsFreshPartial checks that a scan with the default age keeps
// a recent temporary file (the partial file of an interrupted fetch) and
// does not index it.
func TestScanKeepsFreshPartial(t *testing.T) {
	root := t.TempDir()
	name := partialName("big", Hash{1})
	put(t, root, name, []byte("partial"), 0o600, time.Now())
	l, st := mustScan(t, &Scanner{Root: root, Self: devA}, Local{})
	if _, ok := l.Get(name); ok || st.TempRemoved != 0 || len(tempFiles(t, root)) != 1 {
		t.Errorf("fresh partial file: indexed %v, removed %d; want neither", ok, st.TempRemoved)
	}
	s := &Scanner{Root: root, Self: devA, Now: func() time.Time { return time.Now().Add(DefaultStaleTemp + time.Hour) }}
	if _, st = mustScan(t, s, l); st.TempRemoved != 1 {
		t.Errorf("day-old partial file: removed %d; want 1", st.TempRemoved)
	}
}
