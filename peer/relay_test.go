package peer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// startPair starts ann's and bob's devices (homes s2 and s3), each set up
// by setup before it runs (given ann's running node when bob's starts),
// and a folder of ann's shared with bob (read-write), synced by both, a
// first file of bob's on ann's laptop. It returns the devices, the
// folder (hosted by ann's home server and a replica) and both
// directories.
func startPair(t testing.TB, c *peertest.PublicCluster, setup func(ann *peer.Node, a *peertest.Agent)) (ann, bob *peer.Node, f collections.Folder, annDir, bobDir string) {
	t.Helper()
	start := func(name string, i int, user, pw string) *peer.Node {
		a := peertest.NewAgent(t, name)
		setup(ann, a)
		res, err := login(a, c.PublicP2P(i), user, pw)
		if err != nil {
			t.Fatal(err)
		}
		n := a.Start(res.Genesis, res.Cert)
		c.WaitFor(name+" accepted", 20*time.Second, func() bool {
			st, _, _ := n.DeviceStatus(context.Background())
			return st.Accepted
		})
		return n
	}
	ann = start("ann-laptop", 1, "ann", "ann's secret")
	bob = start("bob-desk", 2, "bob", "bob's secret")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := ann.CreateFolder(ctx, "Shared")
	if err != nil {
		t.Fatal(err)
	}
	if err := ann.ShareFolder(ctx, f.ID, "bob", collections.RightReadWrite); err != nil {
		t.Fatal(err)
	}
	annDir, bobDir = t.TempDir(), t.TempDir()
	if err := ann.SetFolders(ctx, map[string]string{f.ID: annDir}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("bob's desk to see the folder", 20*time.Second, func() bool {
		st, err := bob.State(ctx)
		if err != nil {
			return false
		}
		_, ok := st.Folder(f.ID)
		return ok
	})
	if err := bob.SetFolders(ctx, map[string]string{f.ID: bobDir}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bobDir, "first.txt"), []byte("first"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("first.txt on ann's laptop", 60*time.Second, func() bool {
		got, err := os.ReadFile(filepath.Join(annDir, "first.txt"))
		return err == nil && string(got) == "first"
	})
	st, err := ann.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ = st.Folder(f.ID); len(st.FolderHosts(f)) != 2 {
		t.Fatalf("hosts of the folder: %v; want the home server and a replica", st.FolderHosts(f))
	}
	return ann, bob, f, annDir, bobDir
}

// wall makes n refuse to dial other at any address but a relay's, as if
// the network between them carried nothing.
func wall(n *peer.Node, other lpeer.ID) {
	peer.SetRefuseDial(n, func(p lpeer.ID, addr ma.Multiaddr) bool {
		_, err := addr.ValueForProtocol(ma.P_CIRCUIT)
		return p == other && err != nil
	})
}

// relays is n's Status.Relays.
func relays(n *peer.Node) []string {
	st, err := n.Status(context.Background())
	if err != nil {
		return nil
	}
	return st.Relays
}

// relayedTo reports whether n is connected to id through a relay only.
func relayedTo(n *peer.Node, id lpeer.ID) bool {
	st, err := n.Status(context.Background())
	if err != nil {
		return false
	}
	for _, p := range st.Peers {
		if p.ID == id.String() {
			return p.Relayed
		}
	}
	return false
}

// A server's relay takes reservations of the domain's devices and of no
// one else: a host that is no member, connected as a guest to a server's
// public address, is refused a reservation, and cannot reach a device
// through the relay either.
func TestRelayRefusesStrangers(t *testing.T) {
	c := loginCluster(t)
	ann := startDevice(t, c, "ann-laptop", 1, "ann", "ann's secret")
	s1 := c.Members[0].Key.ID()
	c.WaitFor("ann's laptop to hold a reservation at each server's relay", 20*time.Second, func() bool {
		r := relays(ann)
		return len(r) == 3 && slices.Contains(r, s1.String())
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := libp2p.New(libp2p.Identity(identitytest.Key("stranger").Libp2p()), libp2p.NoListenAddrs, libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	info, err := lpeer.AddrInfoFromString(c.PublicP2P(0))
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Reserve(ctx, h, *info)
	var re client.ReservationError
	switch {
	case err == nil:
		t.Fatal("a stranger got a reservation at s1's relay")
	case !errors.As(err, &re) || re.Status != pbv2.Status_PERMISSION_DENIED:
		t.Fatalf("a stranger's reservation at s1's relay: %v; want it refused (PERMISSION_DENIED)", err)
	}

	circuit, err := ma.NewMultiaddr(c.PublicP2P(0) + "/p2p-circuit")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, lpeer.AddrInfo{ID: ann.ID(), Addrs: []ma.Multiaddr{circuit}}); err == nil {
		t.Error("a stranger reached ann's laptop through s1's relay")
	}
}

// Two devices that cannot dial each other (a wall refuses every direct
// address between them) reach each other through a server's relay: bob's
// change and its index reach ann's laptop over the relayed connection, but
// its blocks do not: with the folder's servers down, ann's laptop knows of
// the file and cannot fetch it; once the home server is back, the blocks
// come from it.
func TestDevicesReachEachOtherThroughRelay(t *testing.T) {
	c := loginCluster(t)
	annID, bobID := identitytest.Key("ann-laptop").ID(), identitytest.Key("bob-desk").ID()
	ann, bob, f, annDir, bobDir := startPair(t, c, func(ann *peer.Node, a *peertest.Agent) {
		other, peers := bobID, []string(nil)
		if ann != nil { // bob's desk, given ann's direct address
			other, peers = annID, []string{loopbackAddr(t, ann)}
		}
		a.Config = func(cfg *peer.Config) { cfg.NoLAN, cfg.Peers = true, peers }
		a.BeforeRun = func(n *peer.Node) { wall(n, other) }
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := ann.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hosts := st.FolderHosts(f)
	home, replica := memberIndex(t, c, hosts[0]), memberIndex(t, c, hosts[1])
	relay := 3 - home - replica // the server hosting nothing of the folder

	c.WaitFor("ann's laptop and bob's desk connected through a relay", 30*time.Second, func() bool {
		return relayedTo(ann, bobID) && relayedTo(bob, annID)
	})
	relayID := c.Members[relay].Key.ID().String()
	c.WaitFor("both devices to hold a reservation at the relay of the server hosting nothing", 30*time.Second, func() bool {
		return slices.Contains(relays(ann), relayID) && slices.Contains(relays(bob), relayID)
	})

	// The folder's servers go: only the third server's relay joins the
	// devices.
	c.Stop(home)
	c.Stop(replica)
	c.WaitFor("ann's laptop and bob's desk connected through the remaining relay", 60*time.Second, func() bool {
		return relayedTo(ann, bobID) && relayedTo(bob, annID)
	})
	if err := os.WriteFile(filepath.Join(bobDir, "b.txt"), []byte("from bob, through the relay"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("ann's laptop to take bob's index and fail to fetch b.txt", 60*time.Second, func() bool {
		fs, err := ann.FolderStatus(ctx, f.ID)
		if err != nil || fs.NeedFiles == 0 {
			return false
		}
		for _, fc := range fs.Failed {
			if fc.Path == "b.txt" {
				return true
			}
		}
		return false
	})
	if _, err := os.Stat(filepath.Join(annDir, "b.txt")); err == nil {
		t.Fatal("b.txt reached ann's laptop while only a relay joined it to bob's desk: its blocks went over the relay")
	}
	if !relayedTo(ann, bobID) {
		t.Fatal("ann's laptop and bob's desk are no longer joined through the relay only")
	}

	c.Start(home)
	second := map[string]string{"first.txt": "first", "b.txt": "from bob, through the relay"}
	c.WaitFor("b.txt on ann's laptop, its blocks from the home server", 90*time.Second, func() bool { return sameFiles(readFiles(t, annDir), second) })
}
