package peer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// TestQueuedRevocationStays: a revocation made while no master is
// reachable is only queued, and says so; meanwhile the home server refuses
// the device's logins, and a fresh record of the device queued after the
// revocation (a renewal that raced it) does not make it valid once both
// are committed.
func TestQueuedRevocationStays(t *testing.T) {
	c := loginCluster(t)
	laptop := peertest.NewAgent(t, "laptop")
	if _, err := login(laptop, c.PublicP2P(1), "ann", "ann's secret"); err != nil {
		t.Fatalf("login: %v", err)
	}
	c.WaitFor("the laptop valid everywhere", 10*time.Second, func() bool {
		return validEverywhere(t, c, "ann", laptop.ID(), true)
	})

	// s2, ann's home server, alone: no majority, no master.
	c.Stop(0)
	c.Stop(2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	r, err := c.Node(1).RevokeDevice(ctx, laptop.ID())
	cancel()
	if err != nil || !r.Queued {
		t.Fatalf("RevokeDevice with no master = %+v, %v; want queued", r, err)
	}
	ds := devices(t, c.Node(1), "ann")
	if len(ds) != 1 || !ds[0].RevocationQueued || ds[0].Revoked {
		t.Fatalf("Devices at s2 after a queued revocation = %+v; want revocation queued, not revoked", ds)
	}

	// A login from the device is refused while the revocation waits.
	if _, err := login(laptop, c.PublicP2P(1), "ann", "ann's secret"); !errors.Is(err, peer.ErrDeviceRevoked) {
		t.Fatalf("login during a queued revocation = %v; want ErrDeviceRevoked", err)
	}
	// A fresh record of the device, queued after the revocation.
	now := time.Now()
	raw, err := collections.IssueDeviceCert(c.Members[1].Key, collections.DeviceCert{
		User: "ann", Device: laptop.ID().String(), Name: "laptop again", Server: c.Members[1].Key.ID().String(),
		Issued: now.UnixNano(), Expires: now.Add(time.Hour).UnixNano(),
	})
	if err != nil {
		t.Fatal(err)
	}
	u, err := collections.Put(collections.Device{Cert: raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	r, err = c.Node(1).Submit(ctx, u)
	cancel()
	if err != nil || !r.Queued {
		t.Fatalf("Submit(fresh record) with no master = %+v, %v; want queued", r, err)
	}

	c.Start(0)
	c.Start(2)
	c.WaitMaster(20 * time.Second)
	c.WaitFor("the revocation committed everywhere", 20*time.Second, func() bool {
		for i := range c.Members {
			ds := devices(t, c.Node(i), "ann")
			if len(ds) != 1 || !ds[0].Revoked || ds[0].Valid {
				return false
			}
		}
		return true
	})
	c.WaitConverged(10 * time.Second)
	for i := range c.Members {
		if _, ok := c.State(i).ValidDevice(laptop.ID(), time.Now()); ok {
			t.Errorf("%s accepts the revoked laptop", c.Members[i].Name)
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := c.Node(1).RevokeDevice(ctx, laptop.ID()); err != nil || r.Queued {
		t.Errorf("RevokeDevice once committed = %+v, %v; want the committed receipt", r, err)
	}
	// Once committed, a revoked device is not even let in as a guest.
	if _, err := login(laptop, c.PublicP2P(1), "ann", "ann's secret"); err == nil {
		t.Errorf("login after the revocation succeeded")
	}
}

// TestNameReuseAfterRemoval: bob's laptop, cut off when bob is removed,
// is not accepted again when another user is given the name bob.
func TestNameReuseAfterRemoval(t *testing.T) {
	c := loginCluster(t)
	build := func(f func(st *collections.State) (collections.Update, error)) {
		t.Helper()
		u, err := f(c.State(0))
		if err != nil {
			t.Fatalf("building the change: %v", err)
		}
		if r, err := c.Submit(0, u); err != nil || r.Queued {
			t.Fatalf("submitting %s: %+v, %v", u.Key, r, err)
		}
		c.WaitConverged(10 * time.Second)
	}
	home := c.Members[1].Key.ID()
	build(func(st *collections.State) (collections.Update, error) {
		u, _, err := st.AddUser("carl", home, "0123456789abcdef0123456789abcdef")
		return u, err
	})
	setPassword(t, c, 1, "carl", "carl's secret")
	laptop := peertest.NewAgent(t, "laptop")
	res, err := login(laptop, c.PublicP2P(1), "carl", "carl's secret")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if cert, _ := collections.OpenDeviceCert(res.Cert); cert.UserID != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("certificate names user ID %q; want carl's", cert.UserID)
	}
	c.WaitFor("the laptop valid everywhere", 10*time.Second, func() bool {
		return validEverywhere(t, c, "carl", laptop.ID(), true)
	})

	build(func(st *collections.State) (collections.Update, error) {
		u, _, err := st.RemoveUser("carl", "")
		return u, err
	})
	build(func(st *collections.State) (collections.Update, error) {
		u, _, err := st.AddUser("carl", home, "fedcba9876543210fedcba9876543210")
		return u, err
	})
	for i := range c.Members {
		if _, ok := c.State(i).ValidDevice(laptop.ID(), time.Now()); ok {
			t.Errorf("%s accepts the removed carl's laptop for the new carl", c.Members[i].Name)
		}
	}
	if !validEverywhere(t, c, "carl", laptop.ID(), false) {
		t.Errorf("the old laptop is listed as valid somewhere")
	}
}
