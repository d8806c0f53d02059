package peer_test

import (
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// connected reports whether member i of c lists member j among its
// connected peers.
func connected(c *peertest.Cluster, i, j int) bool {
	want := c.Members[j].Key.ID().String()
	for _, p := range c.Status(i).Peers {
		if p.ID == want {
			return true
		}
	}
	return false
}

// TestServerHeardAgainIsRedialed: an agent that lost a server redials it
// as soon as the server's heartbeat (every server of the chain publishes
// one every second) is heard again through the other servers, not when its
// reconnect backoff runs out. The backoff here is a minute, and servers
// dial only each other, so only the heartbeat can explain a reconnection
// within the test's bounds.
func TestServerHeardAgainIsRedialed(t *testing.T) {
	c := peertest.NewClusterWith(t, peertest.Options{Servers: 3, Agents: 1, Settings: collections.DefaultFailover(3)})
	const agent, slave = 3, 2
	c.BeforeRun = func(m *peertest.Member, n *peer.Node) {
		peer.SetReconnectBackoff(n, time.Minute, time.Minute)
	}
	c.StartAll()
	c.WaitMaster(20 * time.Second)
	c.WaitFor("the agent to connect to s3", 10*time.Second, func() bool { return connected(c, agent, slave) })

	failures := c.Status(agent).Counters.DialFailures
	c.Stop(slave)
	c.WaitFor("the agent to see s3 gone", 10*time.Second, func() bool { return !connected(c, agent, slave) })
	// The agent's redial of s3 fails while it is down, and puts the next
	// one a minute away.
	c.WaitFor("the agent to fail a redial of s3", 10*time.Second, func() bool {
		return c.Status(agent).Counters.DialFailures > failures
	})

	c.Start(slave)
	start := time.Now()
	c.WaitFor("the agent to reconnect to s3", 20*time.Second, func() bool { return connected(c, agent, slave) })
	t.Logf("the agent reconnected to s3 %v after it restarted", time.Since(start).Round(time.Millisecond))
}
