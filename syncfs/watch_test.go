package syncfs

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/goleak"
)

// watchConfig batches quickly so tests finish fast.
var watchConfig = AggregatorConfig{Quiet: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond, MaxPerDir: 128, MaxPaths: 512}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startWatcher runs w until the test ends, and waits for its first batch.
func startWatcher(t *testing.T, w *Watcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		goleak.VerifyNone(t)
	})
	if b := nextBatch(t, w); !slices.Equal(b, []string{""}) {
		t.Fatalf("first batch = %q; want [\"\"]", b)
	}
}

func nextBatch(t *testing.T, w *Watcher) []string {
	t.Helper()
	select {
	case b := <-w.Batches():
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no batch within 10s")
		return nil
	}
}

// covered reports whether rescanning batch covers name.
func covered(batch []string, name string) bool {
	for _, p := range batch {
		if under(name, p) {
			return true
		}
	}
	return false
}

// waitCovered reads batches until name is covered, failing after a
// deadline, and returns every batch read.
func waitCovered(t *testing.T, w *Watcher, name string) [][]string {
	t.Helper()
	var seen [][]string
	deadline := time.After(10 * time.Second)
	for {
		select {
		case b := <-w.Batches():
			seen = append(seen, b)
			if covered(b, name) {
				return seen
			}
		case <-deadline:
			t.Fatalf("%s not reported within 10s; batches %q", name, seen)
		}
	}
}

