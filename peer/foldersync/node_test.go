package foldersync_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/internal/sandbox"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
)

// Through real nodes: alice (home s1) shares a folder read-only with bob
// (home s2). Bob gets alice's files; his own edit stays his (a local
// change) until he reverts it; once alice makes him read-write, his edits
// reach her.
func TestReadOnlyThroughNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a domain of two servers and two agents")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := sandbox.Options{Servers: 2, Dir: t.TempDir(), Configure: func(c *peer.Config) { c.PasswordKDF = identitytest.FastKDF }}
	if os.Getenv("FOLDERSYNC_LOG") != "" {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	sb, err := sandbox.New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	for i, u := range []string{"alice", "bob"} {
		if _, err := sb.AddUser(ctx, u, i, u+"'s password"); err != nil {
			t.Fatal(err)
		}
	}
	alice, err := sb.AddAgent(ctx, "alice-laptop", "alice", "alice's password")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := sb.AddAgent(ctx, "bob-laptop", "bob", "bob's password")
	if err != nil {
		t.Fatal(err)
	}
	id, aliceDir, err := alice.CreateFolder(ctx, "Photos")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Share(ctx, id, "bob", collections.RightReadOnly); err != nil {
		t.Fatal(err)
	}
	bobDir, err := bob.Accept(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	write := func(dir, name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(aliceDir, "cat.txt", "a cat")
	if err := sandbox.WaitFile(ctx, filepath.Join(bobDir, "cat.txt"), []byte("a cat")); err != nil {
		t.Fatal(err)
	}

	write(bobDir, "cat.txt", "a dog")
	if err := bob.WaitFolder(ctx, id, "one local change", func(st foldersync.FolderStatus) bool {
		return st.Role == "ro" && st.LocalChanges == 1
	}); err != nil {
		t.Fatal(err)
	}
	if err := bob.Node().RevertFolder(ctx, id); err != nil {
		t.Fatalf("RevertFolder: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(bobDir, "cat.txt")); string(b) != "a cat" {
		t.Errorf("after RevertFolder bob's cat.txt = %q; want %q", b, "a cat")
	}
	if b, _ := os.ReadFile(filepath.Join(aliceDir, "cat.txt")); string(b) != "a cat" {
		t.Errorf("alice's cat.txt = %q; want %q (bob may only read)", b, "a cat")
	}
	if err := alice.Node().RevertFolder(ctx, id); !errors.Is(err, foldersync.ErrNotReadOnly) {
		t.Errorf("RevertFolder on the owner's device = %v; want ErrNotReadOnly", err)
	}

	if err := alice.Share(ctx, id, "bob", collections.RightReadWrite); err != nil {
		t.Fatal(err)
	}
	if err := bob.WaitFolder(ctx, id, "read-write", func(st foldersync.FolderStatus) bool { return st.Role == "rw" }); err != nil {
		t.Fatal(err)
	}
	write(bobDir, "dog.txt", "a dog")
	if err := sandbox.WaitFile(ctx, filepath.Join(aliceDir, "dog.txt"), []byte("a dog")); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*sandbox.Agent{alice, bob} {
		if err := a.WaitInSync(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}
