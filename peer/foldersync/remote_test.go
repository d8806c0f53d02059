package foldersync

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/baton-sync/baton/syncfs"
)

// TestPlanOfDifferingEntries checks what syncWith relies on to keep a
// peer's index on disk: for random local and remote snapshots, a plan of
// the remote entries loaded from the store that are at another version
// than the local ones (Engine.differing) is the plan of the whole
// remote snapshot.
func TestPlanOfDifferingEntries(t *testing.T) {
	const self, other, third = "12D3KooWSelfDeviceAAAA", "12D3KooWOtherDeviceBBB", "12D3KooWThirdDeviceCCC"
	ps, err := syncfs.OpenPeerStore(filepath.Join(t.TempDir(), "peers.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	e := &Engine{peers: ps}
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		local, remote := syncfs.Snapshot{}, syncfs.Snapshot{}
		version := func() syncfs.Vector {
			v := syncfs.Vector{}
			for _, d := range []string{self, other, third} {
				for range rng.IntN(3) {
					v = v.Update(d)
				}
			}
			if v.IsZero() {
				v = v.Update(other)
			}
			return v
		}
		entry := func(name string) syncfs.FileInfo {
			v := version()
			switch rng.IntN(5) {
			case 0:
				return syncfs.FileInfo{Name: name, Type: syncfs.TypeFile, Deleted: true, Version: v}
			case 1:
				return syncfs.FileInfo{Name: name, Type: syncfs.TypeDir, Mode: 0o755, Version: v}
			}
			content := []byte(fmt.Sprintf("content %d", rng.IntN(3)))
			blocks := []syncfs.Block{{Size: uint32(len(content)), Hash: syncfs.HashBytes(content)}}
			return syncfs.FileInfo{Name: name, Type: syncfs.TypeFile, Mode: 0o644, ModTime: int64(rng.IntN(3)), Size: int64(len(content)), Blocks: blocks, FileHash: syncfs.FileHashOf(blocks), Version: v}
		}
		for i := range 30 {
			name := fmt.Sprintf("d%d/f%d", i%3, i)
			if i < 3 {
				name = fmt.Sprintf("d%d", i)
			}
			l, r := entry(name), entry(name)
			switch rng.IntN(4) {
			case 0: // only here
				local[name] = l
			case 1: // only there
				remote[name] = r
			case 2: // the same version on both
				local[name], remote[name] = l, l
			default:
				local[name], remote[name] = l, r
			}
		}
		ri := &remoteIndex{key: fmt.Sprintf("f/p/%d", seed)}
		if err := ps.Put(ri.key, remote.Sorted()); err != nil {
			t.Fatal(err)
		}
		names, more, err := e.differingAfter(ri, local, "", 0)
		if err != nil || more {
			t.Fatal(err, more)
		}
		// A walk a window at a time finds the same names, in name order.
		limit := 1 + rng.IntN(5)
		var windows []string
		for w, more := []string(nil), true; more; {
			after := ""
			if len(w) > 0 {
				after = w[len(w)-1]
			}
			if w, more, err = e.differingAfter(ri, local, after, limit); err != nil {
				t.Fatal(err)
			}
			if len(w) > limit || more && len(w) < limit {
				t.Fatalf("seed %d: a window of %d names (limit %d, more %v)", seed, len(w), limit, more)
			}
			windows = append(windows, w...)
		}
		if !slices.Equal(windows, names) || !slices.IsSorted(names) {
			t.Fatalf("seed %d: windows of %d gave %q; the whole walk %q", seed, limit, windows, names)
		}
		subset, err := e.loadRemote(ri, names)
		if err != nil {
			t.Fatal(err)
		}
		want := syncfs.Plan(local, remote, self)
		got := syncfs.Plan(local, subset, self)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("seed %d: the plan of the differing entries differs from the whole's (-whole +differing):\n%s", seed, diff)
		}
		// A scope names some entries: those of them that differ.
		scope := nameSet{}
		for n := range remote {
			if rng.IntN(2) == 0 {
				scope.add(n)
			}
		}
		if rng.IntN(2) == 0 {
			scope.add("not/in/the/index")
		}
		inScope, err := e.differing(ri, local, scope)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range inScope {
			if !scope.has(n) {
				t.Fatalf("seed %d: differing in scope %v gave %q, not in it", seed, scope, n)
			}
			if l, ok := local[n]; ok && l.Version.Equal(remote[n].Version) {
				t.Fatalf("seed %d: differing gave %q, at the local version", seed, n)
			}
			if _, ok := remote[n]; !ok {
				t.Fatalf("seed %d: differing gave %q, which the index lacks", seed, n)
			}
		}
		for n := range scope {
			r, ok := remote[n]
			if l, okL := local[n]; ok && (!okL || !l.Version.Equal(r.Version)) && !slices.Contains(inScope, n) {
				t.Fatalf("seed %d: differing in scope %v left out %q, at another version there", seed, scope, n)
			}
		}
	}
}