func TestWatcherReportsChanges(t *testing.T) {
	root := t.TempDir()
	put(t, root, "old.txt", []byte("x"), 0o644, baseTime)
	put(t, root, "sub/mod.txt", []byte("x"), 0o644, baseTime)
	put(t, root, "ignored/x", []byte("x"), 0o644, baseTime)
	ign, err := ParseIgnoreString("ignored/\n*.tmp\n")
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWatcher(root, ign, watchConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.DirsOnly = false // writes to files in place are reported at once, on macOS too
	startWatcher(t, w)

	steps := []struct {
		what string
		do   func() error
		want string
	}{
		{"create", func() error { return os.WriteFile(filepath.Join(root, "new.txt"), []byte("n"), 0o644) }, "new.txt"},
		{"modify in subdir", func() error { return os.WriteFile(filepath.Join(root, "sub/mod.txt"), []byte("changed"), 0o644) }, "sub/mod.txt"},
		{"delete", func() error { return os.Remove(filepath.Join(root, "old.txt")) }, "old.txt"},
		{"rename", func() error { return os.Rename(filepath.Join(root, "new.txt"), filepath.Join(root, "sub/renamed.txt")) }, "sub/renamed.txt"},
		{"mkdir -p with a file", func() error {
			if err := os.MkdirAll(filepath.Join(root, "n1/n2/n3"), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(root, "n1/n2/n3/a.txt"), []byte("deep"), 0o644)
		}, "n1/n2/n3/a.txt"},
		{"write in the new nested dir", func() error {
			return os.WriteFile(filepath.Join(root, "n1/n2/n3/b.txt"), []byte("deeper"), 0o644)
		}, "n1/n2/n3/b.txt"},
		{"chmod", func() error { return os.Chmod(filepath.Join(root, "sub/mod.txt"), 0o600) }, "sub/mod.txt"},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		for _, b := range waitCovered(t, w, s.want) {
			for _, p := range b {
				if under(p, "ignored") || strings.HasSuffix(p, ".tmp") {
					t.Errorf("%s: batch %q reports an ignored name", s.what, b)
				}
			}
		}
	}

	// Ignored names and temporary files are not reported: change them,
	// then a sentinel, and check that only the sentinel comes.
	put(t, root, "ignored/y", []byte("x"), 0o644, baseTime)
	put(t, root, "scratch.tmp", []byte("x"), 0o644, baseTime)
	put(t, root, "sub/"+TempPrefix+"zz", []byte("x"), 0o644, baseTime)
	put(t, root, "sentinel", []byte("x"), 0o644, baseTime)
	for _, b := range waitCovered(t, w, "sentinel") {
		if !slices.Equal(b, []string{"sentinel"}) {
			t.Errorf("batch %q; want only the sentinel", b)
		}
	}
}

// TestWatcherDropsOwnWrites applies a remote change with the applier wired
// to the watcher and checks that its writes are not reported back.
func TestWatcherDropsOwnWrites(t *testing.T) {
	rootA, rootB := t.TempDir(), t.TempDir()
	put(t, rootA, "f.txt", []byte("from A"), 0o644, baseTime)
	put(t, rootB, "gone.txt", []byte("to delete"), 0o644, baseTime)
	a, _ := mustScan(t, scanner(rootA, devA), Local{})
	b, _ := mustScan(t, scanner(rootB, devB), Local{})
	a.Set(tombstone(b.Entry("gone.txt"), b.Entry("gone.txt").Version.Update(devA)))

	w, err := NewWatcher(rootB, nil, watchConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	startWatcher(t, w)
	ap := &Applier{Root: rootB, Source: newDirSource(rootA, a), Expect: w.Expect}
	for _, r := range ap.Apply(context.Background(), &b, Plan(&b, a.Snapshot(), devB)) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	put(t, rootB, "sentinel", []byte("x"), 0o644, baseTime)
	for _, batch := range waitCovered(t, w, "sentinel") {
		if covered(batch, "f.txt") || covered(batch, "gone.txt") {
			t.Errorf("batch %q echoes the applier's own writes", batch)
		}
	}
}

// A mode change right after the applier wrote a file is the user's, not
// an echo: Expect knows the size and mtime, which a chmod keeps.
func TestWatcherSeesChmodAfterOwnWrite(t *testing.T) {
	rootA, rootB := t.TempDir(), t.TempDir()
	put(t, rootA, "f.txt", []byte("from A"), 0o644, baseTime)
	a, _ := mustScan(t, scanner(rootA, devA), Local{})
	b := NewLocal()
	w, err := NewWatcher(rootB, nil, watchConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.DirsOnly = false // a chmod is reported at once, on macOS too
	startWatcher(t, w)
	ap := &Applier{Root: rootB, Source: newDirSource(rootA, a), Expect: w.Expect}
	for _, r := range ap.Apply(context.Background(), &b, Plan(&b, a.Snapshot(), devB)) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if err := os.Chmod(filepath.Join(rootB, "f.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitCovered(t, w, "f.txt")
}

func TestWatcherOverflowAndLimits(t *testing.T) {
	root := t.TempDir()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	w, err := NewWatcher(root, nil, watchConfig, log)
	if err != nil {
		t.Fatal(err)
	}
	limit := false
	var mu sync.Mutex
	w.addWatch = func(fw dirBackend, p string) error {
		mu.Lock()
		defer mu.Unlock()
		if limit {
			return syscall.ENOSPC
		}
		return fw.Add(p)
	}
	startWatcher(t, w)

	mu.Lock()
	limit = true
	mu.Unlock()
	if err := os.Mkdir(filepath.Join(root, "unwatchable"), 0o755); err != nil {
		t.Fatal(err)
	}
	waitCovered(t, w, "") // a full rescan
	if !strings.Contains(logs.String(), "max_user_watches") {
		t.Errorf("log %q does not say which limit to raise", logs.String())
	}

	// Overflow, fed through the state as Run would.
	agg, _ := NewAggregator(watchConfig)
	st := &watchState{w: w, agg: agg}
	st.error(fsnotify.ErrEventOverflow, time.Now())
	if got := agg.Tick(time.Now().Add(time.Second)); !slices.Equal(got, []string{""}) {
		t.Errorf("after an overflow the aggregator has %q; want a full rescan", got)
	}
	if !strings.Contains(logs.String(), "overflowed") {
		t.Errorf("log %q does not report the overflow", logs.String())
	}
}

func TestNewWatcherStartsNothing(t *testing.T) {
	defer goleak.VerifyNone(t)
	if _, err := NewWatcher(t.TempDir(), nil, DefaultAggregatorConfig, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := NewWatcher(t.TempDir(), nil, AggregatorConfig{}, nil); err == nil {
		t.Error("NewWatcher accepted an invalid config")
	}
}

// BenchmarkWatcherExpect announces many writes, as applying a folder of
// small files does: each call must stay cheap as the expectations grow.
func BenchmarkWatcherExpect(b *testing.B) {
	w, err := NewWatcher(b.TempDir(), nil, watchConfig, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		w.Expect(fmt.Sprintf("d%d/f%d", i%100, i), 4096, 0)
	}
}

// Events that replace or move what is watched: an editor's atomic save
// (a new file renamed over the old), a directory renamed (its watch must
// follow it: a change inside it afterwards is reported under its new
// name), and a directory moved in from outside the folder (watched, and
// what it holds covered).
func TestWatcherAtomicSaveAndMovedDirs(t *testing.T) {
	root, elsewhere := t.TempDir(), t.TempDir()
	put(t, root, "doc.txt", []byte("v1"), 0o644, baseTime)
	put(t, root, "sub/deep/f", []byte("x"), 0o644, baseTime)
	put(t, elsewhere, "incoming/inner/g", []byte("g"), 0o644, baseTime)
	w, err := NewWatcher(root, nil, watchConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.DirsOnly = false // a write in place is reported at once, on macOS too
	startWatcher(t, w)

	// Atomic save.
	put(t, root, ".doc.txt.swp", []byte("v2, saved atomically"), 0o644, baseTime)
	if err := os.Rename(filepath.Join(root, ".doc.txt.swp"), filepath.Join(root, "doc.txt")); err != nil {
		t.Fatal(err)
	}
	waitCovered(t, w, "doc.txt")

	// A renamed directory: both names, then changes inside it by the new.
	if err := os.Rename(filepath.Join(root, "sub"), filepath.Join(root, "moved")); err != nil {
		t.Fatal(err)
	}
	waitCovered(t, w, "moved/deep/f")
	put(t, root, "moved/deep/new.txt", []byte("new"), 0o644, baseTime)
	for _, b := range waitCovered(t, w, "moved/deep/new.txt") {
		for _, p := range b {
			if under(p, "sub") && p != "sub" {
				t.Errorf("batch %q names a path under the directory's old name", b)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(root, "moved/deep/f"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitCovered(t, w, "moved/deep/f")

	// A directory moved in: watched, and a change inside it seen.
	if err := os.Rename(filepath.Join(elsewhere, "incoming"), filepath.Join(root, "incoming")); err != nil {
		t.Fatal(err)
	}
	waitCovered(t, w, "incoming/inner/g")
	put(t, root, "incoming/inner/h", []byte("h"), 0o644, baseTime)
	waitCovered(t, w, "incoming/inner/h")

	// A directory moved out is no longer watched: what changes in it
	// is not reported as in the folder.
	if err := os.Rename(filepath.Join(root, "incoming"), filepath.Join(elsewhere, "gone")); err != nil {
		t.Fatal(err)
	}
	waitCovered(t, w, "incoming")
	put(t, elsewhere, "gone/inner/later", []byte("later"), 0o644, baseTime)
	put(t, root, "sentinel", []byte("x"), 0o644, baseTime)
	for _, b := range waitCovered(t, w, "sentinel") {
		for _, p := range b {
			if under(p, "incoming") {
				t.Errorf("batch %q reports a change in a directory moved out of the folder", b)
			}
		}
	}
}

// A running watcher forgets the applier's expected writes once they
// expired, and makes their map anew: a folder at rest holds none.
func TestWatcherForgetsExpiredExpectations(t *testing.T) {
	w, err := NewWatcher(t.TempDir(), nil, watchConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	startWatcher(t, w)
	for i := range 2000 {
		w.Expect("f"+strconv.Itoa(i), 1, 1)
	}
	held := func() int {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.expect)
	}
	deadline := time.Now().Add(4 * expectTTL)
	for held() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d expectations held %v after they were made", held(), 4*expectTTL)
		}
		time.Sleep(50 * time.Millisecond) // polls what Run's timer does
	}
	// A map made anew: the next expectation is still honoured.
	w.Expect("again", -1, 0)
	if !w.own("again", time.Now()) {
		t.Error("an expectation after the prune is not honoured")
	}
}

// pruneExpired keeps what has not expired.
func TestPruneExpiredKeepsFresh(t *testing.T) {
	w, err := NewWatcher(t.TempDir(), nil, watchConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Expect("old", 1, 1)
	now := time.Now()
	if n := w.pruneExpired(now); n != 1 {
		t.Errorf("%d left right after Expect; want 1", n)
	}
	if n := w.pruneExpired(now.Add(2 * expectTTL)); n != 0 {
		t.Errorf("%d left after expiry; want 0", n)
	}
}
