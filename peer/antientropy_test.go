package peer_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

func putReport(t *testing.T, c *peertest.Cluster, at int, id string) collections.Certified {
	t.Helper()
	r := collections.ReportRecord{ID: id, Author: c.Members[at].Key.ID().String(), Kind: "usage", Created: peertest.Created.UnixNano(), Content: []byte("users: 1")}
	rc, err := c.Submit(at, mustPut(t, r))
	if err != nil || rc.Queued {
		t.Fatalf("adding report %s at %s: %v (queued %v)", id, c.Members[at].Name, err, rc.Queued)
	}
	return rc.Certified
}

// appliedLog records what a node applied (Config.OnApplied): each
// certified update's hash and log position, in order.
type appliedLog struct {
	mu      sync.Mutex
	entries []appliedEntry
}

type appliedEntry struct {
	hash  [32]byte
	index uint64
}

func (l *appliedLog) applied(c collections.Certified) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, appliedEntry{hash: c.Hash(), index: c.MasterSeq()})
}

// since returns what was recorded after the first n entries.
func (l *appliedLog) since(n int) []appliedEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]appliedEntry{}, l.entries[n:]...)
}

func (l *appliedLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// chainStatus returns server i's consensus view, failing the test if it
// has none.
func chainStatus(t *testing.T, c *peertest.Cluster, i int) peer.ChainStatus {
	t.Helper()
	st := c.Status(i)
	if st.Chain == nil {
		t.Fatalf("%s has no chain status", c.Members[i].Name)
	}
	return *st.Chain
}

// waitApplied waits until every running server of the chain has applied
// all that the master committed.
func waitApplied(t *testing.T, c *peertest.Cluster, master int, timeout time.Duration) {
	t.Helper()
	c.WaitFor("every running server to apply what the master committed", timeout, func() bool {
		commit := chainStatus(t, c, master).Commit
		for _, i := range c.Running() {
			if c.Members[i].Role != identity.RoleServer {
				continue
			}
			if chainStatus(t, c, i).Applied != commit {
				return false
			}
		}
		return true
	})
}

// TestRestartedServerCatchesUpThroughTheLog stops a server of the chain,
// changes all three collections, restarts it: it converges through the
// consensus log, not by anti-entropy (it pulls nothing) nor gossip, and
// what it got after its own log is exactly what it missed, each once, at
// the log positions after the ones it had applied.
func TestRestartedServerCatchesUpThroughTheLog(t *testing.T) {
	c := peertest.NewCluster(t, 3, collections.DefaultFailover(3))
	var s3log appliedLog
	c.Config = func(m *peertest.Member, cfg *peer.Config) {
		if m.Name == "s3" {
			cfg.OnApplied = s3log.applied
		}
	}
	c.StartAll()
	c.WaitMaster(20 * time.Second)
	const base = 20
	for i := range base {
		putUser(t, c, 0, fmt.Sprintf("u%02d", i), 1)
	}
	c.WaitConverged(10 * time.Second)
	waitApplied(t, c, 0, 10*time.Second)
	had := chainStatus(t, c, 2).Applied

	c.Stop(2)
	missed := map[[32]byte]string{}
	note := func(what string, cert collections.Certified) { missed[cert.Hash()] = what }
	note("user ann", putUser(t, c, 0, "ann", 1).Certified)
	note("user bob", putUser(t, c, 0, "bob", 1).Certified)
	note("user u00 again", putUser(t, c, 0, "u00", 0).Certified) // supersedes an update s3 holds
	note("folder f1", putFolder(t, c, 1, "f1", "ann"))
	note("folder f2", putFolder(t, c, 1, "f2", "bob"))
	note("report r1", putReport(t, c, 1, "r1"))

	mark := s3log.len()
	c.Start(2)
	c.WaitConverged(10 * time.Second)
	waitApplied(t, c, 0, 10*time.Second)

	got := c.Status(2).Counters
	t.Logf("s3 after restart: %+v", got)
	if got.SyncPulls != 0 || got.SyncReceived != 0 || got.SyncApplied != 0 {
		t.Errorf("s3 pulled by anti-entropy (pulls %d, received %d, applied %d); want none: servers of the chain catch up through the log", got.SyncPulls, got.SyncReceived, got.SyncApplied)
	}
	if got.GossipApplied != 0 {
		t.Errorf("s3 applied %d gossiped updates; want 0 (servers of the chain apply the log only)", got.GossipApplied)
	}
	replayed, fresh := 0, map[[32]byte]int{}
	for _, e := range s3log.since(mark) {
		if e.index <= had {
			replayed++ // its own log, read back at start
			continue
		}
		fresh[e.hash]++
		if _, ok := missed[e.hash]; !ok {
			t.Errorf("s3 applied an update at index %d (after its own log, %d) that it had not missed", e.index, had)
		}
	}
	t.Logf("s3 replayed %d updates of its own log (up to index %d) and applied %d it missed", replayed, had, len(fresh))
	for h, what := range missed {
		switch n := fresh[h]; n {
		case 1:
		case 0:
			t.Errorf("s3 did not apply %s, which it missed", what)
		default:
			t.Errorf("s3 applied %s %d times", what, n)
		}
	}
	for _, u := range []string{"ann", "bob"} {
		if _, ok := c.State(2).User(u); !ok {
			t.Errorf("s3 lacks user %s", u)
		}
	}
}

// TestLostGossipRepairedByPeriodicSync: an agent (a host outside the
// chain) loses every gossiped update (a test hook drops them); its
// periodic anti-entropy pull still brings it every change, even the last
// one, which no later gossip reveals as a gap. A server of the chain that
// loses them too converges through the log, with no pull at all.
func TestLostGossipRepairedByPeriodicSync(t *testing.T) {
	c := peertest.NewClusterWith(t, peertest.Options{Servers: 3, Agents: 1, Settings: collections.DefaultFailover(3)})
	const agent, s3 = 3, 2
	// s3 loses every gossiped update from the start: were it to begin
	// with the agent, a late copy of an earlier update could reach it
	// after its counters were read and before the dropping began.
	var dropping atomic.Bool
	c.BeforeRun = func(m *peertest.Member, n *peer.Node) {
		switch m.Name {
		case "s3":
			peer.SetDropGossip(n, func(collections.Certified) bool { return true })
		case "a1":
			peer.SetDropGossip(n, func(collections.Certified) bool { return dropping.Load() })
		}
	}
	c.StartAll()
	c.WaitMaster(20 * time.Second)
	putUser(t, c, 0, "ann", 1)
	c.WaitConverged(10 * time.Second)

	before := c.Status(agent).Counters
	dropping.Store(true)
	putUser(t, c, 0, "bob", 1)
	putFolder(t, c, 1, "f1", "ann")
	putUser(t, c, 0, "cat", 2)
	start := time.Now()
	c.WaitConverged(10 * time.Second)
	t.Logf("the agent repaired lost gossip after %v", time.Since(start))
	after := c.Status(agent).Counters
	if after.GossipApplied != before.GossipApplied {
		t.Errorf("the agent applied %d gossiped updates while dropping them", after.GossipApplied-before.GossipApplied)
	}
	if n := after.SyncApplied - before.SyncApplied; n != 3 {
		t.Errorf("the agent applied %d updates by anti-entropy; want 3", n)
	}
	for _, u := range []string{"bob", "cat"} {
		if _, ok := c.State(agent).User(u); !ok {
			t.Errorf("the agent lacks user %s", u)
		}
	}

	waitApplied(t, c, 0, 10*time.Second)
	afterS3 := c.Status(s3).Counters
	if afterS3.SyncPulls != 0 || afterS3.SyncApplied != 0 {
		t.Errorf("s3 pulled by anti-entropy (pulls %d, applied %d); want none", afterS3.SyncPulls, afterS3.SyncApplied)
	}
	if afterS3.GossipApplied != 0 || afterS3.GossipHeld != 0 {
		t.Errorf("s3 counters %+v while dropping gossip; want no gossip applied or held", afterS3)
	}
}
