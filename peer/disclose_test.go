package peer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/peer/peertest"
)

// TestDeviceSeesOnlyItsView: a logged-in device asks for records of
// folders and users it is not entitled to see, every way it can: its own
// agent's replica, a full anti-entropy pull, a view request "proving" it
// holds a folder it is not in, and a raw subscription to the updates
// topic. It gets none of them: only the servers' records, its user, its
// folders with their owners, its devices and their members' devices.
func TestDeviceSeesOnlyItsView(t *testing.T) {
	c := loginCluster(t)
	putUser(t, c.Cluster, 0, "carol", 1)
	c.WaitConverged(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	annAgent := peertest.NewAgent(t, "ann-laptop")
	res, err := login(annAgent, c.PublicP2P(1), "ann", "ann's secret")
	if err != nil {
		t.Fatal(err)
	}
	ann := annAgent.Start(res.Genesis, res.Cert)
	c.WaitFor("ann's laptop accepted", 10*time.Second, func() bool {
		st, _, _ := ann.DeviceStatus(ctx)
		return st.Accepted && validEverywhere(t, c, "ann", annAgent.ID(), true)
	})
	bob := startDevice(t, c, "bob-desk", 2, "bob", "bob's secret")

	secret, err := bob.CreateFolder(ctx, "Secret")
	if err != nil {
		t.Fatal(err)
	}
	shared, err := bob.CreateFolder(ctx, "Shared")
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.ShareFolder(ctx, shared.ID, "ann", collections.RightReadWrite); err != nil {
		t.Fatal(err)
	}
	report, err := collections.Put(collections.ReportRecord{ID: "r1", Author: c.Members[0].Key.ID().String(), Kind: "usage", Content: []byte("ann bob carol")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(0, report); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(10 * time.Second)
	c.WaitFor("ann's laptop to see Shared", 10*time.Second, func() bool { _, ok := folderAt(t, ann, shared.ID); return ok })

	// forbidden lists what ann's device may not hold, in any of states.
	forbidden := func(what string, records map[string]bool) {
		t.Helper()
		for _, key := range []string{collections.FolderPrefix + secret.ID, collections.UserPrefix + "carol", collections.ReportPrefix + "r1"} {
			if records[key] {
				t.Errorf("%s: ann's device got %s", what, key)
			}
		}
		for key := range records {
			// Her own, and those of bob, with whom she shares a folder.
			if strings.HasPrefix(key, collections.DevicePrefix) && key != collections.DevicePrefix+annAgent.ID().String() && key != collections.DevicePrefix+bob.ID().String() {
				t.Errorf("%s: ann's device got another device's record %s", what, key)
			}
		}
	}

	t.Run("agent replica", func(t *testing.T) {
		st, err := ann.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		for _, k := range collections.Kinds {
			for _, r := range st.Records(k) {
				keys[r.Key] = true
			}
		}
		forbidden("the agent's replica", keys)
		if !keys[collections.FolderPrefix+shared.ID] || !keys[collections.UserPrefix+"bob"] || !keys[collections.UserPrefix+"ann"] {
			t.Errorf("the agent's replica lacks Shared, its owner bob or ann: %v", keys)
		}
		if !keys[collections.DevicePrefix+bob.ID().String()] {
			t.Errorf("the agent's replica lacks the device of bob, with whom ann shares a folder: %v", keys)
		}
	})

	// A raw host with the device's key (its agent stopped), connected to
	// s1's public address.
	annAgent.Stop()
	h, err := libp2p.New(libp2p.Identity(annAgent.Key.Libp2p()), libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	s1 := c.Members[0].Key.ID()
	info, err := lpeer.AddrInfoFromString(c.PublicP2P(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, *info); err != nil {
		t.Fatal(err)
	}
	empty, err := collections.Summary{}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	received := func(proto protocol.ID, req []byte) (map[string]bool, error) {
		s, err := h.NewStream(ctx, s1, proto)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		if err := msgio.NewVarintWriter(s).WriteMsg(req); err != nil {
			return nil, err
		}
		if err := s.CloseWrite(); err != nil {
			return nil, err
		}
		b, err := msgio.NewVarintReaderSize(s, 32<<20).ReadMsg()
		if err != nil {
			return nil, err
		}
		var resp struct {
			Updates [][]byte `cbor:"1,keyasint"`
			More    bool     `cbor:"2,keyasint"`
		}
		if err := canon.Unmarshal(b, &resp, 32<<20); err != nil {
			return nil, err
		}
		keys := map[string]bool{}
		for _, u := range resp.Updates {
			c, err := collections.UnmarshalCertified(u)
			if err != nil {
				return nil, err
			}
			keys[c.Update().Key] = true
		}
		return keys, nil
	}

	t.Run("full pull", func(t *testing.T) {
		keys, err := received("/baton/sync/1.0.0", empty)
		if err == nil {
			forbidden("a full pull", keys)
			t.Errorf("a device's full pull was answered with %d records; want the stream reset", len(keys))
		}
	})

	t.Run("view with a proof of a folder it is not in", func(t *testing.T) {
		// The certified record of Secret, as a server holds it.
		st := c.State(0)
		r, ok := st.Lookup(collections.Catalog, collections.FolderPrefix+secret.ID)
		if !ok {
			t.Fatal("s1 lacks Secret")
		}
		proof, ok := st.Holds(collections.Update{Collection: collections.Catalog, Key: r.Key, Author: r.Author, Seq: r.Seq})
		if !ok || proof.IsZero() {
			t.Fatal("s1 does not retain Secret's certified record")
		}
		req, err := canon.Marshal(map[int]any{1: empty, 2: [][]byte{proof.Marshal()}})
		if err != nil {
			t.Fatal(err)
		}
		keys, err := received("/baton/view/1.0.0", req)
		if err != nil {
			t.Fatalf("view request: %v", err)
		}
		forbidden("a view request", keys)
		if !keys[collections.FolderPrefix+shared.ID] || !keys[collections.UserPrefix+"ann"] {
			t.Errorf("the view lacks Shared or ann: %v", keys)
		}
	})

	t.Run("gossip", func(t *testing.T) {
		ps, err := pubsub.NewGossipSub(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		gh := c.Genesis.Hash()
		join := func(what string) *pubsub.Subscription {
			topic, err := ps.Join(fmt.Sprintf("/baton/%x/%s", gh[:8], what))
			if err != nil {
				t.Fatal(err)
			}
			sub, err := topic.Subscribe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(sub.Cancel)
			return sub
		}
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		updates, beats := join("updates"), join("heartbeat")
		got := make(chan *pubsub.Message, 16)
		go func() {
			for {
				m, err := updates.Next(ctx)
				if err != nil {
					return
				}
				got <- m
			}
		}()
		// The master is in the device's heartbeat mesh once a heartbeat
		// arrives; then a change that ann may not see is committed.
		if _, err := beats.Next(ctx); err != nil {
			t.Fatal(err)
		}
		putUser(t, c.Cluster, 0, "dave", 1)
		// Heartbeats published after the commit arrive: gossip had time.
		for range 3 {
			if _, err := beats.Next(ctx); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case m := <-got:
			t.Errorf("a device subscribed to the updates topic received an update from %s", m.GetFrom())
		default:
		}
	})
}
