package foldersync

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/syncfs"
)

// A read-only member's renames, mode changes and new directories stay on
// its device, like its edits (TestReadOnlyMember): the server, even told
// of them, takes none, and Revert undoes them, keeping the renamed file's
// content as a conflict copy.
func TestReadOnlyMemberRenameChmodMkdir(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadOnly}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	alice.write(t, "a.txt", "A")
	alice.write(t, "dir/b.txt", "B")
	n.waitEqual(alice, server, bob)
	want := readTree(t, server.root)

	if err := os.Chmod(filepath.Join(bob.root, "a.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(bob.root, "dir", "b.txt"), filepath.Join(bob.root, "dir", "renamed.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(bob.root, "bobs-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The mode, the old name's deletion, the new name, the directory.
	waitFor(t, 30*time.Second, "bob's four local changes", func() bool { return n.status(bob).LocalChanges == 4 })
	n.running(server).notify(bob.host.ID())
	alice.write(t, "c.txt", "C")
	waitFor(t, 30*time.Second, "c.txt on bob", func() bool { return bob.read(t, "c.txt") == "C" })
	want["c.txt"] = entry{kind: "file", mode: 0o644, data: "C"}
	for _, d := range []*testNode{server, alice} {
		if diff := treeDiff(want, readTree(t, d.root)); diff != "" {
			t.Errorf("%s took bob's read-only changes: %s", d.name, diff)
		}
	}
	if st := n.status(bob); st.Role != "ro" || st.LocalChanges != 4 {
		t.Errorf("bob's status = %+v; want role ro, 4 local changes", st)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bob.eng.Revert(ctx, n.folder); err != nil {
		t.Fatalf("Revert: %v", err)
	}
	got := readTree(t, bob.root)
	if cc := conflictCopies(t, bob, "dir/renamed.txt"); cc["B"] == "" {
		t.Errorf("after Revert, bob's renamed file was not kept as a conflict copy: %v", cc)
	}
	for name := range got {
		if syncfs.IsConflictCopy(name) {
			delete(got, name)
		}
	}
	if diff := treeDiff(want, got); diff != "" {
		t.Errorf("after Revert bob's folder (conflict copies aside) differs from the server's: %s", diff)
	}
	if st := n.status(bob); st.LocalChanges != 0 || !st.InSync {
		t.Errorf("after Revert bob's status = %+v; want no local changes, in sync", st)
	}
}

// A read-only member that is hostile announces an index with a newer
// version of a file and a new file, and tells the server: the server does
// not even ask for its index, and nothing changes anywhere.
func TestReadOnlyRogueIgnored(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	mallory := n.newRogue("mallory", collections.RightReadOnly)
	alice.write(t, "a.txt", "from alice")
	n.waitEqual(alice, server, bob)
	a, _ := n.running(server).pub.Load().get("a.txt")

	mallory.serve(
		mallory.file("a.txt", []byte("mallory's version"), mallory.version(a.fi.Version)),
		mallory.file("m.txt", []byte("mallory's file"), mallory.version(syncfs.Vector{})),
	)
	mallory.round(bob)
	if got := mallory.indexRequests.Load(); got != 0 {
		t.Errorf("the server asked a read-only member for its index %d times", got)
	}
	n.waitEqual(alice, server, bob)
	for _, d := range []*testNode{server, alice, bob} {
		if got := d.read(t, "a.txt"); got != "from alice" {
			t.Errorf("%s: a.txt = %q; want alice's", d.name, got)
		}
		if got := d.read(t, "m.txt"); got != "" {
			t.Errorf("%s: m.txt = %q; want none", d.name, got)
		}
	}
}
