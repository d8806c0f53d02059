package foldersync

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baton-sync/baton/collections"
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
