package peer

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/peer/foldersync"
	"github.com/baton-sync/baton/syncfs"
)

// archiveSetup is an archiver over a signed store, a folder directory and
// a scanner of it, on a clock the test moves.
type archiveSetup struct {
	t    *testing.T
	st   *folderstore.Store
	a    *archiver
	logs *bytes.Buffer
	root string
	now  time.Time
	sc   *syncfs.Scanner
	loc  syncfs.Local
}

func newArchiveSetup(t *testing.T, policy func(string) folderstore.Policy) *archiveSetup {
	t.Helper()
	dir := t.TempDir()
	st, err := folderstore.Open(filepath.Join(dir, "snapshots.db"), folderstore.NewDisk(filepath.Join(dir, "blocks")), folderstore.WithServerKey(identitytest.Key("server")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := &archiveSetup{t: t, st: st, logs: &bytes.Buffer{}, root: t.TempDir(), now: time.Unix(1_000_000, 0), loc: syncfs.NewLocal()}
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

// scan rescans the folder and returns its whole index, and the entries
// that changed.
func (s *archiveSetup) scan() (whole, changed []syncfs.FileInfo) {
	s.t.Helper()
	old := s.loc.Snapshot()
	if _, err := s.sc.Update(context.Background(), &s.loc); err != nil {
		s.t.Fatal(err)
	}
	for _, fi := range s.loc.Snapshot().Sorted() {
		if o, ok := old[fi.Name]; !ok || o.Version.Compare(fi.Version) != syncfs.Equal {
			changed = append(changed, fi)
		}
	}
	return s.loc.Snapshot().Sorted(), changed
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

// The archiver's first change of a folder is its whole index: with an
// empty store it becomes the first snapshot, whole; at a restart, when
// nothing changed, it adds nothing, and what changed is all it adds. A
// file changed again before it is read is left out and logged; a change
// all of whose files are left out makes no snapshot.
func TestArchiverWholeIndex(t *testing.T) {
	s := newArchiveSetup(t, nil)
	s.write("a.txt", "A")
	s.write("b.txt", "B")
	whole, _ := s.scan()
	s.a.add("f", s.root, whole, true, foldersync.Requester{})
	s.a.drain()
	if snaps := s.snapshots(); len(snaps) != 1 || snaps[0].Count != 2 {
		t.Fatalf("after the first whole index: %d snapshots (%+v); want one of both files", len(snaps), snaps)
	}
	s.a.add("f", s.root, whole, true, foldersync.Requester{})
	s.a.drain()
	if snaps := s.snapshots(); len(snaps) != 1 {
		t.Fatalf("the same whole index again made %d snapshots; want still 1", len(snaps))
	}
	s.write("b.txt", "B2")
	s.write("c.txt", "C")
	whole, _ = s.scan()
	s.write("b.txt", "B3, written after the scan") // the indexed blocks are gone
	s.a.add("f", s.root, whole, true, foldersync.Requester{})
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
	_, changed := s.scan()
	s.write("b.txt", "B4, written after the scan")
	s.a.add("f", s.root, changed, false, foldersync.Requester{})
	s.a.drain()
	if n := len(s.snapshots()); n != 2 {
		t.Errorf("a change whose every file was left out made a snapshot: %d snapshots; want 2", n)
	}
}

// Changes queued while the archiver is busy coalesce by name: what waits
// is bounded by the folder's entries, not by the changes. A restore's
// change is kept apart, as a snapshot asked by its requester.
func TestArchiverCoalesces(t *testing.T) {
	s := newArchiveSetup(t, nil)
	for i := range 200 {
		s.write("a.txt", fmt.Sprintf("version %d", i))
		s.write(fmt.Sprintf("f%d.txt", i%5), fmt.Sprint(i))
		_, changed := s.scan()
		s.a.add("f", s.root, changed, false, foldersync.Requester{})
	}
	if n := s.a.queued(); n != 6 {
		t.Fatalf("200 changes of 6 files queued %d entries; want 6", n)
	}
	ann := foldersync.Requester{User: "ann", Device: "ann-laptop"}
	s.write("b.txt", "restored")
	_, changed := s.scan()
	s.a.add("f", s.root, changed, false, ann)
	s.write("c.txt", "after")
	_, changed = s.scan()
	s.a.add("f", s.root, changed, false, foldersync.Requester{})
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
		_, changed := s.scan()
		s.a.add("f", s.root, changed, false, foldersync.Requester{})
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
// The whole index is queued as told, not copied.
func TestArchiverWholeThenChanges(t *testing.T) {
	s := newArchiveSetup(t, nil)
	for _, n := range []string{"b.txt", "c.txt", "d.txt"} {
		s.write(n, n)
	}
	whole, _ := s.scan()
	s.a.add("f", s.root, whole, true, foldersync.Requester{})
	if p := s.a.pending["f"]; len(p.batches) != 1 || &p.batches[0].whole[0] != &whole[0] {
		t.Fatal("the whole index was copied into the queue")
	}
	s.write("c.txt", "c, later")
	s.write("a.txt", "a")
	s.write("e.txt", "e")
	if err := os.Remove(filepath.Join(s.root, "d.txt")); err != nil {
		t.Fatal(err)
	}
	_, changed := s.scan()
	s.a.add("f", s.root, changed, false, foldersync.Requester{})
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
