package foldersync

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer/wire"
	"github.com/baton-sync/baton/syncfs"
)

// cutServer stops the folder's server and cuts it from every node, and
// connects the nodes with each other.
func (n *testNet) cutServer(nodes ...*testNode) {
	n.t.Helper()
	n.stop(n.server)
	for _, d := range nodes {
		n.net.Disconnect(d.host.ID(), n.server.host.ID())
	}
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			if err := a.host.Connect(b.host.ID()); err != nil {
				n.t.Fatalf("connecting %s and %s: %v", a.name, b.name, err)
			}
		}
	}
}

// settle returns once d's folder has done what it was asked before: its
// goroutine takes a request only between two rounds of work, so the
// second of two requests runs after the round the first one woke.
func (n *testNet) settle(d *testNode) {
	n.t.Helper()
	f := n.running(d)
	for range 2 {
		done := make(chan struct{})
		select {
		case f.ctl <- func(context.Context) { close(done) }:
		case <-time.After(30 * time.Second):
			n.t.Fatalf("%s's folder takes no request", d.name)
		}
		<-done
	}
}

// published returns d's published entry for name.
func (n *testNet) published(d *testNode, name string) (syncfs.FileInfo, bool) {
	p := n.running(d).pub.Load()
	if p == nil {
		return syncfs.FileInfo{}, false
	}
	e, ok := p.get(name)
	return e.fi, ok
}

