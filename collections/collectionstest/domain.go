package collectionstest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
)

// Created is the fixed genesis time of test domains.
var Created = time.Date(2025, time.March, 4, 5, 6, 7, 0, time.UTC)

// Spec describes a test domain. Names become identitytest keys.
type Spec struct {
	Name    string   // domain name; default "test"
	Servers []string // the chain, in order; at least one
	Spares  []string // hosts with role server that are not in the chain
	Agents  []string // hosts with role agent
}

// Domain is a test domain: its opened genesis and the names of its hosts.
type Domain struct {
	Spec    Spec
	Genesis collections.Genesis
	// Epoch and MasterSeq are what Commit certifies with; MasterSeq counts up.
	Epoch     uint64
	MasterSeq uint64
}

// NewDomain builds the genesis of spec, signed by its first server.
func NewDomain(t testing.TB, spec Spec) *Domain {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "test"
	}
	var hosts [][]byte
	var chain collections.Chain
	add := func(name string, role identity.Role) {
		b, err := identitytest.HostRecord(t, name, role).Marshal()
		if err != nil {
			t.Fatalf("encoding host record %s: %v", name, err)
		}
		hosts = append(hosts, b)
	}
	for _, n := range spec.Servers {
		add(n, identity.RoleServer)
		chain.Servers = append(chain.Servers, ID(n).String())
	}
	for _, n := range spec.Spares {
		add(n, identity.RoleServer)
	}
	for _, n := range spec.Agents {
		add(n, identity.RoleAgent)
	}
	info := collections.DomainInfo{Name: spec.Name, Settings: collections.DefaultFailover(len(spec.Servers))}
	raw, err := collections.NewGenesis(Key(spec.Servers[0]), info, chain, hosts, Created)
	if err != nil {
		t.Fatalf("building genesis: %v", err)
	}
	g, err := collections.OpenGenesis(raw)
	if err != nil {
		t.Fatalf("opening genesis: %v", err)
	}
	return &Domain{Spec: spec, Genesis: g, Epoch: 1}
}

// NewTestDomain is a domain of servers s1..sN, a spare server "spare" and an
// agent "agent".
func NewTestDomain(t testing.TB, servers int) *Domain {
	t.Helper()
	spec := Spec{Spares: []string{"spare"}, Agents: []string{"agent"}}
	for i := 1; i <= servers; i++ {
		spec.Servers = append(spec.Servers, "s"+string(rune('0'+i)))
	}
	return NewDomain(t, spec)
}

// Key is the deterministic key of host name.
func Key(name string) *identity.PrivateKey { return identitytest.Key(name) }

// ID is the peer ID of host name.
func ID(name string) lpeer.ID { return Key(name).ID() }

// Master is the first server's name.
func (d *Domain) Master() string { return d.Spec.Servers[0] }

// State returns a new replica seeded from the genesis.
func (d *Domain) State(t testing.TB) *collections.State {
	t.Helper()
	s, err := collections.NewState(d.Genesis)
	if err != nil {
		t.Fatalf("NewState: %v", err)
	}
	return s
}

// Sign signs u as author name with the given sequence number and clock.
func Sign(t testing.TB, author string, u collections.Update, seq, clock uint64) collections.SignedUpdate {
	t.Helper()
	u.Author, u.Seq, u.Clock = ID(author).String(), seq, clock
	if u.Issued == 0 {
		u.Issued = Created.Add(time.Duration(clock) * time.Second).UnixNano()
	}
	su, err := collections.SignUpdate(Key(author), u)
	if err != nil {
		t.Fatalf("signing %s/%s as %s: %v", u.Collection, u.Key, author, err)
	}
	return su
}

// Certify certifies su as master in epoch with the next master sequence
// number, without checking write rules.
func (d *Domain) Certify(t testing.TB, master string, su collections.SignedUpdate) collections.Certified {
	t.Helper()
	d.MasterSeq++
	c, err := collections.Certify(Key(master), su, d.Epoch, d.MasterSeq)
	if err != nil {
		t.Fatalf("certifying: %v", err)
	}
	return c
}

// MustPut is collections.Put that fails the test on error.
func MustPut(t testing.TB, v collections.Value) collections.Update {
	t.Helper()
	u, err := collections.Put(v)
	if err != nil {
		t.Fatalf("Put(%+v): %v", v, err)
	}
	return u
}

// Commit is the whole path for one update: author signs u with st's next
// sequence number and clock, the master verifies the proposal, certifies
// it and applies it to st. It fails the test unless the update is
// accepted, and returns the certified update.
func (d *Domain) Commit(t testing.TB, st *collections.State, author string, u collections.Update) collections.Certified {
	t.Helper()
	u = st.Prepare(ID(author), u, Created.Add(time.Duration(st.NextClock())*time.Second))
	su, err := collections.SignUpdate(Key(author), u)
	if err != nil {
		t.Fatalf("signing %s/%s as %s: %v", u.Collection, u.Key, author, err)
	}
	p, err := st.VerifyProposal(su, ID(d.Master()))
	if err != nil {
		t.Fatalf("VerifyProposal(%s/%s by %s): %v", u.Collection, u.Key, author, err)
	}
	d.MasterSeq++
	c, v, err := p.Certify(Key(d.Master()), d.Epoch, d.MasterSeq)
	if err != nil {
		t.Fatalf("certifying: %v", err)
	}
	if got := st.Apply(v); got.Outcome != collections.Accepted {
		t.Fatalf("Apply(%s/%s by %s) = %v (%v); want accepted", u.Collection, u.Key, author, got.Outcome, got.Err)
	}
	return c
}

// Deliver verifies c against st (MinEpoch 0, any chain master) and applies
// it, failing the test if verification fails.
func Deliver(t testing.TB, st *collections.State, c collections.Certified) collections.Verdict {
	t.Helper()
	v, err := st.Verify(c, collections.VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify(%s/%s by %s): %v", c.Update().Collection, c.Update().Key, c.Update().Author, err)
	}
	return st.Apply(v)
}

// AssertSameDigests fails the test unless a and b have the same digest and
// the same records in every collection.
func AssertSameDigests(t testing.TB, a, b *collections.State) {
	t.Helper()
	for _, k := range collections.Kinds {
		if da, db := a.Digest(k), b.Digest(k); da != db {
			t.Errorf("%s digests differ: %x vs %x\n%s", k, da, db, cmp.Diff(a.Records(k), b.Records(k)))
		}
	}
}
