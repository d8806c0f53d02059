package folderstore_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/syncfs"
)

// TestAppendUnderWayUnseen appends six files two per transaction, a
// folder's first snapshot and then a later one, and looks at the store
// while the last pair's blocks are read (the first four entries written,
// the snapshot not committed): no read shows them (Folders, Snapshots,
// History, Tree and Export of every kept snapshot, References, Usage),
// Verify passes, and a collection keeps their blocks. Once committed, the
// snapshot holds all six.
func TestAppendUnderWayUnseen(t *testing.T) {
	c := newCrashSetup(t, 0)
	folderstore.SetAppendChunk(c.st, 2)
	for round := range 2 {
		c.w.now = c.w.now.Add(time.Minute)
		var changes []syncfs.FileInfo
		for i := range 6 {
			changes = append(changes, c.w.fileEntry(fmt.Sprintf("r%d/f%d", round, i), "dev-a", []byte(fmt.Sprintf("round %d file %d", round, i))))
		}
		folders, err := c.st.Folders()
		if err != nil {
			t.Fatal(err)
		}
		history, err := c.st.History(c.w.folder, "")
		if err != nil {
			t.Fatal(err)
		}
		looked := false
		read := func(name string, b syncfs.Block) ([]byte, error) {
			if name == changes[4].Name {
				looked = true
				if n, err := folderstore.PendingEntries(c.st, c.w.folder); err != nil || n != 4 {
					t.Fatalf("round %d: %d entries written before the last pair's blocks are read (%v); want 4", round, n, err)
				}
				if got, err := c.st.Folders(); err != nil || !reflect.DeepEqual(got, folders) {
					t.Fatalf("round %d: Folders = %v, %v under way; want %v", round, got, err, folders)
				}
				if got, err := c.st.History(c.w.folder, ""); err != nil || !reflect.DeepEqual(got, history) {
					t.Fatalf("round %d: History under way = %d versions, %v; want the %d before", round, len(got), err, len(history))
				}
				// Verify, every kept snapshot's Tree and Export,
				// References and Usage of every block (the new ones
				// referenced by no kept snapshot).
				c.w.checkAll(c.st)
				gs, err := c.st.GC(folderstore.GCOptions{Now: time.Now().Add(time.Hour), Grace: time.Nanosecond})
				if err != nil {
					t.Fatal(err)
				}
				if gs.Deleted != 0 {
					t.Fatalf("round %d: a collection under way deleted %d blocks; want none (the written entries reference them)", round, gs.Deleted)
				}
			}
			return c.w.read(name, b)
		}
		snap, skipped, err := c.st.Append(c.w.folder, c.w.now, changes, "dev-a", read)
		if err != nil || len(skipped) > 0 || snap.Count != 6 {
			t.Fatalf("round %d: Append = %+v, skipped %v, %v; want 6 entries", round, snap, skipped, err)
		}
		if !looked {
			t.Fatal("the store was not looked at during the Append")
		}
		for _, fi := range changes {
			c.w.tree[fi.Name] = fi
		}
		c.w.trees[snap.Seq] = cloneTree(c.w.tree)
		c.w.checkAll(c.st)
		if n, err := folderstore.PendingEntries(c.st, c.w.folder); err != nil || n != 0 {
			t.Fatalf("round %d: %d entries of no snapshot after the Append (%v)", round, n, err)
		}
	}
	c.w.checkBlocks(c.st)
}

// TestAppendFailedLeavesNothing fails an Append in its second transaction
// of entries (a name twice, in different transactions): the error says
// so, the entries of the first are removed at once, and the next Append
// commits as if the failed one had never been.
func TestAppendFailedLeavesNothing(t *testing.T) {
	c := newCrashSetup(t, 3)
	folderstore.SetAppendChunk(c.st, 2)
	c.w.now = c.w.now.Add(time.Minute)
	a := c.w.fileEntry("dup/a", "dev-a", []byte("a"))
	b := c.w.fileEntry("dup/b", "dev-a", []byte("b"))
	if _, _, err := c.st.Append(c.w.folder, c.w.now, []syncfs.FileInfo{a, b, a}, "dev-a", c.w.read); err == nil {
		t.Fatal("Append of a name twice succeeded")
	}
	if n, err := folderstore.PendingEntries(c.st, c.w.folder); err != nil || n != 0 {
		t.Fatalf("%d entries of the failed Append left (%v); want none", n, err)
	}
	c.w.checkAll(c.st)
	c.w.appendChange(c.st)
	c.w.checkAll(c.st)
}
