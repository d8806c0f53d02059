package syncfs_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/baton-sync/baton/syncfs"
)

// The count kept entry by entry equals LocalChanges recomputed whole,
// after every batch of local and server changes.
func TestChangeCountMatchesLocalChanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	local, server := syncfs.Snapshot{}, syncfs.Snapshot{}
	names := []string{"d", "d/e", "x"}
	for i := range 40 {
		names = append(names, fmt.Sprintf("d/f%d", i), fmt.Sprintf("d/e/g%d", i%7))
	}
	for i := range 5 {
		names = append(names, syncfs.ConflictName(fmt.Sprintf("d/e/c%d", i), time.Unix(int64(i), 0), "dev"))
	}
	entry := func(n string) syncfs.FileInfo {
		fi := syncfs.FileInfo{Name: n, Version: syncfs.Vector{Counters: []syncfs.Counter{{Device: []string{"a", "b"}[rng.IntN(2)], Value: uint64(rng.IntN(3) + 1)}}}}
		if n == "d" || n == "d/e" {
			fi.Type = syncfs.TypeDir
		} else {
			fi.FileHash = syncfs.Hash{byte(rng.IntN(2))}
		}
		fi.Deleted = rng.IntN(5) == 0
		if fi.Deleted {
			fi.FileHash = syncfs.Hash{}
		}
		return fi
	}
	change := func(s syncfs.Snapshot, n string) {
		if rng.IntN(6) == 0 {
			delete(s, n)
		} else {
			s[n] = entry(n)
		}
	}
	get := func(s syncfs.Snapshot) func(string) (syncfs.FileInfo, bool) {
		return func(n string) (syncfs.FileInfo, bool) { fi, ok := s[n]; return fi, ok }
	}
	var c syncfs.ChangeCount
	c.Reset()
	for round := range 200 {
		touched := map[string]bool{}
		for range rng.IntN(6) + 1 {
			n := names[rng.IntN(len(names))]
			if rng.IntN(2) == 0 {
				change(local, n)
			} else {
				change(server, n)
			}
			touched[n] = true
		}
		for n := range touched {
			l, okL := local[n]
			s, okS := server[n]
			c.Update(n, l, okL, s, okS)
		}
		if got, want := c.Count(get(local), get(server)), len(syncfs.LocalChanges(local, server)); got != want {
			t.Fatalf("round %d: count = %d; localChanges finds %d: %v", round, got, want, syncfs.LocalChanges(local, server))
		}
	}
}
