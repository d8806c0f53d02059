package chain_test

import (
	"errors"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/baton-sync/baton/peer/chain"
)

// A survivor promoted by force takes changes alone; the servers that come
// back start again from its log, report what theirs held that it lacks,
// and become voters again, and the first server of the chain leads again.
func TestForcePromoteSurvivor(t *testing.T) {
	c := newTestCluster(t, 3)
	s1, s2, s3 := c.node("s1"), c.node("s2"), c.node("s3")
	if !c.run(200, func() bool { return c.quiet() && c.leader() == s1 }) {
		t.Fatalf("s1 does not lead a new cluster (leader %d)", c.leader())
	}
	common := mustCommit(t, c, userUpdate(t, "ann", "s1"))
	settle(t, c)

	// s3 is cut off; s1 and s2 commit a change it never sees, then both
	// are lost.
	c.isolate(s3)
	c.partition([]int{s1, s2})
	mustCommit(t, c, userUpdate(t, "bob", "s1"))
	if !c.run(50, func() bool { return c.nodes[s2].core.Applied() == c.nodes[s1].core.Applied() }) {
		t.Fatal("s2 did not apply bob")
	}
	c.crash(s1)
	c.crash(s2)
	c.heal()
	if c.run(100, func() bool { return c.nodes[s3].core.IsLeader() }) {
		t.Fatal("s3 led alone without a majority")
	}

	p := c.promote(s3)
	if p.Generation.N != 1 || p.Generation.By != c.nodes[s3].id {
		t.Errorf("generation %+v; want N 1 by s3", p.Generation)
	}
	if got := p.Snapshot.GetMetadata().GetConfState().GetVoters(); len(got) != 1 || got[0] != c.nodes[s3].id {
		t.Errorf("voters after the promotion %x; want s3 alone", got)
	}
	if !c.run(100, func() bool { return c.nodes[s3].core.Serving() }) {
		t.Fatal("s3 does not serve after its promotion")
	}
	after := mustCommit(t, c, userUpdate(t, "cat", "s3"))

	c.restart(s1)
	c.restart(s2)
	// Bounded: catching up by snapshot, two promotions to voter and the
	// hand-back, a few election timeouts each.
	if !c.run(40*electionTicks, func() bool {
		return c.quiet() && c.leader() == s1 && len(c.nodes[s1].core.ConfState().GetVoters()) == 3
	}) {
		l, voters := c.leader(), c.nodes[s3].core.ConfState().GetVoters()
		t.Fatalf("s1 does not lead three voters again (leader %d, voters at s3 %x)", l, voters)
	}
	for _, i := range []int{s1, s2} {
		n := c.nodes[i]
		if n.core.Generation() != p.Generation {
			t.Errorf("%s is of generation %+v; want %+v", n.name, n.core.Generation(), p.Generation)
		}
		var lost []string
		for _, u := range n.evicted {
			if u.Committed && !chain.Kept(n.core.State(), u.Certified) {
				lost = append(lost, u.Certified.Update().Key)
			}
		}
		if len(lost) != 1 || lost[0] != "user/bob" {
			t.Errorf("%s reports %v committed and not kept; want [user/bob]", n.name, lost)
		}
	}
	for _, n := range c.nodes {
		st := n.core.State()
		if rec, ok := record(st, "ann"); !ok || rec.Hash != common.Hash() {
			t.Errorf("%s lost ann, committed before the fault", n.name)
		}
		if rec, ok := record(st, "cat"); !ok || rec.Hash != after.Hash() {
			t.Errorf("%s lacks cat, committed by the promoted server", n.name)
		}
		if _, ok := record(st, "bob"); ok {
			t.Errorf("%s holds bob, which the promoted server never had", n.name)
		}
	}
	c.checkConverged()
}

// Messages between generations: an older one's are refused, a newer one's
// evict.
func TestStepFromGeneration(t *testing.T) {
	c := newTestCluster(t, 3)
	settle(t, c)
	core := c.nodes[0].core
	m := &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), To: new(c.nodes[0].id), From: new(c.nodes[1].id), Term: new(uint64(99))}
	newer := chain.Generation{N: 1, Term: 1, By: c.nodes[1].id}
	if err := core.StepFrom(newer, m); !errors.Is(err, chain.ErrEvicted) {
		t.Errorf("StepFrom a newer generation: %v; want ErrEvicted", err)
	}
	if core.Status().GetTerm() == 99 {
		t.Error("a newer generation's message was stepped")
	}
}

func TestGenerationOrderAndEncoding(t *testing.T) {
	gs := []chain.Generation{{}, {N: 1, Term: 1, By: 9}, {N: 1, Term: 2, By: 1}, {N: 1, Term: 2, By: 2}, {N: 2}}
	for i, a := range gs {
		b, err := chain.UnmarshalGeneration(a.Marshal())
		if err != nil || b != a {
			t.Errorf("round trip of %+v: %+v, %v", a, b, err)
		}
		for j, o := range gs {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(o); got != want {
				t.Errorf("%+v.Compare(%+v) = %d; want %d", a, o, got, want)
			}
		}
	}
	if _, err := chain.UnmarshalGeneration(make([]byte, 7)); err == nil {
		t.Error("a 7-byte generation decoded")
	}
	if g, err := chain.UnmarshalGeneration(nil); err != nil || !g.IsZero() {
		t.Errorf("empty generation: %+v, %v", g, err)
	}
}
