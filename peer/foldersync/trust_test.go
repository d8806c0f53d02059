package foldersync

import (
	"bufio"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer/foldersync/foldersynctest"
	"github.com/baton-sync/baton/peer/foldersync/memnet"
	"github.com/baton-sync/baton/peer/wire"
	"github.com/baton-sync/baton/syncfs"
)

// A host that is not a member of the folder gets nothing: no index, no
// block, whatever it asks; a member device of another folder neither.
func TestStrangersGetNothing(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadOnly}, nil)
	alice, server := n.nodes["alice"], n.server
	secret := string(randomBytes(1000))
	alice.write(t, "secret.txt", secret)
	n.waitEqual(alice, server, n.nodes["bob"])
	e, _ := n.running(server).pub.Load().get("secret.txt")
	entry := e.fi
	blocks := entry.Blocks

	mallory := n.newNode("mallory") // valid nowhere
	carol := n.newNode("carol")     // a valid device, of a user not in the folder
	n.access.SetUser(carol.host.ID(), "carol")
	for _, d := range []*testNode{mallory, carol} {
		n.connect(d)
		if err := d.host.Connect(alice.host.ID()); err != nil {
			t.Fatal(err)
		}
		e, err := New(Config{Transport: d.host, Key: d.key, DataDir: d.dataDir, Access: func() Access { return n.access }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for _, target := range []*testNode{server, alice} {
			if _, err := e.requestIndex(ctx, target.host.ID(), n.folder, nil); err == nil {
				t.Errorf("%s got %s's index", d.name, target.name)
			}
			var got int
			ref := blockRef{Hash: blocks[0].Hash, Size: blocks[0].Size}
			missing, _ := e.requestBlocks(ctx, target.host.ID(), n.folder, []blockRef{ref}, func(_ blockRef, b fetchedBlock) { b.vb.Release(); got++ })
			if got != 0 || len(missing) != 1 {
				t.Errorf("%s got %d blocks of %s's copy", d.name, got, target.name)
			}
		}
		cancel()
	}

	// A read-only member may read: it gets the server's index.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bob := n.nodes["bob"].eng
	ri, err := bob.requestIndex(ctx, server.host.ID(), n.folder, nil)
	if err != nil {
		t.Fatalf("bob (read-only) asking the server for its index: %v", err)
	}
	got, err := bob.loadRemote(ri, []string{"secret.txt"})
	if err != nil || got["secret.txt"].FileHash != entry.FileHash {
		t.Errorf("bob (read-only) loading the server's entry of secret.txt: %v, %v; want the hash of the server's", got["secret.txt"], err)
	}
}

// An index is taken only from the host that signed it, for the folder
// asked, with the sequence its header says.
func TestIndexFromWrongSigner(t *testing.T) {
	n := &testNet{t: t, net: memnet.New(), folder: "f1", nodes: map[string]*testNode{}}
	fake := n.newNode("fake-server")
	asker := n.newNode("asker")
	other := identitytest.Key("someone-else")
	sign := func(key *identity.PrivateKey, device, folder string, seq uint64) []byte {
		b, err := syncfs.SignIndex(key, syncfs.Index{Folder: folder, Device: device, Sequence: seq})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	self := fake.host.ID().String()
	cases := map[string][]byte{
		"signed by another host": sign(other, other.ID().String(), "f1", 7),
		"another folder":         sign(fake.key, self, "f2", 7),
		"another sequence":       sign(fake.key, self, "f1", 6),
		"not an index":           []byte("garbage"),
	}
	for name, page := range cases {
		t.Run(name, func(t *testing.T) {
			fake.host.SetHandler(ProtoIndex, func(s Stream, _ lpeer.ID) {
				defer s.Close()
				var req indexRequest
				if wire.ReadMsg(bufio.NewReader(s), maxRequest, &req) != nil {
					s.Reset()
					return
				}
				_ = wire.WriteMsg(s, indexHeader{Status: statusFull, Session: 1, Sequence: 7, Pages: 1})
				_ = wire.WriteFrame(s, page)
			})
			e, err := New(Config{Transport: asker.host, Key: asker.key, DataDir: asker.dataDir, Access: func() Access { return &foldersynctest.Access{} }})
			if err != nil {
				t.Fatal(err)
			}
			e.peers = openPeerStore(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := e.requestIndex(ctx, fake.host.ID(), "f1", nil); err == nil {
				t.Errorf("index %s accepted", name)
			} else if name == "signed by another host" && !errors.Is(err, identity.ErrWrongSigner) {
				t.Errorf("index %s: %v; want ErrWrongSigner", name, err)
			}
		})
	}
	// The same server, signing properly, is believed.
	fake.host.SetHandler(ProtoIndex, func(s Stream, _ lpeer.ID) {
		defer s.Close()
		var req indexRequest
		_ = wire.ReadMsg(bufio.NewReader(s), maxRequest, &req)
		_ = wire.WriteMsg(s, indexHeader{Status: statusFull, Session: 1, Sequence: 7, Pages: 1})
		_ = wire.WriteFrame(s, sign(fake.key, self, "f1", 7))
	})
	e, _ := New(Config{Transport: asker.host, Key: asker.key, DataDir: asker.dataDir, Access: func() Access { return &foldersynctest.Access{} }})
	e.peers = openPeerStore(t)
	if _, err := e.requestIndex(context.Background(), fake.host.ID(), "f1", nil); err != nil {
		t.Errorf("a properly signed index: %v", err)
	}
}

// A transfer cut off mid-file is taken up again once blocks can be had.
func TestInterruptedTransferResumes(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	// The engine sets its handlers when Run starts, before its folders.
	waitFor(t, 30*time.Second, "alice's engine", func() bool { return n.running(alice) != nil })
	broken := breakBlocksAfter(alice, 2)
	alice.write(t, "big.bin", string(randomBytes(24<<20)))
	waitFor(t, 30*time.Second, "the transfer to fail", func() bool {
		return broken.Load() && strings.Contains(n.status(server).LastError, "not applied")
	})
	if got := server.read(t, "big.bin"); got != "" {
		t.Fatalf("big.bin is on the server (%d bytes) though its blocks could not all be had", len(got))
	}
	alice.host.SetHandler(ProtoBlock, alice.eng.handleBlock)
	n.waitEqual(alice, server, bob)
	t.Logf("the server fetched %.1f MiB for a 24 MiB file cut off once", float64(n.status(server).Fetched)/(1<<20))
}
