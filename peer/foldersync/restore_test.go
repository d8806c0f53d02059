package foldersync

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/syncfs"
)

// history is what a server's Archive hook saw: the index after each
// change, and the blocks of every file version, read from the server's
// copy as the hook was called.
type history struct {
	mu     sync.Mutex
	trees  []syncfs.Snapshot
	blocks map[syncfs.Hash][]byte
	// calls holds each call's names, by who asked for them.
	calls []archiveCall
	// session and seq are those of the last index told.
	session, seq uint64
}

type archiveCall struct {
	names []string
	by    Requester
}

func (h *history) archive(t testing.TB) func(string, string, Published, Requester) {
	return func(_, root string, ix Published, by Requester) {
		h.mu.Lock()
		defer h.mu.Unlock()
		whole := ix.Session() != h.session
		since := h.seq
		if whole {
			since = 0
		}
		if !whole && ix.Seq() <= h.seq {
			t.Errorf("index %d told after %d", ix.Seq(), h.seq)
		}
		h.session, h.seq = ix.Session(), ix.Seq()
		var changes []syncfs.FileInfo
		for fi, err := range ix.Since(since) {
			if err != nil {
				t.Errorf("reading the index told: %v", err)
				return
			}
			changes = append(changes, fi)
		}
		call := archiveCall{by: by}
		for _, fi := range changes {
			call.names = append(call.names, fi.Name)
		}
		h.calls = append(h.calls, call)
		tree := syncfs.Snapshot{}
		if len(h.trees) > 0 && !whole {
			for n, fi := range h.trees[len(h.trees)-1] {
				tree[n] = fi
			}
		}
		for _, fi := range changes {
			tree[fi.Name] = fi
			if fi.Deleted || fi.Type != syncfs.TypeFile {
				continue
			}
			data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(fi.Name)))
			if err != nil {
				continue // changed again since: a later call has it
			}
			for _, b := range fi.Blocks {
				if end := b.Offset + int64(b.Size); end <= int64(len(data)) {
					h.blocks[b.Hash] = data[b.Offset:end]
				}
			}
		}
		h.trees = append(h.trees, tree)
	}
}

// last returns the last tree for which cond holds.
func (h *history) last(cond func(syncfs.Snapshot) bool) syncfs.Snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.trees) - 1; i >= 0; i-- {
		if cond(h.trees[i]) {
			return h.trees[i]
		}
	}
	return nil
}

func (h *history) get(hash syncfs.Hash) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.blocks[hash]
	if !ok {
		return nil, errors.New("no such block")
	}
	return b, nil
}

// newHistoryNet is newTestNet with the server's changes kept in a history.
func newHistoryNet(t *testing.T, rights map[string]collections.Right) (*testNet, *history) {
	h := &history{blocks: map[syncfs.Hash][]byte{}}
	server := identitytest.Key("foldersync-server").ID()
	n := newTestNet(t, rights, func(c *Config) {
		if c.Key.ID() == server {
			c.Archive = h.archive(t)
		}
	})
	return n, h
}

func live(tree syncfs.Snapshot, name string) bool {
	fi, ok := tree[name]
	return ok && !fi.Deleted
}

// A file deleted on one member's device is restored on the server from
// its history: it comes back everywhere, as a new change.
func TestRestoreDeletedFile(t *testing.T) {
	n, h := newHistoryNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite})
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	alice.write(t, "a.txt", "version one")
	alice.write(t, "dir/b.txt", "B")
	n.waitEqual(alice, server, bob)
	if err := os.Remove(filepath.Join(alice.root, "a.txt")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a.txt gone on bob", func() bool { return bob.read(t, "a.txt") == "" })
	n.waitEqual(alice, server, bob)

	then := h.last(func(s syncfs.Snapshot) bool { return live(s, "a.txt") })
	if then == nil {
		t.Fatal("the history never held a.txt")
	}
	now := h.last(func(syncfs.Snapshot) bool { return true })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := server.eng.Restore(ctx, n.folder, RestoreEntries(then, now, "a.txt"), h.get)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if res.Changed != 1 {
		t.Errorf("Restore = %+v; want 1 change", res)
	}
	for _, d := range []*testNode{server, alice, bob} {
		waitFor(t, 30*time.Second, "a.txt back on "+d.name, func() bool { return d.read(t, "a.txt") == "version one" })
	}
	n.waitEqual(alice, server, bob)
	if got := bob.read(t, "dir/b.txt"); got != "B" {
		t.Errorf("dir/b.txt on bob = %q after the restore; want B", got)
	}
}

