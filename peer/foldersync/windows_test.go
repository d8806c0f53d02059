package foldersync

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/syncfs"
)

// A change larger than a plan's window is applied a window at a time and
// arrives whole on every host: new files, a moved directory, a deleted
// tree (never brought back), a directory that became a file and a file
// that became a directory, with no conflict copy anywhere.
func TestChangeAppliedInWindows(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, func(c *Config) {
		c.planWindow = 3
	})
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	for i := range 5 {
		alice.write(t, fmt.Sprintf("old/x/f%d", i), fmt.Sprintf("moved %d", i))
		alice.write(t, fmt.Sprintf("gone/sub/g%d", i), fmt.Sprintf("deleted %d", i))
		alice.write(t, fmt.Sprintf("dir2file/h%d", i), fmt.Sprintf("replaced %d", i))
		alice.write(t, fmt.Sprintf("keep/k%d", i), fmt.Sprintf("kept %d", i))
	}
	alice.write(t, "file2dir", "a file")
	n.waitEqual(alice, server, bob)

	if err := os.Rename(filepath.Join(alice.root, "old"), filepath.Join(alice.root, "new")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gone", "dir2file", "file2dir"} {
		if err := os.RemoveAll(filepath.Join(alice.root, name)); err != nil {
			t.Fatal(err)
		}
	}
	alice.write(t, "dir2file", "now a file")
	alice.write(t, "file2dir/inner", "now in a directory")
	for i := range 5 {
		alice.write(t, fmt.Sprintf("keep/k%d", i), fmt.Sprintf("changed %d", i))
		alice.write(t, fmt.Sprintf("added/a%d", i), fmt.Sprintf("added %d", i))
	}
	n.running(alice).requestRescan()
	waitFor(t, 60*time.Second, "the change on bob", func() bool {
		_, err := os.Lstat(filepath.Join(bob.root, "gone"))
		return bob.read(t, "added/a4") == "added 4" && os.IsNotExist(err)
	})
	n.waitEqual(alice, server, bob)
	for _, d := range []*testNode{alice, server, bob} {
		tree := readTree(t, d.root)
		for name := range tree {
			if name == "gone" || strings.HasPrefix(name, "gone/") || name == "old" || strings.HasPrefix(name, "old/") {
				t.Errorf("%s: %s is back", d.name, name)
			}
			if syncfs.IsConflictCopy(name) {
				t.Errorf("%s: conflict copy %s", d.name, name)
			}
		}
		if got := tree["dir2file"]; got.kind != "file" || got.data != "now a file" {
			t.Errorf("%s: dir2file = %+v; want the file", d.name, got)
		}
		if got := tree["file2dir/inner"]; got.data != "now in a directory" {
			t.Errorf("%s: file2dir/inner = %+v", d.name, got)
		}
		if got := tree["new/x/f4"]; got.data != "moved 4" {
			t.Errorf("%s: new/x/f4 = %+v", d.name, got)
		}
		if st := n.status(d); len(st.Failed) != 0 || st.Stuck {
			t.Errorf("%s: failed %v, stuck %v", d.name, st.Failed, st.Stuck)
		}
	}
}

// failingFS is a folder's disk on which removing (or writing over) the
// names in fail fails while failing is set.
type failingFS struct {
	syncfs.WriteFS
	fail    map[string]bool
	failing *atomic.Bool
}

func (f failingFS) Remove(name string) error {
	if f.failing.Load() && f.fail[filepath.ToSlash(name)] {
		return fmt.Errorf("remove %s: %w", name, fs.ErrPermission)
	}
	return f.WriteFS.Remove(name)
}

func (f failingFS) Rename(from, to string) error {
	if f.failing.Load() && f.fail[filepath.ToSlash(to)] {
		return fmt.Errorf("rename %s %s: %w", from, to, fs.ErrPermission)
	}
	return f.WriteFS.Rename(from, to)
}

