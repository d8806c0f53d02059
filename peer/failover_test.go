package peer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// checkMaster fails unless member m is master at epoch e in every running
// member's view.
func checkMaster(t *testing.T, c *peertest.Cluster, m int, e uint64, when string) {
	t.Helper()
	want := c.Members[m].Key.ID().String()
	for _, i := range c.Running() {
		st := c.Status(i)
		if st.Master != want || st.Epoch != e {
			t.Errorf("%s: %s follows %s at epoch %d; want %s at %d", when, c.Members[i].Name, st.MasterName, st.Epoch, c.Members[m].Name, e)
		}
	}
	if st := c.Status(m); st.Role != "master" {
		t.Errorf("%s: %s is %s, want master", when, c.Members[m].Name, st.Role)
	}
}

// TestAgentCopyAndScenarios1And2: a desktop agent that joins late gets a
// full local copy and then follows by gossip; the agent failing (scenario 1)
// and a slave failing (scenario 2) change nothing for the others: the same
// master at the same epoch keeps acknowledging writes from itself and from
// the remaining slave.
func TestAgentCopyAndScenarios1And2(t *testing.T) {
	c := peertest.NewClusterWith(t, peertest.Options{Servers: 3, Agents: 1, Settings: collections.DefaultFailover(3)})
	const agent = 3
	for i := range 3 {
		c.Start(i)
	}
	m, e := c.WaitMaster(20 * time.Second)
	if m != 0 {
		t.Fatalf("master is %s, want s1", c.Members[m].Name)
	}
	putUser(t, c, 0, "ann", 1)
	putFolder(t, c, 1, "f1", "ann")

	c.Start(agent)
	c.WaitConverged(10 * time.Second)
	putUser(t, c, 0, "bob", 2)
	putFolder(t, c, 2, "f2", "bob")
	c.WaitConverged(10 * time.Second)
	st := c.Status(agent)
	if st.Role != "agent" {
		t.Errorf("agent's role = %q, want agent", st.Role)
	}
	// The agent joins the gossip mesh at a gossipsub heartbeat after it
	// connects; updates before that reach it by anti-entropy. Once it is
	// in, updates arrive by gossip.
	for i := 0; st.Counters.GossipApplied == 0 && i < 20; i++ {
		putUser(t, c, 0, fmt.Sprintf("extra%d", i), 2)
		c.WaitConverged(10 * time.Second)
		st = c.Status(agent)
	}
	if st.Counters.SyncApplied == 0 || st.Counters.GossipApplied == 0 {
		t.Errorf("agent counters %+v; want updates from both anti-entropy (joined late) and gossip", st.Counters)
	}
	c.WaitFor("the agent to follow s1", 5*time.Second, func() bool {
		st := c.Status(agent)
		return st.Master == c.Members[0].Key.ID().String() && st.Epoch == e
	})

	// Scenario 1: the agent fails.
	c.Stop(agent)
	putUser(t, c, 0, "cat", 1)
	putFolder(t, c, 1, "f3", "cat")
	c.WaitConverged(10 * time.Second)
	checkMaster(t, c, 0, e, "after the agent stopped")

	// Scenario 2: a slave fails.
	c.Stop(2)
	putUser(t, c, 0, "dan", 1)
	putFolder(t, c, 1, "f4", "dan")
	c.WaitConverged(10 * time.Second)
	checkMaster(t, c, 0, e, "after s3 stopped")

	// Both come back and catch up.
	c.Start(2)
	c.Start(agent)
	c.WaitConverged(10 * time.Second)
	if m2, e2 := c.WaitMaster(10 * time.Second); m2 != 0 || e2 != e {
		t.Errorf("after s3 and the agent restarted: master %s at epoch %d; want s1 at %d", c.Members[m2].Name, e2, e)
	}
	for _, i := range c.Running() {
		st := c.State(i)
		for _, u := range []string{"ann", "bob", "cat", "dan"} {
			if _, ok := st.User(u); !ok {
				t.Errorf("%s lacks user %s", c.Members[i].Name, u)
			}
		}
	}
}

