package folderstore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/syncfs"
)

// crashSetup is a store with a history of changes, reopened by reopen.
type crashSetup struct {
	dir  string
	st   *folderstore.Store
	disk *folderstore.Disk
	w    *world
}

func newCrashSetup(t *testing.T, appends int) *crashSetup {
	t.Helper()
	c := &crashSetup{dir: t.TempDir()}
	c.open(t)
	c.w = newWorld(t, 7, "docs")
	for range appends {
		c.w.appendChange(c.st)
	}
	return c
}

func (c *crashSetup) open(t *testing.T) {
	t.Helper()
	c.disk = folderstore.NewDisk(filepath.Join(c.dir, "blocks"))
	st, err := folderstore.Open(filepath.Join(c.dir, "snapshots.db"), c.disk, folderstore.WithServerKey(identitytest.Key("server")))
	if err != nil {
		t.Fatal(err)
	}
	c.st = st
	t.Cleanup(func() { st.Close() })
}

// reopen closes the store (as a restarted process would find it) and opens
// it again, without the faults.
func (c *crashSetup) reopen(t *testing.T) {
	t.Helper()
	if err := c.st.Close(); err != nil {
		t.Fatal(err)
	}
	c.open(t)
}

// failFrom returns a fault hook that fails every step from the k-th on,
// cleanups included (the process died there), and one that records the
// steps.
func failFrom(k int) func(string) error {
	n := 0
	return func(step string) error {
		if step == "cleanup" {
			if n > k {
				return errInjected
			}
			return nil
		}
		n++
		if n-1 >= k {
			return errInjected
		}
		return nil
	}
}

func recordSteps(steps *[]string) func(string) error {
	return func(s string) error {
		if s != "cleanup" {
			*steps = append(*steps, s)
		}
		return nil
	}
}