// A change that fails in one window is shown, counted and retried as in
// one plan: the windows after it (here of symlinks the server skips, which
// every plan looks at again) do not clear it, and the folder says it is
// stuck after StuckAfter attempts.
func TestWindowFailureShown(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner}, func(c *Config) {
		c.planWindow = 3 // a/0's window comes first
		c.StuckAfter = 2
		c.wrapFS = func(fsys syncfs.WriteFS) syncfs.WriteFS {
			return failingFS{fsys, map[string]bool{"a/0": true}, &failing}
		}
	})
	alice, server := n.nodes["alice"], n.server
	alice.write(t, "a/0", "fails on the server")
	for i := range 6 {
		if err := os.MkdirAll(filepath.Join(alice.root, "z"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/etc/passwd", filepath.Join(alice.root, "z", fmt.Sprintf("l%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, "the server stuck on a/0", func() bool {
		st := n.status(server)
		return st.Stuck && len(st.Failed) == 1 && st.Failed[0].Path == "a/0" && len(st.Skipped) == 6
	})
}

// A deletion of a tree that fails for one file in an early window keeps
// no directory as "not empty": once the file can go, the whole tree is
// gone everywhere, never brought back.
func TestWindowDeletionFailureKeepsNoDirectory(t *testing.T) {
	var failing atomic.Bool
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner}, func(c *Config) {
		c.planWindow = 2
		c.StuckAfter = 2
		c.wrapFS = func(fsys syncfs.WriteFS) syncfs.WriteFS {
			return failingFS{fsys, map[string]bool{"d/sub/x5": true}, &failing}
		}
	})
	alice, server := n.nodes["alice"], n.server
	for i := range 6 {
		alice.write(t, fmt.Sprintf("d/sub/x%d", i), fmt.Sprintf("file %d", i))
	}
	alice.write(t, "keep", "kept")
	n.waitEqual(alice, server)
	failing.Store(true)
	if err := os.RemoveAll(filepath.Join(alice.root, "d")); err != nil {
		t.Fatal(err)
	}
	n.running(alice).requestRescan()
	waitFor(t, 60*time.Second, "the server's deletion of d/sub/x5 to fail", func() bool {
		st := n.status(server)
		return len(st.Failed) == 1 && st.Failed[0].Path == "d/sub/x5"
	})
	failing.Store(false)
	n.waitEqual(alice, server)
	for _, d := range []*testNode{alice, server} {
		for name := range readTree(t, d.root) {
			if name == "d" || strings.HasPrefix(name, "d/") {
				t.Errorf("%s: %s is back", d.name, name)
			}
		}
	}
}

