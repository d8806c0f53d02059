package peer_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

func putReport(t *testing.T, c *peertest.Cluster, at int, id string) {
	t.Helper()
	r := collections.ReportRecord{ID: id, Author: c.Members[at].Key.ID().String(), Kind: "usage", Created: peertest.Created.UnixNano(), Content: []byte("users: 1")}
	rc, err := c.Submit(at, mustPut(t, r))
	if err != nil || rc.Queued {
		t.Fatalf("adding report %s at %s: %v (queued %v)", id, c.Members[at].Name, err, rc.Queued)
	}
}

// TestRestartedSlaveCatchesUpWithTheDelta stops a slave, changes all three
// collections, restarts it: it converges by anti-entropy, and what it
// received is what it missed (once from each server it pulled from), not the
// whole state.
func TestRestartedSlaveCatchesUpWithTheDelta(t *testing.T) {
	c := peertest.NewCluster(t, 3, collections.DefaultFailover(3))
	c.StartAll()
	c.WaitMaster(20 * time.Second)
	const base = 20
	for i := range base {
		putUser(t, c, 0, fmt.Sprintf("u%02d", i), 1)
	}
	c.WaitConverged(10 * time.Second)

	c.Stop(2)
	putUser(t, c, 0, "ann", 1)
	putUser(t, c, 0, "bob", 1)
	putUser(t, c, 0, "u00", 0) // supersedes an update s3 holds
	putFolder(t, c, 1, "f1", "ann")
	putFolder(t, c, 1, "f2", "bob")
	putReport(t, c, 1, "r1")
	const missed = 6

	c.Start(2)
	c.WaitConverged(10 * time.Second)
	// Let the on-connect pulls from both servers finish and count.
	c.WaitFor("s3 to have pulled from both servers", 10*time.Second, func() bool {
		return c.Status(2).Counters.SyncPulls >= 2
	})
	got := c.Status(2).Counters
	t.Logf("s3 after restart: %+v", got)
	if got.SyncApplied != missed {
		t.Errorf("s3 applied %d updates by anti-entropy; want the %d it missed", got.SyncApplied, missed)
	}
	if got.GossipApplied != 0 {
		t.Errorf("s3 applied %d gossiped updates; want 0 (no writes since it restarted)", got.GossipApplied)
	}
	if peers := int64(2); got.SyncReceived > missed*peers {
		t.Errorf("s3 received %d updates by anti-entropy; want at most %d (what it missed, from each of %d servers), not the whole state (%d+)", got.SyncReceived, missed*peers, peers, base+missed)
	}
	for _, u := range []string{"ann", "bob"} {
		if _, ok := c.State(2).User(u); !ok {
			t.Errorf("s3 lacks user %s", u)
		}
	}
}

// TestLostGossipRepairedByPeriodicSync: a slave loses every gossiped update
// (a test hook drops them); the periodic anti-entropy pull still brings it
// every change, even the last one, which no later gossip reveals as a gap.
func TestLostGossipRepairedByPeriodicSync(t *testing.T) {
	c := peertest.NewCluster(t, 3, collections.DefaultFailover(3))
	var dropping atomic.Bool
	c.BeforeRun = func(m *peertest.Member, n *peer.Node) {
		if m.Name == "s3" {
			peer.SetDropGossip(n, func(collections.Certified) bool { return dropping.Load() })
		}
	}
	c.StartAll()
	c.WaitMaster(20 * time.Second)
	putUser(t, c, 0, "ann", 1)
	c.WaitConverged(10 * time.Second)

	before := c.Status(2).Counters
	dropping.Store(true)
	putUser(t, c, 0, "bob", 1)
	putFolder(t, c, 1, "f1", "ann")
	putUser(t, c, 0, "cat", 2)
	start := time.Now()
	c.WaitConverged(10 * time.Second)
	t.Logf("s3 repaired lost gossip after %v", time.Since(start))
	after := c.Status(2).Counters
	if after.GossipApplied != before.GossipApplied {
		t.Errorf("s3 applied %d gossiped updates while dropping them", after.GossipApplied-before.GossipApplied)
	}
	if n := after.SyncApplied - before.SyncApplied; n != 3 {
		t.Errorf("s3 applied %d updates by anti-entropy; want 3", n)
	}
}
