package foldersync

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/syncfs"
)

// persistFolder is a folder, not running, whose Local is stored in a
// database at path.
func persistFolder(t *testing.T, path string) *folder {
	t.Helper()
	db, err := syncfs.OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &Engine{db: db, log: slog.New(slog.DiscardHandler), cfg: Config{Now: time.Now, Fetches: 1}}
	f := newFolder(e, "f1", t.TempDir())
	if f.local, err = db.OpenLocal(f.dbKey(), syncfs.DefaultLocalWhole); err != nil {
		t.Fatal(err)
	}
	return f
}

// localState is what a Local holds, in a form cmp compares.
type localState struct {
	Files syncfs.Snapshot
	Disk  map[string]syncfs.DiskStat
}

// stateOf returns what l holds.
func stateOf(l *syncfs.Local) localState {
	return localState{Files: l.Snapshot(), Disk: maps.Collect(l.Stats())}
}

func dirEntry(name, dev string) syncfs.FileInfo {
	return syncfs.FileInfo{Name: name, Type: syncfs.TypeDir, Mode: 0o755, Version: syncfs.Vector{}.Update(dev)}
}

// TestPersistKeepsUnstoredOnFailure stores a folder's changed entries
// into a closed database: they stay to be stored, held in the Local, and
// the next try waits.
func TestPersistKeepsUnstoredOnFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	f := persistFolder(t, path)
	f.local.Set(dirEntry("a", "dev1"))
	f.local.Set(dirEntry("b", "dev1"))
	f.persist(true)
	if f.heldBack() {
		t.Fatalf("after a store: %d entries left", f.local.Unflushed())
	}
	stored, err := f.e.db.Local(f.dbKey())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stateOf(&f.local), stateOf(&stored)); diff != "" {
		t.Errorf("stored Local differs:\n%s", diff)
	}

	f.local.Set(dirEntry("a", "dev2"))
	f.local.Delete("b")
	f.local.Set(dirEntry("c", "dev2"))
	f.touch("a", "b", "c")
	want := stateOf(&f.local)
	f.e.db.Close()
	f.persist(true)
	if got := f.local.Unflushed(); got != 3 {
		t.Fatalf("after a failed store, %d entries left to store; want 3", got)
	}
	if diff := cmp.Diff(want, stateOf(&f.local)); diff != "" {
		t.Errorf("the Local changed with a failed store:\n%s", diff)
	}
	if f.putEvery < flushEvery {
		t.Fatalf("after a failed store, the next waits %v; want at least %v", f.putEvery, flushEvery)
	}
}

// TestPersistWaitsForDurability: a change the applier could not make
// durable is not stored while the barrier over it fails (here the folder's
// directory is gone), and is stored once the barrier goes through.
func TestPersistWaitsForDurability(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	f := persistFolder(t, path)
	f.local.Set(dirEntry("a", "dev1"))
	f.touch("a")
	f.undurable.add("a")
	if err := os.Remove(f.root); err != nil {
		t.Fatal(err)
	}
	f.persist(true)
	if got, err := f.e.db.Local(f.dbKey()); err != nil || got.Len() != 0 {
		t.Fatalf("stored while the change was not durable: %v, %v", got.Snapshot(), err)
	}
	if f.local.Unflushed() != 1 || !f.undurable.has("a") {
		t.Fatalf("after a failed barrier: %d unstored, undurable %v; want a in both", f.local.Unflushed(), f.undurable)
	}

	if err := os.Mkdir(f.root, 0o755); err != nil {
		t.Fatal(err)
	}
	f.persist(true)
	got, err := f.e.db.Local(f.dbKey())
	if err != nil || got.Len() != 1 || len(f.undurable) != 0 || f.heldBack() {
		t.Fatalf("after the barrier went through: stored %v (%v), undurable %v, %d unstored; want a stored, nothing left", got.Snapshot(), err, f.undurable, f.local.Unflushed())
	}
}

// A folder at rest, with nothing held back to store, waits for work
// without waking (its periodic pulls and rescans are far off here): once
// the sync's last events (the watcher's report of the write, a retry) are
// done, a few flushEvery pass without a round of work. A store held back
// (see persist) is still made within flushEvery, with no other event to
// wake the folder.
func TestFolderAtRestSleepsAndFlushes(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner}, func(c *Config) {
		c.RescanInterval, c.PullInterval = time.Hour, time.Hour
	})
	alice := n.nodes["alice"]
	alice.write(t, "a.txt", "at rest")
	n.waitEqual(alice)
	f := n.running(alice)
	held := func() bool {
		out := make(chan bool)
		f.ctl <- func(context.Context) { out <- f.heldBack() }
		return <-out
	}
	waitFor(t, 10*time.Second, "alice's folder to store its index", func() bool { return !held() })

	// At rest: no round of work for a few flushEvery.
	woke := int64(-1)
	for try := 0; try < 5 && woke != 0; try++ {
		before := f.rounds.Load()
		time.Sleep(3 * flushEvery) // the absence of wake-ups is what is measured
		woke = f.rounds.Load() - before
	}
	if woke != 0 {
		t.Fatalf("a folder at rest still woke %d times in %v, five times over; want none", woke, 3*flushEvery)
	}

	// A store held back: an entry changed right after a store. It is
	// watched for in the database, not by asking the folder (which would
	// wake it).
	done := make(chan struct{})
	f.ctl <- func(context.Context) {
		f.local.Set(dirEntry("held", "dev1"))
		f.touch("held")
		f.lastPut = time.Now()
		close(done)
	}
	<-done
	waitFor(t, 5*flushEvery, "the held-back entry to be stored", func() bool {
		l, err := f.e.db.Local(f.dbKey())
		if err != nil {
			t.Fatal(err)
		}
		_, ok := l.Get("held")
		return ok
	})
}
