package folderstore_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer/folderstore"
)

var testPolicies = []string{
	"all:1d,daily:30d,weekly:365d",
	"all:6h,hourly:1d,daily:forever",
	"all:12h,6h:3d",
	"daily:2d",
}

// TestHistoryProperty runs seeded random sequences of changes (files
// written with shared blocks, some unreadable, deletions, symlinks,
// directories) appended as snapshots, with retention by random policies,
// collections and reopenings among them; every so often, and at the end,
// every kept snapshot's Tree must equal the tree that existed then and its
// Export restore it byte for byte, the latest snapshot must be kept, the
// store must verify, and after a collection hold exactly the kept
// snapshots' blocks.
func TestHistoryProperty(t *testing.T) {
	key := identitytest.Key("server")
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			dir := t.TempDir()
			open := func() *folderstore.Store {
				disk := folderstore.NewDisk(filepath.Join(dir, "blocks"))
				st, err := folderstore.Open(filepath.Join(dir, "snapshots.db"), disk, folderstore.WithServerKey(key))
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			st := open()
			defer func() { st.Close() }()
			w := newWorld(t, seed, "photos")
			pruned, collected := 0, 0
			for step := range 160 {
				w.appendChange(st)
				switch r := w.rng.IntN(20); {
				case r < 2:
					p, err := folderstore.ParsePolicy(testPolicies[w.rng.IntN(len(testPolicies))])
					if err != nil {
						t.Fatal(err)
					}
					before := keptSeqs(t, st, w.folder)
					ps, err := st.Prune(w.folder, p, w.now.Add(time.Duration(w.rng.IntN(48))*time.Hour))
					if err != nil {
						t.Fatalf("step %d: Prune: %v", step, err)
					}
					after := keptSeqs(t, st, w.folder)
					for _, d := range ps.Dropped {
						if slices.Contains(after, d) {
							t.Fatalf("step %d: snapshot %d dropped and still listed", step, d)
						}
						if _, err := st.Tree(w.folder, d); !errors.Is(err, folderstore.ErrSnapshotNotFound) {
							t.Fatalf("step %d: Tree of dropped snapshot %d = %v; want ErrSnapshotNotFound", step, d, err)
						}
					}
					if len(after)+len(ps.Dropped) != len(before) {
						t.Fatalf("step %d: %d snapshots, %d dropped, %d left", step, len(before), len(ps.Dropped), len(after))
					}
					pruned += len(ps.Dropped)
					w.checkAll(st)
				case r < 4:
					gs, err := st.GC(folderstore.GCOptions{Now: time.Now().Add(time.Hour), Grace: time.Minute})
					if err != nil {
						t.Fatalf("step %d: GC: %v", step, err)
					}
					collected += gs.Deleted
					w.checkBlocks(st)
				case r < 5:
					if err := st.Close(); err != nil {
						t.Fatal(err)
					}
					st = open()
				}
				if step%40 == 39 {
					w.checkAll(st)
				}
			}
			if _, err := st.Prune(w.folder, folderstore.DefaultPolicy, w.now.Add(40*24*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if _, err := st.GC(folderstore.GCOptions{Now: time.Now().Add(time.Hour), Grace: time.Minute}); err != nil {
				t.Fatal(err)
			}
			w.checkAll(st)
			w.checkBlocks(st)
			t.Logf("%d snapshots made, %d dropped, %d kept, %d blocks collected", len(w.trees), pruned, len(keptSeqs(t, st, w.folder)), collected)
			if pruned == 0 || collected == 0 {
				t.Fatalf("the sequence pruned %d snapshots and collected %d blocks; want some of each", pruned, collected)
			}
		})
	}
}