// A change of more names than a scope notes one by one is taken as a
// whole index would be: the delta that brings it holds no names, and the
// plans, publications, counts and stores that follow look at every entry
// (a window at a time). Everything arrives, and deletions are not lost.
// A delta of more entries than are held in memory until verified is
// staged in the peer store (the five names), a smaller one is not.
func TestChangeBeyondScopeLimit(t *testing.T) {
	const limit = 4
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, func(c *Config) {
		c.planWindow = 3
		c.scopeNames = limit
		c.localWhole = limit
		c.stagedWindow = 2
	})
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	for i := range 12 {
		alice.write(t, fmt.Sprintf("d/f%02d", i), fmt.Sprintf("first %d", i))
	}
	n.waitEqual(alice, server, bob)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	held, err := bob.eng.requestIndex(ctx, server.host.ID(), n.folder, nil)
	if err != nil {
		t.Fatal(err)
	}
	small, large := []string{"d/f00"}, []string{"d/f01", "d/f02", "d/f03", "d/f04", "d/f05"}
	for _, c := range []struct {
		names []string
		delta bool
	}{{small, true}, {large, false}} {
		for _, name := range c.names {
			alice.write(t, name, "changed "+name)
		}
		n.running(alice).requestRescan()
		waitFor(t, 20*time.Second, "the change on the server", func() bool { return server.read(t, c.names[0]) == "changed "+c.names[0] })
		n.waitEqual(alice, server)
		ri, err := bob.eng.requestIndex(ctx, server.host.ID(), n.folder, held)
		if err != nil {
			t.Fatal(err)
		}
		if ri.key != held.key || ri.base != held.seq {
			t.Fatalf("a change of %d names came whole (key %s base %d; held %s at %d); want a delta", len(c.names), ri.key, ri.base, held.key, held.seq)
		}
		switch {
		case c.delta && !slices.Equal(ri.delta, c.names):
			t.Errorf("a delta of %d names (limit %d) noted %q; want %q", len(c.names), limit, ri.delta, c.names)
		case !c.delta && ri.delta != nil:
			t.Errorf("a delta of %d names (limit %d) noted %q; want none noted (every entry looked at)", len(c.names), limit, ri.delta)
		}
		got, err := bob.eng.loadRemote(ri, c.names)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range c.names {
			if fi := got[name]; fi.Size != int64(len("changed "+name)) {
				t.Errorf("the delta's entry of %s: size %d; want the changed file's", name, fi.Size)
			}
		}
		held = ri
	}

	// Many names at once on every host: more than any set notes.
	for i := range 12 {
		name := fmt.Sprintf("d/f%02d", i)
		if i%3 == 0 {
			if err := os.Remove(filepath.Join(alice.root, name)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		alice.write(t, name, fmt.Sprintf("second %d", i))
		alice.write(t, fmt.Sprintf("e/g%02d", i), fmt.Sprintf("new %d", i))
	}
	n.running(alice).requestRescan()
	waitFor(t, 60*time.Second, "the change on bob", func() bool {
		_, err := os.Lstat(filepath.Join(bob.root, "d/f09"))
		return bob.read(t, "e/g11") == "new 11" && bob.read(t, "d/f10") == "second 10" && os.IsNotExist(err)
	})
	n.waitEqual(alice, server, bob)
	waitFor(t, 20*time.Second, "bob in sync with 16 files", func() bool {
		st := n.status(bob)
		return st.InSync && st.LocalFiles == 16
	})
	for _, d := range []*testNode{server, bob} {
		if st := n.status(d); len(st.Failed) != 0 || st.Stuck {
			t.Errorf("%s: %+v; want nothing failed", d.name, st)
		}
	}
}

// A plan's scope notes the names of deltas up to its limit, then widens
// to every entry; an index that came whole widens it at once.
func TestPlanScopeLimit(t *testing.T) {
	var sc planScope
	sc.add(&remoteIndex{delta: []string{"a", "b"}}, 3)
	if sc.all || len(sc.names) != 2 || !sc.names.has("a") || !sc.names.has("b") {
		t.Fatalf("scope after a delta of 2 (limit 3): all %v, names %v; want a and b", sc.all, sc.names)
	}
	sc.add(&remoteIndex{delta: []string{"a"}}, 3)
	if sc.all || len(sc.names) != 2 {
		t.Fatalf("scope after a name it holds: all %v, names %v", sc.all, sc.names)
	}
	sc.add(&remoteIndex{delta: []string{"c", "d"}}, 3)
	if !sc.all || sc.names != nil {
		t.Fatalf("scope past its limit: all %v, names %v; want every entry, no names held", sc.all, sc.names)
	}
	sc = planScope{}
	sc.add(&remoteIndex{}, 3)
	if !sc.all {
		t.Fatalf("scope after a whole index: all %v; want every entry", sc.all)
	}
}

// An entry replaced by one of another type is deleted, then created, at
// the version of the new entry: no publication while the apply goes on
// shows the deletion alone.
func TestReplacedNotPublishedMidway(t *testing.T) {
	v := syncfs.Vector{}.Update("dev")
	actions := []syncfs.Action{
		{Kind: syncfs.ActDelete, Name: "x", File: syncfs.FileInfo{Name: "x", Deleted: true, Version: v}},
		{Kind: syncfs.ActDelete, Name: "gone", File: syncfs.FileInfo{Name: "gone", Deleted: true, Version: v}},
		{Kind: syncfs.ActSkip, Name: "gone"},
		{Kind: syncfs.ActMkDir, Name: "x", File: syncfs.FileInfo{Name: "x", Type: syncfs.TypeDir, Version: v}},
		{Kind: syncfs.ActFetch, Name: "x/y", File: syncfs.FileInfo{Name: "x/y", Version: v}},
	}
	got := replaced(actions)
	if len(got) != 1 || !got.has("x") {
		t.Fatalf("replaced = %v; want x alone", got)
	}
	local := syncfs.NewLocal()
	local.Set(syncfs.FileInfo{Name: "x", Deleted: true, Version: v})
	local.Set(syncfs.FileInfo{Name: "other", Type: syncfs.TypeDir, Version: v})
	prev, _ := newPublished(nil, "f", "dev", 1, 1, syncfs.Snapshot{"x": {Name: "x", Type: syncfs.TypeFile, Version: syncfs.Vector{}.Update("old")}}, nil, true, nil)
	for _, all := range []bool{false, true} {
		p, changed := newPublished(prev, "f", "dev", 1, 2, withheld{&local, got}, []string{"x", "other"}, all, nil)
		if !slices.Equal(changed, []string{"other"}) {
			t.Errorf("published midway (all %v): %q; want other alone", all, changed)
		}
		if e, ok := p.tree.get("x"); !ok || e.fi.Deleted {
			t.Errorf("x published midway (all %v): %+v; want the entry published before", all, e.fi)
		}
	}
}