// A whole folder restored to a time before a mass deletion gets every
// file back, and loses the files made after it, even one the server's
// index had not seen yet.
func TestRestoreWholeFolder(t *testing.T) {
	n, h := newHistoryNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite})
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	for _, name := range []string{"a.txt", "d/b.txt", "d/e/c.txt"} {
		alice.write(t, name, "content of "+name)
	}
	n.waitEqual(alice, server, bob)
	want := readTree(t, server.root)
	then := h.last(func(s syncfs.Snapshot) bool { return live(s, "d/e/c.txt") && live(s, "a.txt") })
	for _, name := range []string{"a.txt", "d"} {
		if err := os.RemoveAll(filepath.Join(bob.root, name)); err != nil {
			t.Fatal(err)
		}
	}
	bob.write(t, "new.txt", "made after")
	waitFor(t, 30*time.Second, "the deletions on alice", func() bool { return alice.read(t, "a.txt") == "" && alice.read(t, "new.txt") != "" })
	n.waitEqual(alice, server, bob)

	// A file made on the server itself a moment ago, not yet in any
	// history: the restore deletes it too.
	server.write(t, "d/just-now.txt", "not archived")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ann := Requester{User: "alice", Device: "alice-laptop"}
	h.mu.Lock()
	before := len(h.calls)
	h.mu.Unlock()
	if _, err := server.eng.RestoreTree(ctx, n.folder, then, "", h.get, ann); err != nil {
		t.Fatalf("RestoreTree: %v", err)
	}
	// The restore's change is archived as asked by ann; the file the
	// rescan found is archived before it, as asked by nobody.
	h.mu.Lock()
	byAnn := map[string]bool{}
	foundAt := -1
	for i, c := range h.calls[before:] {
		for _, name := range c.names {
			if c.by == ann {
				byAnn[name] = true
			} else if c.by != (Requester{}) {
				t.Errorf("archived %s as asked by %+v", name, c.by)
			}
			if name == "d/just-now.txt" && foundAt < 0 {
				foundAt = i
				if c.by != (Requester{}) {
					t.Errorf("d/just-now.txt, found by the restore's rescan, archived as asked by %+v; want nobody", c.by)
				}
			}
		}
	}
	h.mu.Unlock()
	for _, name := range []string{"a.txt", "d/b.txt", "d/e/c.txt", "new.txt", "d/just-now.txt"} {
		if !byAnn[name] {
			t.Errorf("%s: not archived as restored by ann (calls since the restore: %+v)", name, byAnn)
		}
	}
	if foundAt < 0 {
		t.Error("d/just-now.txt was never archived")
	}
	waitFor(t, 30*time.Second, "the restore on bob", func() bool { return bob.read(t, "d/e/c.txt") != "" && bob.read(t, "new.txt") == "" })
	n.waitEqual(alice, server, bob)
	for _, d := range []*testNode{server, alice, bob} {
		if diff := treeDiff(want, readTree(t, d.root)); diff != "" {
			t.Errorf("%s after the restore: %s", d.name, diff)
		}
	}
}

// A block of the version to restore that does not hash to its name fails
// the restore before anything is written.
func TestRestoreDamagedBlock(t *testing.T) {
	n, h := newHistoryNet(t, map[string]collections.Right{"alice": collections.RightOwner})
	alice, server := n.nodes["alice"], n.server
	alice.write(t, "a.txt", "good")
	alice.write(t, "b.txt", "also good")
	n.waitEqual(alice, server)
	then := h.last(func(s syncfs.Snapshot) bool { return live(s, "a.txt") && live(s, "b.txt") })
	for _, name := range []string{"a.txt", "b.txt"} {
		if err := os.Remove(filepath.Join(alice.root, name)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "the deletion on the server", func() bool { return server.read(t, "a.txt") == "" && server.read(t, "b.txt") == "" })
	bad := then["b.txt"].Blocks[0].Hash
	damaged := func(hash syncfs.Hash) ([]byte, error) {
		b, err := h.get(hash)
		if hash == bad {
			b = append([]byte{}, b...)
			b[0] ^= 1
		}
		return b, err
	}
	now := h.last(func(syncfs.Snapshot) bool { return true })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := server.eng.Restore(ctx, n.folder, RestoreEntries(then, now, ""), damaged)
	if !errors.Is(err, ErrRestoreBlock) {
		t.Fatalf("Restore with a damaged block = %v; want ErrRestoreBlock", err)
	}
	if got := server.read(t, "a.txt"); got != "" {
		t.Errorf("a.txt (whose blocks are fine) was written before the check failed: %q", got)
	}
}
