package peer

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/peer/foldersync"
	"github.com/baton-sync/baton/syncfs"
)

// archiveSetup is an archiver over a signed store, a folder directory and
// a scanner of it, on a clock the test moves, and the indexes a folder's
// engine would publish of it.
type archiveSetup struct {
	t    *testing.T
	st   *folderstore.Store
	a    *archiver
	logs *bytes.Buffer
	root string
	now  time.Time
	sc   *syncfs.Scanner
	loc  syncfs.Local
	// The index's session and sequence, and the sequence that last
	// changed each entry.
	session, seq uint64
	changed      map[string]uint64
}

func newArchiveSetup(t *testing.T, policy func(string) folderstore.Policy) *archiveSetup {
	t.Helper()
	dir := t.TempDir()
	st, err := folderstore.Open(filepath.Join(dir, "snapshots.db"), folderstore.NewDisk(filepath.Join(dir, "blocks")), folderstore.WithServerKey(identitytest.Key("server")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := &archiveSetup{t: t, st: st, logs: &bytes.Buffer{}, root: t.TempDir(), now: time.Unix(1_000_000, 0), loc: syncfs.NewLocal(),
		session: 1, seq: 100, changed: map[string]uint64{}}
	s.sc = &syncfs.Scanner{Root: s.root, Self: "server"}
	s.a = newArchiver(st, slog.New(slog.NewTextHandler(s.logs, nil)), func() time.Time { return s.now }, policy)
	return s
}

func (s *archiveSetup) write(name, data string) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.root, name), []byte(data), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// scan rescans the folder and returns the index published after it: the
// entries that changed get the next sequence.
func (s *archiveSetup) scan() testIndex {
	s.t.Helper()
	old := s.loc.Snapshot()
	if _, err := s.sc.Update(context.Background(), &s.loc); err != nil {
		s.t.Fatal(err)
	}
	s.seq++
	for _, fi := range s.loc.Snapshot().Sorted() {
		if o, ok := old[fi.Name]; !ok || o.Version.Compare(fi.Version) != syncfs.Equal {
			s.changed[fi.Name] = s.seq
		}
	}
	return s.index()
}

// restart rescans the folder and returns the first index of a new session
// (the folder restarted): every entry changed at its sequence.
func (s *archiveSetup) restart() testIndex {
	s.t.Helper()
	s.session++
	s.scan()
	for n := range s.changed {
		s.changed[n] = s.seq
	}
	return s.index()
}

func (s *archiveSetup) index() testIndex {
	ix := testIndex{session: s.session, seq: s.seq}
	for _, fi := range s.loc.Snapshot().Sorted() {
		ix.entries = append(ix.entries, fi)
		ix.changed = append(ix.changed, s.changed[fi.Name])
	}
	return ix
}

// testIndex is an index as a folder's engine publishes it
// (foldersync.Published): every entry, in name order, with the sequence
// that last changed it. failAfter, if positive, makes Since yield an
// error after that many entries.
type testIndex struct {
	session, seq uint64
	entries      []syncfs.FileInfo
	changed      []uint64
	failAfter    int
}

func (ix testIndex) Session() uint64 { return ix.session }
func (ix testIndex) Seq() uint64     { return ix.seq }

func (ix testIndex) Since(seq uint64) iter.Seq2[syncfs.FileInfo, error] {
	return func(yield func(syncfs.FileInfo, error) bool) {
		n := 0
		for i, fi := range ix.entries {
			if ix.changed[i] <= seq {
				continue
			}
			if n++; ix.failAfter > 0 && n > ix.failAfter {
				yield(syncfs.FileInfo{}, foldersync.ErrIndexGone)
				return
			}
			if !yield(fi, nil) {
				return
			}
		}
	}
}

func (s *archiveSetup) snapshots() []folderstore.Snapshot {
	s.t.Helper()
	snaps, err := s.st.Snapshots("f")
	if err != nil {
		s.t.Fatal(err)
	}
	return snaps
}

// entryNames returns the names snapshot seq holds.
func (s *archiveSetup) entryNames(seq uint64) []string {
	s.t.Helper()
	snap, err := s.st.Snapshot("f", seq)
	if err != nil {
		s.t.Fatal(err)
	}
	var names []string
	for _, fi := range snap.Entries {
		names = append(names, fi.Name)
	}
	return names
}

// The archiver's first index of a folder's session is compared whole:
// with an empty store it becomes the first snapshot, whole; at a restart,
// when nothing changed, it adds nothing, and what changed is all it adds.
// A file changed again before it is read is left out and logged; a change
// all of whose files are left out makes no snapshot.
func TestArchiverWholeIndex(t *testing.T) {
	s := newArchiveSetup(t, nil)
	s.write("a.txt", "A")
	s.write("b.txt", "B")
	s.a.add("f", s.root, s.scan(), foldersync.Requester{})
	s.a.drain()
	if snaps := s.snapshots(); len(snaps) != 1 || snaps[0].Count != 2 {
		t.Fatalf("after the first whole index: %d snapshots (%+v); want one of both files", len(snaps), snaps)
	}
	s.a.add("f", s.root, s.restart(), foldersync.Requester{})
	s.a.drain()
	if snaps := s.snapshots(); len(snaps) != 1 {
		t.Fatalf("the same whole index again made %d snapshots; want still 1", len(snaps))
	}
	s.write("b.txt", "B2")
	s.write("c.txt", "C")
	ix := s.restart()
	s.write("b.txt", "B3, written after the scan") // the indexed blocks are gone
	s.a.add("f", s.root, ix, foldersync.Requester{})
	s.a.drain()
	snaps := s.snapshots()
	if len(snaps) != 2 {
		t.Fatalf("after a change: %d snapshots; want 2", len(snaps))
	}
	if names := s.entryNames(snaps[1].Seq); len(names) != 1 || names[0] != "c.txt" {
		t.Errorf("the second snapshot holds %v; want only c.txt (a.txt unchanged, b.txt changed again before it was read)", names)
	}
	if !bytes.Contains(s.logs.Bytes(), []byte("b.txt")) {
		t.Errorf("b.txt left out of the history without a log: %s", s.logs.String())
	}
	tree, err := s.st.Tree("f", snaps[len(snaps)-1].Seq)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.st.ReadFile(tree["a.txt"], &buf); err != nil || buf.String() != "A" {
		t.Errorf("a.txt in the history = %q, %v; want A", buf.String(), err)
	}

	// Only b.txt changed, and again before it was read: no snapshot.
	ix = s.scan()
	s.write("b.txt", "B4, written after the scan")
	s.a.add("f", s.root, ix, foldersync.Requester{})
	s.a.drain()
	if n := len(s.snapshots()); n != 2 {
		t.Errorf("a change whose every file was left out made a snapshot: %d snapshots; want 2", n)
	}
	// Its newer version comes with the next index.
	s.a.add("f", s.root, s.scan(), foldersync.Requester{})
	s.a.drain()
	if snaps := s.snapshots(); len(snaps) != 3 || s.entryNames(snaps[2].Seq)[0] != "b.txt" {
		t.Errorf("b.txt's next version was not kept: %d snapshots", len(snaps))
	}
}

// A whole index of more entries than a window (historyWindow) is compared
// with the store a window at a time: every changed entry, and only those,
// is kept, in one snapshot.
func TestArchiverWholeIndexWindows(t *testing.T) {
	s := newArchiveSetup(t, nil)
	const n = 3*historyWindow + 10
	for i := range n {
		s.write(fmt.Sprintf("f%05d", i), fmt.Sprint(i))
	}
	s.a.add("f", s.root, s.scan(), foldersync.Requester{})
	s.a.drain()
	for i := 0; i < n; i += 700 {
		s.write(fmt.Sprintf("f%05d", i), fmt.Sprint("changed ", i))
	}
	s.a.add("f", s.root, s.restart(), foldersync.Requester{})
	s.a.drain()
	snaps := s.snapshots()
	if len(snaps) != 2 || snaps[0].Count != n {
		t.Fatalf("snapshots %+v; want one of %d entries, then one of the changed", snaps, n)
	}
	var want []string
	for i := 0; i < n; i += 700 {
		want = append(want, fmt.Sprintf("f%05d", i))
	}
	if got := s.entryNames(snaps[1].Seq); !slices.Equal(got, want) {
		t.Errorf("the restart's snapshot holds %v; want %v", got, want)
	}
}

// A change that could not be kept (its index could not be read, its
// folder's directory could not be opened) is queued again, and kept at
// the next try; nothing is committed of it before.
func TestArchiverRetries(t *testing.T) {
	s := newArchiveSetup(t, nil)
	for i := range 10 {
		s.write(fmt.Sprintf("f%d", i), fmt.Sprint(i))
	}
	ix := s.scan()
	broken := ix
	broken.failAfter = 5
	s.a.add("f", s.root, broken, foldersync.Requester{})
	s.a.drain()
	if n := len(s.snapshots()); n != 0 || s.a.queued() != 1 {
		t.Fatalf("an index that failed to read: %d snapshots, %d queued; want none kept and it queued again", n, s.a.queued())
	}
	if err := s.st.Verify(); err != nil {
		t.Fatalf("Verify after a failed change: %v", err)
	}
	s.a.add("f", s.root, ix, foldersync.Requester{}) // the same index, read whole
	s.a.drain()
	if snaps := s.snapshots(); len(snaps) != 1 || snaps[0].Count != 10 || s.a.queued() != 0 {
		t.Fatalf("after the retry: %d snapshots, %d queued; want one snapshot of 10", len(snaps), s.a.queued())
	}

	s.write("f1", "changed")
	ix = s.scan()
	s.a.add("f", filepath.Join(s.root, "missing"), ix, foldersync.Requester{})
	s.a.drain()
	if n := len(s.snapshots()); n != 1 || s.a.queued() != 1 {
		t.Fatalf("a change whose directory is missing: %d snapshots, %d queued; want 1 and it queued again", n, s.a.queued())
	}
	if !bytes.Contains(s.logs.Bytes(), []byte("not kept yet")) {
		t.Errorf("the failure was not logged: %s", s.logs.String())
	}
	s.a.mu.Lock()
	s.a.pending["f"].root = s.root // as the folder's next change would tell
	s.a.mu.Unlock()
	s.a.drain() // as the next upkeep does
	if snaps := s.snapshots(); len(snaps) != 2 || s.entryNames(snaps[1].Seq)[0] != "f1" {
		t.Errorf("after the retry: %d snapshots; want 2, the second f1's change", len(snaps))
	}
}

// Changes queued while the archiver is busy coalesce: the last index
// holds them all, so what waits is an index, not the changes. A restore's
// change is kept apart, as a snapshot asked by its requester.
func TestArchiverCoalesces(t *testing.T) {
	s := newArchiveSetup(t, nil)
	for i := range 200 {
		s.write("a.txt", fmt.Sprintf("version %d", i))
		s.write(fmt.Sprintf("f%d.txt", i%5), fmt.Sprint(i))
		s.a.add("f", s.root, s.scan(), foldersync.Requester{})
	}
	if n := s.a.queued(); n != 1 {
		t.Fatalf("200 changes queued %d indexes; want 1, the last", n)
	}
	ann := foldersync.Requester{User: "ann", Device: "ann-laptop"}
	s.write("b.txt", "restored")
	s.a.add("f", s.root, s.scan(), ann)
	s.write("c.txt", "after")
	s.a.add("f", s.root, s.scan(), foldersync.Requester{})
	s.a.drain()
	snaps := s.snapshots()
	if len(snaps) != 3 {
		t.Fatalf("%d snapshots; want 3 (the coalesced changes, the restore, the change after)", len(snaps))
	}
	if snaps[0].Count != 6 || snaps[0].ReqUser != "" {
		t.Errorf("first snapshot: %d entries, asked by %q; want the 6 files, asked by nobody", snaps[0].Count, snaps[0].ReqUser)
	}
	if names := s.entryNames(snaps[1].Seq); len(names) != 1 || names[0] != "b.txt" || snaps[1].ReqUser != "ann" || snaps[1].ReqDevice != "ann-laptop" {
		t.Errorf("second snapshot: %v asked by %q on %q; want b.txt asked by ann on ann-laptop", names, snaps[1].ReqUser, snaps[1].ReqDevice)
	}
	if snaps[2].ReqUser != "" || snaps[2].ReqDevice != "" {
		t.Errorf("the change after the restore is kept as asked by %q on %q; want nobody", snaps[2].ReqUser, snaps[2].ReqDevice)
	}
}

// The archiver's upkeep prunes a folder by its policy and collects the
// blocks no kept snapshot references; the kept versions still export and
// restore (their trees and blocks are whole).
func TestArchiverUpkeep(t *testing.T) {
	short, err := folderstore.ParsePolicy("all:3h,daily:2d")
	if err != nil {
		t.Fatal(err)
	}
	s := newArchiveSetup(t, func(folder string) folderstore.Policy {
		if folder == "f" {
			return short
		}
		return folderstore.DefaultPolicy
	})
	s.a.grace = time.Nanosecond
	s.now = time.Now() // the blocks' files are dated by the system's clock
	// A version of a.txt every hour for 4 days.
	contents := map[uint64]string{}
	for i := range 4 * 24 {
		data := fmt.Sprintf("version %d", i)
		s.write("a.txt", data)
		s.a.add("f", s.root, s.scan(), foldersync.Requester{})
		s.a.drain()
		snaps := s.snapshots()
		contents[snaps[len(snaps)-1].Seq] = data
		s.now = s.now.Add(time.Hour)
	}
	before := len(s.snapshots())
	s.a.upkeep()
	snaps := s.snapshots()
	// All of the last 3 hours, then the last of each of the days before
	// within 2 days (at most 3 UTC days).
	if len(snaps) >= before || len(snaps) > 3+3 || len(snaps) < 3 {
		t.Fatalf("after upkeep %d snapshots of %d; want those of the last 3 hours and one a day for 2 days", len(snaps), before)
	}
	if !bytes.Contains(s.logs.Bytes(), []byte("pruned")) || !bytes.Contains(s.logs.Bytes(), []byte("collected blocks")) {
		t.Errorf("upkeep did not log what it dropped and collected: %s", s.logs.String())
	}
	var held int
	if err := s.st.Blocks().List(func(syncfs.Hash) error { held++; return nil }); err != nil {
		t.Fatal(err)
	}
	if held != len(snaps) {
		t.Errorf("%d blocks held after upkeep; want %d, one per kept version", held, len(snaps))
	}
	if err := s.st.Verify(); err != nil {
		t.Fatalf("Verify after upkeep: %v", err)
	}
	u, err := s.st.Usage("f")
	if err != nil || u.Snapshots != len(snaps) || u.Blocks != len(snaps) || !u.Oldest.Equal(snaps[0].At()) {
		t.Errorf("Usage = %+v, %v; want %d snapshots and blocks from %v", u, err, len(snaps), snaps[0].At())
	}
	for _, snap := range []folderstore.Snapshot{snaps[0], snaps[len(snaps)/2]} {
		out := filepath.Join(t.TempDir(), "export")
		if err := s.st.Export("f", snap.Seq, out); err != nil {
			t.Fatalf("Export of kept version %d: %v", snap.Seq, err)
		}
		if got, err := os.ReadFile(filepath.Join(out, "a.txt")); err != nil || string(got) != contents[snap.Seq] {
			t.Errorf("export of version %d: a.txt = %q, %v; want %q", snap.Seq, got, err, contents[snap.Seq])
		}
		then, p, err := restorePoint(s.st, "f", RestoreRequest{Path: "a.txt", Point: HistoryPoint{Seq: snap.Seq}})
		if err != nil || p != "a.txt" {
			t.Fatalf("restore point of version %d: %v", snap.Seq, err)
		}
		var buf bytes.Buffer
		if err := s.st.ReadFile(then["a.txt"], &buf); err != nil || buf.String() != contents[snap.Seq] {
			t.Errorf("restore of version %d reads %q, %v; want %q", snap.Seq, buf.String(), err, contents[snap.Seq])
		}
	}
	if _, _, err := restorePoint(s.st, "f", RestoreRequest{Path: "a.txt", Point: HistoryPoint{Seq: snaps[0].Seq - 1}}); err == nil {
		t.Errorf("restore of version %d, dropped by retention, succeeded", snaps[0].Seq-1)
	}
}

// A whole index queued and changes told after it, before the archiver
// runs, make one snapshot: the whole index with each later change in
// place of its entry (a later version of one of its files, a file
// removed) or added (a new file, sorting before and after every other).
func TestArchiverWholeThenChanges(t *testing.T) {
	s := newArchiveSetup(t, nil)
	for _, n := range []string{"b.txt", "c.txt", "d.txt"} {
		s.write(n, n)
	}
	s.a.add("f", s.root, s.scan(), foldersync.Requester{})
	s.write("c.txt", "c, later")
	s.write("a.txt", "a")
	s.write("e.txt", "e")
	if err := os.Remove(filepath.Join(s.root, "d.txt")); err != nil {
		t.Fatal(err)
	}
	s.a.add("f", s.root, s.scan(), foldersync.Requester{})
	if n := s.a.queued(); n != 1 {
		t.Fatalf("%d indexes queued; want 1, the last", n)
	}
	s.a.drain()
	snaps := s.snapshots()
	if len(snaps) != 1 || snaps[0].Count != 5 {
		t.Fatalf("%d snapshots (%+v); want one of 5 entries", len(snaps), snaps)
	}
	tree, err := s.st.Tree("f", snaps[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a.txt": "a", "b.txt": "b.txt", "c.txt": "c, later", "e.txt": "e"}
	for name, fi := range tree {
		if fi.Deleted {
			if name != "d.txt" {
				t.Errorf("%s deleted in the snapshot", name)
			}
			continue
		}
		var buf bytes.Buffer
		if err := s.st.ReadFile(fi, &buf); err != nil || buf.String() != want[name] {
			t.Errorf("%s = %q, %v; want %q", name, buf.String(), err, want[name])
		}
		delete(want, name)
	}
	if len(want) > 0 || !tree["d.txt"].Deleted {
		t.Errorf("files missing from the snapshot: %v, d.txt %+v", want, tree["d.txt"])
	}
}

// historyHold holds queued changes until no block moved for the quiet
// time, and never longer than the most after the first was queued.
func TestHistoryHold(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	quiet, most := time.Second, 30*time.Second
	for _, c := range []struct {
		what              string
		lastMoved, queued time.Time
		now               time.Time
		want              time.Duration
	}{
		{"nothing queued", t0, time.Time{}, t0, 0},
		{"no block ever moved", time.Time{}, t0, t0, 0},
		{"a block moved just now", t0, t0, t0, time.Second},
		{"a block moved 400 ms ago", t0.Add(-400 * time.Millisecond), t0, t0, 600 * time.Millisecond},
		{"quiet for a second", t0.Add(-time.Second), t0, t0, 0},
		{"queued 29.5 s ago, blocks still moving", t0, t0.Add(-29500 * time.Millisecond), t0, 500 * time.Millisecond},
		{"queued 31 s ago, blocks still moving", t0, t0.Add(-31 * time.Second), t0, 0},
	} {
		if got := historyHold(c.now, c.lastMoved, c.queued, quiet, most); got != c.want {
			t.Errorf("%s: hold %v; want %v", c.what, got, c.want)
		}
	}
}

// fakeTransfers is what archiver.transfers reads: when a block last moved.
type fakeTransfers struct {
	mu   sync.Mutex
	last time.Time
}

func (f *fakeTransfers) Last() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *fakeTransfers) set(t time.Time) {
	f.mu.Lock()
	f.last = t
	f.mu.Unlock()
}

// While blocks move, Run holds what is queued: a change is kept once
// transfers have been quiet for the quiet time, or once it waited the
// longest hold, and at once when no transfer is under way, by the
// system's clock whatever the archiver's clock says.
func TestArchiverHoldsForTransfers(t *testing.T) {
	s := newArchiveSetup(t, nil)
	tr := &fakeTransfers{}
	s.a.transfers = tr // s.a.now stays the setup's frozen clock: the hold times real transfers
	s.a.quiet, s.a.maxHold = 300*time.Millisecond, 900*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	// kept waits until the store holds n snapshots and returns how long
	// that took since from.
	kept := func(n int, from time.Time) time.Duration {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			snaps, err := s.st.Snapshots("f")
			if err != nil {
				t.Fatal(err)
			}
			if len(snaps) >= n {
				return time.Since(from)
			}
			if time.Now().After(deadline) {
				t.Fatalf("the store holds %d snapshots after 10 s; want %d", len(snaps), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// A block moved just now: the change waits for quiet.
	s.write("a.txt", "one")
	start := time.Now()
	tr.set(start)
	s.a.add("f", s.root, s.scan(), foldersync.Requester{})
	if took := kept(1, start); took < s.a.quiet {
		t.Errorf("a change queued while a block had just moved was kept after %v; want at least the quiet time, %v", took, s.a.quiet)
	}

	// Blocks keep moving: the change waits the longest hold, no more.
	s.write("a.txt", "two")
	start = time.Now()
	stop := make(chan struct{})
	moving := make(chan struct{})
	go func() {
		defer close(moving)
		for {
			tr.set(time.Now())
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	s.a.add("f", s.root, s.scan(), foldersync.Requester{})
	took := kept(2, start)
	close(stop)
	<-moving
	if took < s.a.maxHold {
		t.Errorf("a change queued while blocks kept moving was kept after %v; want at least the longest hold, %v", took, s.a.maxHold)
	}

	// Quiet for long: kept at once (well within the quiet time).
	tr.set(time.Now().Add(-time.Hour))
	s.write("a.txt", "three")
	start = time.Now()
	s.a.add("f", s.root, s.scan(), foldersync.Requester{})
	if took := kept(3, start); took >= 5*time.Second {
		t.Errorf("a change queued with no transfer under way took %v to be kept", took)
	}
}
