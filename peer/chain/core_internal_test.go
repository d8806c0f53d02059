package chain

import (
	"errors"
	"testing"
	"testing/cryptotest"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
)

// pump is a three-server cluster whose messages are delivered at once, in
// order, for tests that reach into a Core.
type pump struct {
	t       *testing.T
	names   []string
	cores   []*Core
	byID    map[uint64]int
	queue   []*raftpb.Message
	applied []map[[32]byte]Applied
}

func newPump(t *testing.T) *pump {
	t.Helper()
	d := ct.NewTestDomain(t, 3)
	p := &pump{t: t, byID: map[uint64]int{}}
	for i, name := range d.Spec.Servers {
		snap, err := InitialSnapshot(d.Genesis)
		if err != nil {
			t.Fatal(err)
		}
		ms := raft.NewMemoryStorage()
		if err := ms.ApplySnapshot(snap); err != nil {
			t.Fatal(err)
		}
		c, err := New(Config{Key: ct.Key(name), State: d.State(t), Storage: ms, Applied: 1, ElectionTicks: 7, HeartbeatTicks: 2})
		if err != nil {
			t.Fatal(err)
		}
		p.names = append(p.names, name)
		p.cores = append(p.cores, c)
		p.byID[c.self] = i
		p.applied = append(p.applied, map[[32]byte]Applied{})
	}
	return p
}

func (p *pump) drain(i int) {
	c := p.cores[i]
	for c.HasReady() {
		rd := c.Ready()
		p.queue = append(p.queue, rd.Messages...)
		res, err := c.Advance(rd)
		if err != nil {
			p.t.Fatalf("%s: Advance: %v", p.names[i], err)
		}
		for _, a := range res.Applied {
			p.applied[i][a.Certified.Hash()] = a
		}
	}
}

// tick ticks every server, then delivers messages until there are none.
func (p *pump) tick() {
	for i, c := range p.cores {
		c.Tick()
		p.drain(i)
	}
	p.deliver()
}

func (p *pump) deliver() {
	for len(p.queue) > 0 {
		m := p.queue[0]
		p.queue = p.queue[1:]
		i := p.byID[m.GetTo()]
		if err := p.cores[i].Step(m); err != nil {
			p.t.Fatalf("%s: Step: %v", p.names[i], err)
		}
		p.drain(i)
	}
}

// leader runs until the first server of the chain leads (no leadership
// transfer is then under way) and has applied its whole log.
func (p *pump) leader() int {
	p.t.Helper()
	for range 300 {
		p.tick()
		if c := p.cores[0]; c.IsLeader() && c.applied == c.last && c.rn.BasicStatus().LeadTransferee == raft.None {
			return 0
		}
	}
	p.t.Fatal("no leader")
	return -1
}

// An entry whose certification names another log position than its own
// is refused on every server, whatever position or term it names.
func TestMisplacedCertificationRefusedEverywhere(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1) // raft's election timeouts
	p := newPump(t)
	p.leader()
	// Past the first terms, so that an earlier term exists: s1 hands
	// leadership to s2, which hands it back.
	p.cores[0].TransferLeader(p.cores[1].self)
	for range 50 {
		if p.tick(); p.cores[1].IsLeader() {
			break
		}
	}
	l := p.leader()
	c := p.cores[l]
	name := p.names[l]
	term := c.rn.BasicStatus().GetTerm()
	if term < 3 {
		t.Fatalf("term %d after a transfer and back; want at least 3", term)
	}
	for i, tc := range []struct {
		what        string
		term, index uint64 // certified for, relative to the entry's own position
	}{
		{"a later index", 0, 2},
		{"an earlier index", 0, ^uint64(0)}, // index - 1
		{"an earlier term", ^uint64(0), 0},  // term - 1
		{"a later term", 1, 0},
	} {
		su := ct.Sign(t, name, ct.MustPut(t, collections.User{Name: "ann", HomeServer: ct.ID(name).String()}), uint64(i+1), uint64(i+1))
		index := c.last + 1
		cert, err := collections.Certify(ct.Key(name), su, term+tc.term, index+tc.index)
		if err != nil {
			t.Fatal(err)
		}
		// Only a buggy or forged leader proposes this: Propose certifies
		// the position it is about to take.
		if err := c.rn.Propose(cert.Marshal()); err != nil {
			t.Fatalf("%s: proposing: %v", tc.what, err)
		}
		p.drain(l)
		p.deliver()
		p.tick()
		for j, n := range p.names {
			a, ok := p.applied[j][su.Hash()]
			switch {
			case !ok:
				t.Errorf("%s: %s did not apply the entry", tc.what, n)
			case !errors.Is(a.Err, ErrMisplaced) || a.Verdict.Outcome != 0:
				t.Errorf("%s: %s: %v, %v; want refused with ErrMisplaced", tc.what, n, a.Verdict.Outcome, a.Err)
			case a.Index != index || a.Term != term:
				t.Errorf("%s: %s: applied at %d of term %d; proposed at %d of term %d", tc.what, n, a.Index, a.Term, index, term)
			}
			if _, ok := p.cores[j].State().User("ann"); ok {
				t.Errorf("%s: %s holds user ann", tc.what, n)
			}
		}
	}
	// The leader's own proposals still land where they are certified.
	su := ct.Sign(t, name, ct.MustPut(t, collections.User{Name: "bob", HomeServer: ct.ID(name).String()}), 10, 10)
	cert, err := c.Propose(su)
	if err != nil {
		t.Fatal(err)
	}
	p.drain(l)
	p.deliver()
	p.tick()
	for j, n := range p.names {
		if a := p.applied[j][su.Hash()]; a.Err != nil || a.Verdict.Outcome != collections.Accepted || a.Index != cert.MasterSeq() {
			t.Errorf("%s: the next proposal: at %d, %v, %v; want accepted at %d", n, a.Index, a.Verdict.Outcome, a.Err, cert.MasterSeq())
		}
	}
	for j := 1; j < len(p.cores); j++ {
		for _, k := range collections.Kinds {
			if p.cores[j].State().Digest(k) != p.cores[0].State().Digest(k) {
				t.Errorf("%s: %s digest differs from %s", k, p.names[j], p.names[0])
			}
		}
	}
}
