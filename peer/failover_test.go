package peer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
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

// TestTwoServerPlainChainFailoverAndHandback: with two servers and the
// plain chain rule, s2 takes over when s1 stops and acknowledges writes;
// s1 comes back, catches up and takes the role back at a higher epoch,
// losing nothing s2 acknowledged.
func TestTwoServerPlainChainFailoverAndHandback(t *testing.T) {
	c := peertest.NewCluster(t, 2, collections.FailoverSettings{Majority: false, HeartbeatMillis: 250, FailAfterMillis: 1500})
	c.StartAll()
	m, e1 := c.WaitMaster(20 * time.Second)
	if m != 0 {
		t.Fatalf("first master is %s, want s1", c.Members[m].Name)
	}
	putUser(t, c, 0, "ann", 1)
	putFolder(t, c, 1, "f1", "ann")
	c.WaitConverged(10 * time.Second)

	c.Stop(0)
	m, e2 := c.WaitMaster(15 * time.Second)
	if m != 1 || e2 <= e1 {
		t.Fatalf("after s1 stopped: master %s epoch %d; want s2 above %d", c.Members[m].Name, e2, e1)
	}
	putUser(t, c, 1, "bob", 1)
	putFolder(t, c, 1, "f2", "bob")

	c.Start(0)
	c.WaitFor("s1 to be master again", 20*time.Second, func() bool {
		st := c.Status(0)
		return st.Role == "master" && st.Epoch > e2
	})
	m, e3 := c.WaitMaster(10 * time.Second)
	if m != 0 || e3 <= e2 {
		t.Fatalf("after s1 restarted: master %s epoch %d; want s1 above %d", c.Members[m].Name, e3, e2)
	}
	if st := c.Status(1); st.Role != "slave" {
		t.Errorf("s2 is %s after handback, want slave", st.Role)
	}
	putFolder(t, c, 1, "f3", "ann") // a slave's write through the new master
	c.WaitConverged(10 * time.Second)
	for _, i := range c.Running() {
		st := c.State(i)
		for _, u := range []string{"ann", "bob"} {
			if _, ok := st.User(u); !ok {
				t.Errorf("%s lacks user %s", c.Members[i].Name, u)
			}
		}
		for _, f := range []string{"f1", "f2", "f3"} {
			if _, ok := st.Folder(f); !ok {
				t.Errorf("%s lacks folder %s", c.Members[i].Name, f)
			}
		}
	}
}

// TestFailoverRightAfterFirstElection: the master fails as soon as every
// server follows it, typically before s2 has pulled from it. s2, next in
// the chain, still takes over: with no master it catches up from s3
// instead, and s3 waits for it.
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
// user added while it was down); s3 has it. s2 comes first in the chain: it
// catches up from s3 and is promoted, rather than s3 taking an epoch and
// handing it to s2 at once.
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
	putUser(t, c, 1, "bob", 1)
	c.WaitConverged(10 * time.Second)
}
