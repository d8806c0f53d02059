package chain_test

import (
	"testing"

	"github.com/baton-sync/baton/peer/chain"
)

// makeWitness rebuilds server i's core as a witness, before it has done
// anything, and tells the other servers it is one.
func (c *cluster) makeWitness(i int) {
	c.tb.Helper()
	n := c.nodes[i]
	core, err := chain.New(chain.Config{
		Key: keyOf(n.name), State: genesisState(c.tb, c.d), Storage: n.ms, Applied: 1,
		ElectionTicks: electionTicks, HeartbeatTicks: heartbeatTicks, Witness: true,
	})
	if err != nil {
		c.tb.Fatalf("chain.New(%s, witness): %v", n.name, err)
	}
	n.core = core
	for j, o := range c.nodes {
		if j != i && o.core != nil {
			o.core.SetWitnesses([]uint64{n.id})
		}
	}
}

// leadSteps runs steps and counts, per server, the steps it led in.
func (c *cluster) leadSteps(steps int) []int {
	led := make([]int, len(c.nodes))
	for range steps {
		c.step()
		for i, n := range c.nodes {
			if n.running() && n.core.IsLeader() {
				led[i]++
			}
		}
	}
	return led
}

// TestWitnessHandsLeadershipOn: a witness first in the chain (the place a
// server would take the master role back to) never stays leader: the
// first caught-up server after it is master; when that one fails, the
// next; when it returns, it is master again. The other servers never hand
// the role to the witness.
func TestWitnessHandsLeadershipOn(t *testing.T) {
	c := newCluster(t, testDomain(t, 3), nil)
	w, s2, s3 := 0, 1, 2
	c.makeWitness(w)
	settled := func(want int) func() bool {
		return func() bool { return c.quiet() && c.leader() == want }
	}
	if !c.run(500, settled(s2)) {
		t.Fatalf("no quiet cluster led by s2 after 500 steps; leader %d", c.leader())
	}
	if led := c.leadSteps(300); led[w] != 0 || led[s3] != 0 {
		t.Fatalf("after s2 took the lead, steps led: %v; want s2 alone", led)
	}

	c.crash(s2)
	stop := func() bool {
		l := c.leader()
		return l == s3 && c.nodes[s3].core.Status().LeadTransferee == 0
	}
	if !c.run(1000, stop) {
		t.Fatalf("s2 down: s3 never led; leader %d", c.leader())
	}
	if led := c.leadSteps(300); led[w] != 0 {
		t.Fatalf("s2 down, s3 leading: then steps led %v; want s3 alone", led)
	}

	c.restart(s2)
	c.nodes[s2].core.SetWitnesses([]uint64{c.nodes[w].id})
	if !c.run(1000, settled(s2)) {
		t.Fatalf("s2 back: no quiet cluster led by s2; leader %d", c.leader())
	}
	if led := c.leadSteps(300); led[w] != 0 || led[s3] != 0 {
		t.Fatalf("s2 back and leading: then steps led %v; want s2 alone", led)
	}
	if len(c.violations) > 0 {
		t.Fatalf("violations:\n%v", c.violations)
	}
}