// crashAtEachStep runs op once to count its steps, then once per step on a
// fresh setup, failing from that step on; after each failure the reopened
// store must verify and hold what it held before (check), and then op,
// retried, succeeds (after).
func crashAtEachStep(t *testing.T, setup func(t *testing.T) *crashSetup, op func(c *crashSetup) error, want []string, after func(t *testing.T, c *crashSetup)) {
	var steps []string
	{
		c := setup(t)
		folderstore.SetDiskFault(c.disk, recordSteps(&steps))
		folderstore.SetStoreFault(c.st, recordSteps(&steps))
		if err := op(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range want {
		if !slices.Contains(steps, s) {
			t.Fatalf("steps %v lack %q", steps, s)
		}
	}
	for k := range steps {
		t.Run(fmt.Sprintf("%d-%s", k, steps[k]), func(t *testing.T) {
			c := setup(t)
			before := keptSeqs(t, c.st, c.w.folder)
			fail := failFrom(k)
			folderstore.SetDiskFault(c.disk, fail)
			folderstore.SetStoreFault(c.st, fail)
			if err := op(c); !errors.Is(err, errInjected) {
				t.Fatalf("failing at step %d (%s) = %v; want the injected error", k, steps[k], err)
			}
			c.reopen(t)
			if n, err := folderstore.PendingEntries(c.st, c.w.folder); err != nil || n != 0 {
				t.Fatalf("after a failure at step %d (%s) and a restart, %d entries of no snapshot are left (%v); want none", k, steps[k], n, err)
			}
			c.w.checkAll(c.st)
			if got := keptSeqs(t, c.st, c.w.folder); !reflect.DeepEqual(got, before) {
				t.Fatalf("snapshots after a failure at step %d (%s) = %v; want those before, %v", k, steps[k], got, before)
			}
			if err := op(c); err != nil {
				t.Fatalf("retried: %v", err)
			}
			c.w.checkAll(c.st)
			if after != nil {
				after(t, c)
			}
		})
	}
}

// TestAppendCrashAtEachStep fails an Append at each step of each block's
// write and of its commit.
func TestAppendCrashAtEachStep(t *testing.T) {
	setup := func(t *testing.T) *crashSetup { return newCrashSetup(t, 5) }
	// A change with new blocks, for the same names and content each time.
	op := func(c *crashSetup) error {
		c.w.now = c.w.now.Add(time.Minute)
		fi := c.w.fileEntry("d1/new", "dev-a", []byte("fresh block one"), []byte("fresh block two"), c.w.chunks[0])
		snap, _, err := c.st.Append(c.w.folder, c.w.now, []syncfs.FileInfo{fi}, "dev-a", c.w.read)
		if err == nil {
			c.w.tree[fi.Name] = fi
			c.w.trees[snap.Seq] = cloneTree(c.w.tree)
		}
		return err
	}
	crashAtEachStep(t, setup, op, []string{"mkdir", "create", "write", "fsync", "close", "rename", "syncdir", "check", "put", "tx"}, nil)
}

// TestAppendChunkedCrashAtEachStep fails an Append of five files written
// two per transaction at each step: its entries written so far belong to
// no snapshot, a restart removes them, and the folder is as it was.
func TestAppendChunkedCrashAtEachStep(t *testing.T) {
	setup := func(t *testing.T) *crashSetup { return newCrashSetup(t, 5) }
	op := func(c *crashSetup) error {
		folderstore.SetAppendChunk(c.st, 2)
		c.w.now = c.w.now.Add(time.Minute)
		var changes []syncfs.FileInfo
		for i := range 5 {
			changes = append(changes, c.w.fileEntry(fmt.Sprintf("big/f%d", i), "dev-a", []byte(fmt.Sprintf("block of file %d", i)), c.w.chunks[i]))
		}
		snap, _, err := c.st.Append(c.w.folder, c.w.now, changes, "dev-a", c.w.read)
		if err == nil {
			for _, fi := range changes {
				c.w.tree[fi.Name] = fi
			}
			c.w.trees[snap.Seq] = cloneTree(c.w.tree)
		}
		return err
	}
	var steps []string
	{
		c := setup(t)
		folderstore.SetStoreFault(c.st, recordSteps(&steps))
		if err := op(c); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(strings.Join(steps, " "), "entries"); n != 3 {
		t.Fatalf("steps %v: %d transactions of entries; want 3 (5 entries, 2 a time)", steps, n)
	}
	crashAtEachStep(t, setup, op, []string{"create", "fsync", "rename", "check", "entries", "put", "tx"}, nil)
}

// TestPruneCrashAtEachStep fails a Prune at each step: it runs in one
// transaction, so the folder is left as it was.
func TestPruneCrashAtEachStep(t *testing.T) {
	setup := func(t *testing.T) *crashSetup { return newCrashSetup(t, 14) }
	p, err := folderstore.ParsePolicy("all:6h,daily:forever")
	if err != nil {
		t.Fatal(err)
	}
	op := func(c *crashSetup) error {
		st, err := c.st.Prune(c.w.folder, p, c.w.now)
		if err == nil && len(st.Dropped) == 0 {
			return errors.New("nothing pruned")
		}
		return err
	}
	crashAtEachStep(t, setup, op, []string{"prune-plan", "prune-drop", "prune-merge", "prune-seal", "prune-tx"}, nil)
}

// TestGCCrashAtEachStep fails a collection at each step (the mark, each
// delete, the removal of temporary files): every kept snapshot still
// exports, and the retried collection leaves exactly the kept blocks and
// no temporary file.
func TestGCCrashAtEachStep(t *testing.T) {
	opts := folderstore.GCOptions{Now: time.Now().Add(time.Hour), Grace: time.Minute}
	setup := func(t *testing.T) *crashSetup {
		c := newCrashSetup(t, 14)
		p, _ := folderstore.ParsePolicy("all:6h,daily:forever")
		if _, err := c.st.Prune(c.w.folder, p, c.w.now); err != nil {
			t.Fatal(err)
		}
		// A temporary file a crashed Put left, long ago.
		tmp := filepath.Join(c.dir, "blocks", "ab", ".abcdef.tmp-1")
		if err := os.MkdirAll(filepath.Dir(tmp), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(tmp, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-24 * time.Hour)
		if err := os.Chtimes(tmp, old, old); err != nil {
			t.Fatal(err)
		}
		return c
	}
	op := func(c *crashSetup) error {
		_, err := c.st.GC(opts)
		return err
	}
	after := func(t *testing.T, c *crashSetup) {
		c.w.checkBlocks(c.st)
		if _, err := os.Stat(filepath.Join(c.dir, "blocks", "ab", ".abcdef.tmp-1")); !os.IsNotExist(err) {
			t.Fatalf("temporary file left after a collection: %v", err)
		}
	}
	crashAtEachStep(t, setup, op, []string{"gc-mark", "gc-delete", "gc-temp"}, after)
}

func cloneTree(m map[string]syncfs.FileInfo) map[string]syncfs.FileInfo {
	out := make(map[string]syncfs.FileInfo, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestGCSparesBlocksOfAppendUnderWay runs a collection while an Append is
// between storing its blocks and writing the entries that reference them:
// the blocks, pinned, are not deleted although no snapshot references
// them yet and they are older than the grace; once committed the snapshot
// verifies and exports.
func TestGCSparesBlocksOfAppendUnderWay(t *testing.T) {
	c := newCrashSetup(t, 0)
	one, two := []byte("first block of the file"), []byte("second block of the file")
	fi := c.w.fileEntry("w", "dev-a", one, two)
	var gcErr error
	var gcStats folderstore.GCStats
	ran := false
	folderstore.SetStoreFault(c.st, func(step string) error {
		if step == "entries" && !ran {
			ran = true
			// The blocks are stored by now; collect with a grace that
			// spares nothing by age.
			gcStats, gcErr = c.st.GC(folderstore.GCOptions{Now: time.Now().Add(time.Hour), Grace: time.Nanosecond})
		}
		return nil
	})
	snap, _, err := c.st.Append(c.w.folder, c.w.now, []syncfs.FileInfo{fi}, "dev-a", c.w.read)
	if err != nil {
		t.Fatalf("Append with a collection under way: %v", err)
	}
	if gcErr != nil || gcStats.Spared != 2 {
		t.Fatalf("collection during the Append: %+v, %v; want both blocks spared", gcStats, gcErr)
	}
	c.w.tree[fi.Name] = fi
	c.w.trees[snap.Seq] = cloneTree(c.w.tree)
	c.w.checkAll(c.st)
}

// TestGCGrace collects an unreferenced block Put without a pin: it is
// spared while younger than the grace, a second Put renews its age, and
// it is deleted once older.
func TestGCGrace(t *testing.T) {
	c := newCrashSetup(t, 0)
	data := []byte("a block a transfer wrote, its snapshot not committed yet")
	h := syncfs.HashBytes(data)
	if err := c.disk.Put(h, data); err != nil {
		t.Fatal(err)
	}
	age := func(d time.Duration) {
		old := time.Now().Add(-d)
		if err := os.Chtimes(blockFile(c.dir, h), old, old); err != nil {
			t.Fatal(err)
		}
	}
	gc := func() folderstore.GCStats {
		st, err := c.st.GC(folderstore.GCOptions{Now: time.Now(), Grace: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	age(30 * time.Minute)
	if st := gc(); st.Spared != 1 || st.Deleted != 0 {
		t.Fatalf("collection of a block younger than the grace: %+v; want it spared", st)
	}
	age(2 * time.Hour)
	if err := c.disk.Put(h, data); err != nil {
		t.Fatal(err)
	}
	if st := gc(); st.Spared != 1 || st.Deleted != 0 {
		t.Fatalf("collection of an old block Put again: %+v; want it spared", st)
	}
	age(2 * time.Hour)
	if st := gc(); st.Deleted != 1 {
		t.Fatalf("collection of a block older than the grace: %+v; want it deleted", st)
	}
	if ok, _ := c.disk.Has(h); ok {
		t.Fatal("block held after its collection")
	}
}

// TestGCConcurrentWithAppends runs appends (reusing blocks that pruning
// leaves unreferenced) on one goroutine while another prunes everything
// but the latest snapshot and collects with no grace, over and over: no
// append fails, and at the end the store verifies, every kept snapshot
// exports, and only the kept snapshots' blocks are held.
func TestGCConcurrentWithAppends(t *testing.T) {
	c := newCrashSetup(t, 1)
	p, err := folderstore.ParsePolicy("all:1h")
	if err != nil {
		t.Fatal(err)
	}
	far := epoch.Add(10000 * time.Hour)
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := c.st.Prune(c.w.folder, p, far); err != nil {
				errs <- err
				return
			}
			if _, err := c.st.GC(folderstore.GCOptions{Now: time.Now().Add(time.Hour), Grace: time.Nanosecond}); err != nil {
				errs <- err
				return
			}
		}
	}()
	for range 150 {
		c.w.appendChange(c.st)
	}
	close(done)
	if err := <-errs; err != nil {
		t.Fatalf("pruning and collecting: %v", err)
	}
	c.w.checkAll(c.st)
	if _, err := c.st.Prune(c.w.folder, p, far); err != nil {
		t.Fatal(err)
	}
	if _, err := c.st.GC(folderstore.GCOptions{Now: time.Now().Add(time.Hour), Grace: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	c.w.checkAll(c.st)
	c.w.checkBlocks(c.st)
}