// With the server gone, member devices that reach each other keep the
// folder in sync: a read-write member's change reaches the owner's device
// and a read-only member's device; the read-only member's change reaches
// neither, even when it announces it as a writer would.
func TestDevicesSyncWithoutServer(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{
		"alice": collections.RightOwner, "bob": collections.RightReadWrite, "carol": collections.RightReadOnly,
	}, nil)
	alice, bob, carol, server := n.nodes["alice"], n.nodes["bob"], n.nodes["carol"], n.server
	alice.write(t, "start.txt", "S")
	n.waitEqual(alice, server, bob, carol)

	n.cutServer(alice, bob, carol)
	bob.write(t, "b.txt", "from bob")
	waitFor(t, 30*time.Second, "bob's change on alice and carol", func() bool {
		return alice.read(t, "b.txt") == "from bob" && carol.read(t, "b.txt") == "from bob"
	})
	alice.write(t, "start.txt", "S2")
	waitFor(t, 30*time.Second, "alice's edit on bob and carol", func() bool {
		return bob.read(t, "start.txt") == "S2" && carol.read(t, "start.txt") == "S2"
	})

	carol.write(t, "c.txt", "from carol")
	waitFor(t, 30*time.Second, "carol's change in her index", func() bool {
		_, ok := n.published(carol, "c.txt")
		return ok
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := n.running(carol).pub.Load()
	for _, d := range []*testNode{alice, bob} {
		// Carol announces her change as a writer would: the member
		// device takes the notification and looks, and takes nothing.
		if err := carol.eng.sendNotify(ctx, d.host.ID(), notifyMsg{Folder: n.folder, Session: p.session, Sequence: p.seq}); err != nil {
			t.Fatalf("carol notifying %s: %v", d.name, err)
		}
		n.settle(d)
		if got := d.read(t, "c.txt"); got != "" {
			t.Errorf("%s took the read-only member's change: c.txt = %q", d.name, got)
		}
	}
}

// A change that reaches a device from another device and later from the
// server is the same version there: nothing to do, no conflict copy.
// Concurrent edits made while the devices and the server were apart
// become one conflict copy, the same everywhere, once they meet; the
// server catches up when it returns.
func TestDirectChangeIsTheServersVersion(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	alice.write(t, "doc.txt", "first")
	n.waitEqual(alice, server, bob)

	n.cutServer(alice, bob)
	alice.write(t, "new.txt", "made while the server was down")
	waitFor(t, 30*time.Second, "new.txt on bob", func() bool { return bob.read(t, "new.txt") == "made while the server was down" })
	// Apart from each other too, both edit doc.txt.
	n.net.Disconnect(alice.host.ID(), bob.host.ID())
	alice.write(t, "doc.txt", "alice's edit")
	bob.write(t, "doc.txt", "bob's edit!")
	for _, d := range []*testNode{alice, bob} {
		waitFor(t, 30*time.Second, d.name+"'s edit in its index", func() bool {
			fi, ok := n.published(d, "doc.txt")
			return ok && fi.Size > int64(len("first"))
		})
	}
	if err := alice.host.Connect(bob.host.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "one conflict copy on each device", func() bool {
		return len(conflictCopies(t, alice, "doc.txt")) == 1 && treeEqual(t, alice, bob)
	})

	// The server returns: it takes both devices' indexes, and the devices
	// take its index, in which every entry is a version they hold.
	n.start(server)
	n.connect(alice)
	n.connect(bob)
	n.waitEqual(alice, server, bob)
	for _, d := range []*testNode{alice, bob, server} {
		if cc := conflictCopies(t, d, "doc.txt"); len(cc) != 1 {
			t.Errorf("%s: conflict copies of doc.txt = %v; want one", d.name, cc)
		}
		if cc := conflictCopies(t, d, "new.txt"); len(cc) != 0 {
			t.Errorf("%s: new.txt came as a conflict: %v", d.name, cc)
		}
	}
	a, _ := n.published(alice, "new.txt")
	for _, d := range []*testNode{bob, server} {
		if fi, _ := n.published(d, "new.txt"); !fi.Version.Equal(a.Version) {
			t.Errorf("%s: new.txt at version %v; alice made %v", d.name, fi.Version, a.Version)
		}
	}
}

// treeEqual reports whether the nodes' trees are the same.
func treeEqual(t *testing.T, a, b *testNode) bool {
	return treeDiff(readTree(t, a.root), readTree(t, b.root)) == ""
}

// A member device takes no index from a host that may not write the
// folder: not from a device of a user outside it (whose index is validly
// signed by that device), not from a device whose certificate was revoked;
// neither may notify it. (An index signed by another host than the one
// asked is refused whoever asks: TestIndexFromWrongSigner.)
func TestDirectRefusesNonWriters(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	alice.write(t, "doc.txt", "alice's")
	n.waitEqual(alice, server, bob)

	// erin: bob's second device, valid while the folder syncs, then revoked.
	erin := n.newNode("erin")
	n.access.SetUser(erin.host.ID(), "bob")
	n.connect(erin)
	n.start(erin)
	n.waitEqual(alice, server, bob, erin)
	// dave: a valid device of a user who is not a member.
	dave := n.newNode("dave")
	n.access.SetUser(dave.host.ID(), "dave")
	dave.write(t, "dave.txt", "from outside")
	n.start(dave)
	n.cutServer(alice, bob, erin, dave)
	n.access.RemoveUser(erin.host.ID())
	erin.write(t, "revoked.txt", "from a revoked device")
	waitFor(t, 30*time.Second, "erin's change in its index", func() bool {
		_, ok := n.published(erin, "revoked.txt")
		return ok
	})
	waitFor(t, 30*time.Second, "dave's file in his index", func() bool {
		_, ok := n.published(dave, "dave.txt")
		return ok
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, d := range []*testNode{alice, bob} {
		for _, from := range []*testNode{erin, dave} {
			if err := from.eng.sendNotify(ctx, d.host.ID(), notifyMsg{Folder: n.folder, Session: 1, Sequence: 1}); err == nil {
				t.Errorf("%s took a notification from %s", d.name, from.name)
			}
		}
		f := n.running(d)
		for _, from := range []*testNode{erin, dave} {
			f.notify(from.host.ID())
		}
		n.settle(d)
		for _, name := range []string{"revoked.txt", "dave.txt"} {
			if got := d.read(t, name); got != "" {
				t.Errorf("%s took %s from a host that may not write the folder: %q", d.name, name, got)
			}
		}
		if st := n.status(d); len(st.Failed) != 0 {
			t.Errorf("%s: failures after refusing: %+v", d.name, st.Failed)
		}
	}
	// Bob's change still reaches alice directly.
	bob.write(t, "b.txt", "B")
	waitFor(t, 30*time.Second, "b.txt on alice", func() bool { return alice.read(t, "b.txt") == "B" })
}

// A member device takes no forged index from a fellow device: another
// host's index that the fellow passes on as its own (validly signed, by
// that host), or the fellow's whose signed bytes were altered. The very same index signed by the fellow's
// key is taken (so the refusals are the signature's doing).
func TestDirectRefusesForgedIndex(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	alice.write(t, "doc.txt", "alice's")
	n.waitEqual(alice, server, bob)
	n.cutServer(alice, bob)

	// indexNaming is an index of the folder by key's host naming one
	// file, name, empty (no blocks to fetch), signed by key.
	indexNaming := func(key *identity.PrivateKey, name string, seq uint64) []byte {
		author := key.ID().String()
		fi := syncfs.FileInfo{Name: name, Type: syncfs.TypeFile, FileHash: syncfs.FileHashOf(nil)}
		fi.Version = fi.Version.Update(author)
		b, err := syncfs.SignIndex(key, syncfs.Index{Folder: n.folder, Device: author, Sequence: seq, Files: []syncfs.FileInfo{fi}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	serve := func(page []byte, session, seq uint64) {
		bob.host.SetHandler(ProtoIndex, func(s Stream, _ lpeer.ID) {
			defer s.Close()
			var req indexRequest
			if wire.ReadMsg(bufio.NewReader(s), maxRequest, &req) != nil {
				_ = s.Reset()
				return
			}
			_ = wire.WriteMsg(s, indexHeader{Status: statusFull, Session: session, Sequence: seq, Pages: 1})
			_ = wire.WriteFrame(s, page)
		})
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(alice.root, name))
		return err == nil
	}
	const seq = 1 << 20
	tampered := indexNaming(bob.key, "tampered.txt", seq)
	tampered[len(tampered)/2] ^= 0x01
	cases := []struct {
		name string
		page []byte
	}{
		{"signed by another host", indexNaming(identitytest.Key("foldersync-mallory"), "other-key.txt", seq)},
		{"altered after signing", tampered},
	}
	f := n.running(alice)
	for i, c := range cases {
		serve(c.page, uint64(100+i), seq)
		f.notify(bob.host.ID())
		n.settle(alice)
		for _, name := range []string{"other-key.txt", "tampered.txt"} {
			if exists(name) {
				t.Errorf("alice took %s from an index %s", name, c.name)
			}
		}
	}
	serve(indexNaming(bob.key, "signed.txt", seq), 200, seq)
	f.notify(bob.host.ID())
	waitFor(t, 30*time.Second, "alice to take bob's index signed by bob", func() bool { return exists("signed.txt") })
}
