package foldersync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/syncfs"
)

func TestSyncThroughServer(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server

	alice.write(t, "hello.txt", "hello from alice")
	alice.write(t, "docs/a/b/deep.md", "# deep")
	if err := os.Symlink("hello.txt", filepath.Join(alice.root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(alice.root, "empty"), 0o750); err != nil {
		t.Fatal(err)
	}
	n.waitEqual(alice, server, bob)

	// Changes made on bob travel back to alice.
	bob.write(t, "hello.txt", "bob was here")
	bob.write(t, "docs/new.txt", strings.Repeat("x", 300<<10))
	n.waitEqual(bob, server, alice)

	// Deletes and renames.
	if err := os.RemoveAll(filepath.Join(alice.root, "docs", "a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(alice.root, "docs", "new.txt"), filepath.Join(alice.root, "renamed.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(alice.root, "hello.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	n.waitEqual(alice, server, bob)
	if got := bob.read(t, "renamed.txt"); len(got) != 300<<10 {
		t.Errorf("renamed.txt on bob has %d bytes; want %d", len(got), 300<<10)
	}
	if _, err := os.Lstat(filepath.Join(bob.root, "docs", "a")); !os.IsNotExist(err) {
		t.Errorf("docs/a still on bob: %v", err)
	}
}

// conflictCopies returns the conflict copies of name in d's folder, by
// content.
func conflictCopies(t *testing.T, d *testNode, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for n, e := range readTree(t, d.root) {
		if syncfs.IsConflictCopy(n) && strings.HasPrefix(n, strings.TrimSuffix(name, filepath.Ext(name))) {
			out[e.data] = n
		}
	}
	return out
}

func TestConflictKeepsBoth(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	alice.write(t, "doc.txt", "first version")
	n.waitEqual(alice, server, bob)

	// Bob edits while his agent is stopped; alice edits meanwhile.
	n.stop(bob)
	alice.write(t, "doc.txt", "alice's edit")
	waitFor(t, 30*time.Second, "alice's edit on the server", func() bool { return server.read(t, "doc.txt") == "alice's edit" })
	bob.write(t, "doc.txt", "bob's edit, which is longer")
	n.start(bob)

	n.waitEqual(alice, server, bob)
	tree := readTree(t, alice.root)
	contents := map[string]bool{}
	for name, e := range tree {
		if name == "doc.txt" || syncfs.IsConflictCopy(name) {
			contents[e.data] = true
		}
	}
	if !contents["alice's edit"] || !contents["bob's edit, which is longer"] || len(contents) != 2 {
		t.Errorf("after the conflict the folder holds %v; want both edits, one as a conflict copy", contents)
	}
}

func TestReadOnlyMember(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadOnly}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	alice.write(t, "a.txt", "A1")
	alice.write(t, "dir/b.txt", "B1")
	n.waitEqual(alice, server, bob)

	// Bob's changes stay his.
	bob.write(t, "a.txt", "bob's change")
	bob.write(t, "bobs-new.txt", "new")
	if err := os.Remove(filepath.Join(bob.root, "dir", "b.txt")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "bob's three local changes", func() bool { return n.status(bob).LocalChanges == 3 })
	// Even when told, the server does not take them.
	n.running(n.server).notify(bob.host.ID())
	alice.write(t, "c.txt", "C1")
	waitFor(t, 30*time.Second, "c.txt on bob", func() bool { return bob.read(t, "c.txt") == "C1" })
	for _, d := range []*testNode{server, alice} {
		if got := d.read(t, "a.txt"); got != "A1" {
			t.Errorf("%s: a.txt = %q; want A1 (bob is read-only)", d.name, got)
		}
		if got := d.read(t, "bobs-new.txt"); got != "" {
			t.Errorf("%s: bobs-new.txt = %q; want none", d.name, got)
		}
		if got := d.read(t, "dir/b.txt"); got != "B1" {
			t.Errorf("%s: dir/b.txt = %q; want B1", d.name, got)
		}
	}
	if st := n.status(bob); st.Role != "ro" || !st.InSync || st.LocalChanges != 3 {
		t.Errorf("bob's status = %+v; want role ro, in sync, 3 local changes", st)
	}

	// The server changes a file bob changed: the server's version wins on
	// bob, and his is kept as a conflict copy.
	alice.write(t, "a.txt", "A2")
	waitFor(t, 30*time.Second, "A2 on bob", func() bool { return bob.read(t, "a.txt") == "A2" })
	if cc := conflictCopies(t, bob, "a.txt"); cc["bob's change"] == "" {
		t.Errorf("bob's conflict copies of a.txt: %v; want one holding his change", cc)
	}
	waitFor(t, 30*time.Second, "two local changes", func() bool { return n.status(bob).LocalChanges == 2 })

	// Revert: the folder becomes the server's, bob's new file kept aside.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bob.eng.Revert(ctx, n.folder); err != nil {
		t.Fatalf("Revert: %v", err)
	}
	if got := bob.read(t, "dir/b.txt"); got != "B1" {
		t.Errorf("after Revert, dir/b.txt on bob = %q; want B1", got)
	}
	if got := bob.read(t, "bobs-new.txt"); got != "" {
		t.Errorf("after Revert, bobs-new.txt is still on bob: %q", got)
	}
	if cc := conflictCopies(t, bob, "bobs-new.txt"); cc["new"] == "" {
		t.Errorf("after Revert, bob's new file was not kept as a conflict copy: %v", cc)
	}
	want, got := readTree(t, server.root), readTree(t, bob.root)
	for name := range got {
		if syncfs.IsConflictCopy(name) {
			delete(got, name)
		}
	}
	if d := treeDiff(want, got); d != "" {
		t.Errorf("after Revert bob's folder (conflict copies aside) differs from the server's: %s", d)
	}
	if st := n.status(bob); st.LocalChanges != 0 || !st.InSync {
		t.Errorf("after Revert bob's status = %+v; want no local changes, in sync", st)
	}
	if err := alice.eng.Revert(ctx, n.folder); !errors.Is(err, ErrNotReadOnly) {
		t.Errorf("Revert on alice (owner) = %v; want ErrNotReadOnly", err)
	}

	// Later server changes apply plainly, without new conflict copies.
	before := len(readTree(t, bob.root))
	alice.write(t, "a.txt", "A3")
	waitFor(t, 30*time.Second, "A3 on bob", func() bool { return bob.read(t, "a.txt") == "A3" })
	if after := len(readTree(t, bob.root)); after != before {
		t.Errorf("bob's folder went from %d to %d entries on a plain server change", before, after)
	}
}

// A 1 MiB change inside a 16 MiB file moves about 1 MiB each way.
func TestSmallEditMovesLittle(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	alice.write(t, "big.bin", string(randomBytes(16<<20)))
	n.waitEqual(alice, server, bob)
	s0, b0, a0 := n.status(server).Fetched, n.status(bob).Fetched, n.status(alice).Served

	f, err := os.OpenFile(filepath.Join(alice.root, "big.bin"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(randomBytes(1<<20), 7<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	n.waitEqual(alice, server, bob)
	for _, c := range []struct {
		what  string
		bytes int64
	}{
		{"server fetched", n.status(server).Fetched - s0},
		{"bob fetched", n.status(bob).Fetched - b0},
		{"alice served", n.status(alice).Served - a0},
	} {
		t.Logf("%s %.2f MiB for a 1 MiB edit", c.what, float64(c.bytes)/(1<<20))
		if c.bytes < 1<<20 || c.bytes > 4<<20 {
			t.Errorf("%s %d bytes for a 1 MiB edit; want about 1 MiB (1 to 4 MiB)", c.what, c.bytes)
		}
	}
}

func TestManySmallFiles(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	start := time.Now()
	for i := range 1000 {
		alice.write(t, fmt.Sprintf("d%02d/f%04d.txt", i%10, i), string(randomBytes(1+i%4096)))
	}
	n.waitEqual(alice, server, bob)
	t.Logf("1000 files synced through the server in %v", time.Since(start).Round(time.Millisecond))
}

// A folder synced in a new, empty directory fetches everything; the files
// the old directory held are not taken for deleted.
func TestNewDirectoryDeletesNothing(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	alice.write(t, "keep/me.txt", "precious")
	n.waitEqual(alice, server, bob)

	n.stop(bob)
	bob.root = filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Mkdir(bob.root, 0o755); err != nil {
		t.Fatal(err)
	}
	n.start(bob)
	n.waitEqual(alice, server, bob)
	if got := server.read(t, "keep/me.txt"); got != "precious" {
		t.Errorf("keep/me.txt on the server = %q after bob moved the folder; want precious", got)
	}
}

// A folder directory found empty, as on a drive that is not mounted, is
// not taken for deleted files until the user rescans it.
func TestEmptiedDirectoryWaitsForRescan(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	alice.write(t, "a/one.txt", "1")
	alice.write(t, "two.txt", "2")
	n.waitEqual(alice, server, bob)

	n.stop(bob)
	moveEntries(t, bob.root, t.TempDir())
	n.start(bob)
	st := waitEmptied(t, n, bob)
	if !strings.HasPrefix(st.LastError, ErrEmptied.Error()) {
		t.Errorf("bob's last error = %q; want ErrEmptied's", st.LastError)
	}
	if got := server.read(t, "two.txt"); got != "2" {
		t.Fatalf("two.txt on the server = %q; want 2 (bob's folder is only emptied)", got)
	}

	if err := bob.eng.Rescan(n.folder); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the deletions on the server", func() bool { return len(readTree(t, server.root)) == 0 })
	n.waitEqual(bob, server, alice)
	if st := n.status(bob); st.Emptied || st.State == StateError || st.LastError != "" {
		t.Errorf("bob's folder after the rescan confirmed the emptying: emptied %v, state %s, last error %q; want it running, no error", st.Emptied, st.State, st.LastError)
	}
}

// A folder stopped as emptied starts again by itself, its files kept, once
// its directory is back as it was (the drive mounted again).
func TestEmptiedDirectoryBack(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	alice.write(t, "a/one.txt", "1")
	alice.write(t, "two.txt", "2")
	n.waitEqual(alice, server, bob)
	if st := n.status(bob); st.Emptied {
		t.Errorf("bob's folder in sync: emptied; want not")
	}

	n.stop(bob)
	away := t.TempDir()
	moveEntries(t, bob.root, away)
	n.start(bob)
	waitEmptied(t, n, bob)

	moveEntries(t, away, bob.root)
	// The stopped folder tries again every setupRetry, or as soon as a
	// rescan is asked for.
	n.running(bob).requestRescan()
	waitFor(t, 30*time.Second, "bob's folder running again", func() bool {
		st := n.status(bob)
		return !st.Emptied && st.State != StateError && st.LastError == ""
	})
	alice.write(t, "three.txt", "3")
	n.waitEqual(alice, server, bob)
	if got := bob.read(t, "two.txt"); got != "2" {
		t.Errorf("two.txt on bob = %q; want 2", got)
	}
}

// waitEmptied waits until d's folder is stopped as emptied and returns its
// status.
func waitEmptied(t *testing.T, n *testNet, d *testNode) FolderStatus {
	t.Helper()
	var st FolderStatus
	waitFor(t, 30*time.Second, d.name+"'s folder stopped as emptied", func() bool {
		st = n.status(d)
		return st.State == StateError && st.Emptied
	})
	return st
}

// moveEntries moves every entry of the directory from into the directory
// to.
func moveEntries(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// Deleting every file of a folder, its marker file left (as rm -rf dir/*
// does), deletes them everywhere, even when a full rescan finds it so.
func TestEveryFileDeleted(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	alice.write(t, "a/one.txt", "1")
	alice.write(t, "two.txt", "2")
	n.waitEqual(alice, server, bob)
	for _, name := range []string{"a", "two.txt"} {
		if err := os.RemoveAll(filepath.Join(alice.root, name)); err != nil {
			t.Fatal(err)
		}
	}
	n.running(alice).requestRescan() // as the periodic rescan does
	waitFor(t, 30*time.Second, "the deletions on bob", func() bool { return len(readTree(t, bob.root)) == 0 })
	n.waitEqual(alice, server, bob)
	if _, err := os.Stat(filepath.Join(bob.root, MarkerFile)); err != nil {
		t.Errorf("bob's marker file: %v", err)
	}
}

// Three devices edit one file concurrently: every edit survives, on every
// device, once as the file and otherwise as conflict copies.
func TestConflictThreeDevices(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite, "carol": collections.RightReadWrite}, nil)
	alice, bob, carol, server := n.nodes["alice"], n.nodes["bob"], n.nodes["carol"], n.server
	alice.write(t, "plan.txt", "the plan")
	n.waitEqual(alice, server, bob, carol)

	n.stop(bob)
	n.stop(carol)
	alice.write(t, "plan.txt", "alice's plan")
	bob.write(t, "plan.txt", "bob's plan, longer")
	carol.write(t, "plan.txt", "carol's plan, the longest of all")
	n.start(bob)
	n.start(carol)
	n.waitEqual(alice, server, bob, carol)

	contents := map[string]bool{}
	for name, e := range readTree(t, carol.root) {
		if name == "plan.txt" || syncfs.IsConflictCopy(name) {
			contents[e.data] = true
		}
	}
	for _, want := range []string{"alice's plan", "bob's plan, longer", "carol's plan, the longest of all"} {
		if !contents[want] {
			t.Errorf("%q was lost; the folder holds %v", want, contents)
		}
	}
}

// The ignore file travels like any file and takes effect on every device:
// ignored names are neither sent nor taken.
func TestIgnoreFile(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	alice.write(t, syncfs.IgnoreFile, "*.tmp\nbuild/\n")
	waitFor(t, 30*time.Second, "the ignore file on bob", func() bool { return bob.read(t, syncfs.IgnoreFile) != "" })
	alice.write(t, "keep.txt", "kept")
	alice.write(t, "scratch.tmp", "scratch")
	alice.write(t, "build/out.bin", "binary")
	bob.write(t, "bobs.tmp", "bob's scratch")
	waitFor(t, 30*time.Second, "keep.txt on bob, everyone in sync", func() bool {
		return bob.read(t, "keep.txt") == "kept" && n.status(alice).InSync && n.status(bob).InSync && n.status(server).InSync
	})
	for _, name := range []string{"scratch.tmp", "build/out.bin"} {
		if got := bob.read(t, name); got != "" {
			t.Errorf("ignored %s reached bob", name)
		}
	}
	if got := alice.read(t, "bobs.tmp"); got != "" {
		t.Errorf("bob's ignored bobs.tmp reached alice")
	}
}
