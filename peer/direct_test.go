package peer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// loopbackAddr is n's listen address on 127.0.0.1 with its /p2p/ID.
func loopbackAddr(t testing.TB, n *peer.Node) string {
	t.Helper()
	st, err := n.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range st.Listen {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/") {
			return a + "/p2p/" + n.ID().String()
		}
	}
	t.Fatalf("%s listens on no loopback address: %v", n.ID(), st.Listen)
	return ""
}

// connectedTo reports whether n has a connection to id.
func connectedTo(n *peer.Node, id lpeer.ID) bool {
	st, err := n.Status(context.Background())
	if err != nil {
		return false
	}
	for _, p := range st.Peers {
		if p.ID == id.String() {
			return true
		}
	}
	return false
}

// A device keeps connected to the devices of the users it shares a folder
// with, at the addresses it was given (Config.Peers), and to no other:
// once carol stops sharing her folder with ann, ann's device and carol's
// part, and carol's key is refused by ann's device.
func TestDevicesConnectToFellowsOnly(t *testing.T) {
	c := loginCluster(t)
	putUser(t, c.Cluster, 0, "carol", 1)
	c.WaitConverged(10 * time.Second)
	setPassword(t, c, 1, "carol", "carol's secret")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	bob := startDevice(t, c, "bob-desk", 2, "bob", "bob's secret")
	carolAgent := peertest.NewAgent(t, "carol-pc")
	res, err := login(carolAgent, c.PublicP2P(1), "carol", "carol's secret")
	if err != nil {
		t.Fatal(err)
	}
	carol := carolAgent.Start(res.Genesis, res.Cert)
	// A device's first operation needs its view of the domain, which names
	// its user: wait for it.
	c.WaitFor("carol's device to know carol", 20*time.Second, func() bool {
		st, err := carol.State(ctx)
		if err != nil {
			return false
		}
		_, ok := st.User("carol")
		return ok
	})
	bobs, err := bob.CreateFolder(ctx, "Bobs")
	if err != nil {
		t.Fatal(err)
	}
	carols, err := carol.CreateFolder(ctx, "Carols")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		n  *peer.Node
		id string
	}{{bob, bobs.ID}, {carol, carols.ID}} {
		if err := s.n.ShareFolder(ctx, s.id, "ann", collections.RightReadWrite); err != nil {
			t.Fatal(err)
		}
	}

	annAgent := peertest.NewAgent(t, "ann-laptop")
	annAgent.Config = func(cfg *peer.Config) {
		cfg.NoLAN = true
		cfg.Peers = []string{loopbackAddr(t, bob), loopbackAddr(t, carol)}
	}
	res, err = login(annAgent, c.PublicP2P(1), "ann", "ann's secret")
	if err != nil {
		t.Fatal(err)
	}
	ann := annAgent.Start(res.Genesis, res.Cert)
	c.WaitFor("ann's device connected to bob's and carol's", 30*time.Second, func() bool {
		return connectedTo(ann, bob.ID()) && connectedTo(ann, carol.ID())
	})

	if err := carol.UnshareFolder(ctx, carols.ID, "ann"); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("ann's device and carol's apart", 30*time.Second, func() bool {
		return !connectedTo(ann, carol.ID()) && !connectedTo(carol, ann.ID())
	})
	// bob still shares a folder with ann: their devices stay connected (or
	// connect again, should a connection close under load, as dialDevices
	// keeps them connected).
	c.WaitFor("ann's device connected to bob's still", 15*time.Second, func() bool { return connectedTo(ann, bob.ID()) })
	// carol's key, dialing ann's device: refused.
	h, err := libp2p.New(libp2p.Identity(carolAgent.Key.Libp2p()), libp2p.NoListenAddrs, libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	info, err := lpeer.AddrInfoFromString(loopbackAddr(t, ann))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, *info); err == nil {
		// The gater closes the connection after the handshake: wait for it.
		c.WaitFor("ann's device to close carol's connection", 10*time.Second, func() bool {
			return len(h.Network().ConnsToPeer(ann.ID())) == 0
		})
		if connectedTo(ann, carol.ID()) {
			t.Errorf("ann's device accepted a connection from carol's key")
		}
	}
}