// TestTwoServersDoNotFailOver: with two servers a change needs both (a
// raft majority of two), so when s1 stops s2 does not take over: it stays
// without a master, its status warns that two servers cannot fail over, a
// Domain change there is refused and a Catalog change waits unacknowledged.
// s1 comes back and is master again; nothing acknowledged is lost, the
// refused change is nowhere, and the change that waited is committed then.
func TestTwoServersDoNotFailOver(t *testing.T) {
	c := peertest.NewCluster(t, 2, collections.FailoverSettings{Majority: false, HeartbeatMillis: 250, FailAfterMillis: 1500})
	c.StartAll()
	m, e1 := c.WaitMaster(20 * time.Second)
	if m != 0 {
		t.Fatalf("first master is %s, want s1", c.Members[m].Name)
	}
	for _, i := range c.Running() {
		cs := chainStatus(t, c, i)
		if len(cs.Voters) != 2 || !strings.Contains(cs.Warning, "two servers cannot fail over") {
			t.Errorf("%s: voters %v, warning %q; want both servers voting and a warning that two servers cannot fail over", c.Members[i].Name, cs.Voters, cs.Warning)
		}
	}
	putUser(t, c, 0, "ann", 1)
	putFolder(t, c, 1, "f1", "ann")
	c.WaitConverged(10 * time.Second)

	c.Stop(0)
	c.WaitFor("s2 to see no master", 10*time.Second, func() bool { return c.Status(1).Master == "" })
	// Well past the fail-after time (1.5 s): s2 never becomes master.
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if st := c.Status(1); st.Role == "master" || st.Master != "" {
			t.Fatalf("s2 alone: role %s, master %q at epoch %d; want no master", st.Role, st.MasterName, st.Epoch)
		}
	}
	st := c.Status(1)
	if st.Chain == nil || !strings.Contains(st.Chain.Warning, "two servers cannot fail over") {
		t.Errorf("s2 alone: chain status %+v; want a warning that two servers cannot fail over", st.Chain)
	}
	t.Logf("s2 alone: role %s, chain %+v", st.Role, *st.Chain)

	u, err := collections.Put(collections.User{Name: "bob", HomeServer: c.Members[1].Key.ID().String()})
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := c.Submit(1, u); !errors.Is(err, peer.ErrNotMaster) {
		t.Errorf("a Domain change at s2 alone: receipt %+v, err %v; want it refused (not the master)", rc, err)
	}
	f2 := collections.Folder{ID: "f2", Name: "f2", Owner: "ann", Server: c.Members[1].Key.ID().String(), Members: map[string]collections.Right{"ann": collections.RightOwner}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	rc, err := c.Node(1).Submit(ctx, mustPut(t, f2))
	cancel()
	if err != nil || !rc.Queued {
		t.Errorf("a Catalog change at s2 alone: receipt %+v, err %v; want it waiting, unacknowledged", rc, err)
	}
	if _, ok := c.State(1).Folder("f2"); ok {
		t.Errorf("s2 applied folder f2 with no master")
	}

	c.Start(0)
	m, e2 := c.WaitMaster(20 * time.Second)
	if m != 0 || e2 <= e1 {
		t.Fatalf("after s1 restarted: master %s epoch %d; want s1 above %d", c.Members[m].Name, e2, e1)
	}
	if st := c.Status(1); st.Role != "slave" {
		t.Errorf("s2 is %s with s1 back, want slave", st.Role)
	}
	c.WaitFor("the folder that waited at s2 to be committed", 10*time.Second, func() bool {
		_, ok := c.State(0).Folder("f2")
		return ok
	})
	putFolder(t, c, 1, "f3", "ann") // a slave's write through the master
	c.WaitConverged(10 * time.Second)
	for _, i := range c.Running() {
		st := c.State(i)
		if _, ok := st.User("ann"); !ok {
			t.Errorf("%s lacks user ann", c.Members[i].Name)
		}
		if _, ok := st.User("bob"); ok {
			t.Errorf("%s has user bob, refused at s2 while alone", c.Members[i].Name)
		}
		for _, f := range []string{"f1", "f2", "f3"} {
			if _, ok := st.Folder(f); !ok {
				t.Errorf("%s lacks folder %s", c.Members[i].Name, f)
			}
		}
	}
}

// TestFailoverRightAfterFirstElection: the master fails as soon as every
// server follows it. s2 and s3 are a majority of three: one of them is
// elected, and s2, next in the chain, ends up master (s3 hands leadership
// to it once it is caught up) and acknowledges writes.
func TestFailoverRightAfterFirstElection(t *testing.T) {
	c := peertest.NewCluster(t, 3, collections.DefaultFailover(3))
	c.StartAll()
	m, e1 := c.WaitMaster(20 * time.Second)
	if m != 0 {
		t.Fatalf("first master is %s, want s1", c.Members[m].Name)
	}
	c.Stop(0)
	m, e2 := c.WaitMaster(15 * time.Second)
	if m != 1 || e2 <= e1 {
		t.Fatalf("after s1 stopped: master %s epoch %d; want s2 above %d", c.Members[m].Name, e2, e1)
	}
	putUser(t, c, 1, "ann", 1)
	c.WaitConverged(10 * time.Second)
}

// TestRestartedServerCatchesUpFromSlave: with s1 and s2 down, s3 alone is a
// minority and nobody is master. s2 comes back without the latest data (a
// user added while it was down); s3 has it. Only a server whose log is up
// to date can be elected, so s2 cannot become master without it: s2 comes
// first in the chain and ends up master, having caught up from s3 through
// the log (no anti-entropy pull).
func TestRestartedServerCatchesUpFromSlave(t *testing.T) {
	c := peertest.NewCluster(t, 3, collections.DefaultFailover(3))
	c.StartAll()
	m, e1 := c.WaitMaster(20 * time.Second)
	if m != 0 {
		t.Fatalf("first master is %s, want s1", c.Members[m].Name)
	}
	c.Stop(1)
	putUser(t, c, 0, "ann", 0)
	c.WaitConverged(10 * time.Second)
	c.Stop(0)
	c.WaitFor("s3 to see no master", 15*time.Second, func() bool {
		return c.Status(2).Master == ""
	})
	c.Start(1)
	m, e2 := c.WaitMaster(20 * time.Second)
	if m != 1 || e2 <= e1 {
		t.Fatalf("after s2 restarted: master %s epoch %d; want s2 above %d", c.Members[m].Name, e2, e1)
	}
	if _, ok := c.State(1).User("ann"); !ok {
		t.Errorf("s2 is master without user ann, added while it was down")
	}
	if n := c.Status(1).Counters.SyncPulls; n != 0 {
		t.Errorf("s2 made %d anti-entropy pulls; want none: servers of the chain catch up through the log", n)
	}
	putUser(t, c, 1, "bob", 1)
	c.WaitConverged(10 * time.Second)
}
