package collections_test

import (
	"fmt"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
)

// exampleDomain founds a two-server domain; s1 signs the genesis.
func exampleDomain() (s1, s2 *identity.PrivateKey, g collections.Genesis) {
	s1, s2 = identitytest.Key("s1"), identitytest.Key("s2")
	var hosts [][]byte
	for _, name := range []string{"s1", "s2"} {
		env, err := identity.SignHostRecord(identitytest.Key(name), identitytest.Record(name, identity.RoleServer))
		if err != nil {
			panic(err)
		}
		b, _ := env.Marshal()
		hosts = append(hosts, b)
	}
	chain := collections.Chain{Servers: []string{s1.ID().String(), s2.ID().String()}}
	info := collections.DomainInfo{Name: "example", Settings: collections.DefaultFailover(2)}
	raw, err := collections.NewGenesis(s1, info, chain, hosts, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		panic(err)
	}
	g, err = collections.OpenGenesis(raw) // what every other server does with the file
	if err != nil {
		panic(err)
	}
	return s1, s2, g
}

// The master verifies, certifies and applies its own update; a replica
// verifies the certified bytes and applies them too.
func Example() {
	s1, s2, g := exampleDomain()
	master, _ := collections.NewState(g)
	replica, _ := collections.NewState(g)
	now := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)

	// On the master: provision a user homed on s2.
	u, _ := collections.Put(collections.User{Name: "ann", HomeServer: s2.ID().String()})
	su, _ := collections.SignUpdate(s1, master.Prepare(s1.ID(), u, now))
	p, err := master.VerifyProposal(su, s1.ID())
	if err != nil {
		panic(err)
	}
	c, v, _ := p.Certify(s1, 1, 1) // epoch 1, first certification
	fmt.Println("master:", master.Apply(v).Outcome)

	// On a replica: the certified bytes arrive over the network.
	got, _ := collections.UnmarshalCertified(c.Marshal())
	rv, err := replica.Verify(got, collections.VerifyOptions{Master: s1.ID(), MinEpoch: 1})
	if err != nil {
		panic(err)
	}
	fmt.Println("replica:", replica.Apply(rv).Outcome)
	fmt.Println("again:", replica.Apply(rv).Outcome)
	home, _ := replica.HomeServer("ann")
	fmt.Println("ann's home is s2:", home == s2.ID())
	fmt.Println("same digest:", master.Digest(collections.Domain) == replica.Digest(collections.Domain))
	// Output:
	// master: accepted
	// replica: accepted
	// again: duplicate
	// ann's home is s2: true
	// same digest: true
}

// A slave's update certified by a deposed master is refused once the
// receiver has seen a later epoch.
func ExampleState_Verify_fencing() {
	s1, s2, g := exampleDomain()
	st, _ := collections.NewState(g)
	u, _ := collections.Put(collections.ReportRecord{ID: "r1", Author: s2.ID().String(), Kind: "usage", Content: []byte("hello")})
	su, _ := collections.SignUpdate(s2, st.Prepare(s2.ID(), u, time.Unix(0, 0)))
	c, _ := collections.Certify(s1, su, 3, 1) // s1 certifies in epoch 3
	_, err := st.Verify(c, collections.VerifyOptions{MinEpoch: 4})
	fmt.Println(err != nil)
	// Output: true
}

// Anti-entropy: send the other side what its summary lacks.
func ExampleState_Missing() {
	s1, s2, g := exampleDomain()
	a, _ := collections.NewState(g)
	b, _ := collections.NewState(g)
	for i, name := range []string{"ann", "bob"} {
		u, _ := collections.Put(collections.User{Name: name, HomeServer: s2.ID().String()})
		su, _ := collections.SignUpdate(s1, a.Prepare(s1.ID(), u, time.Unix(0, 0)))
		p, _ := a.VerifyProposal(su, s1.ID())
		_, v, _ := p.Certify(s1, 1, uint64(i+1))
		a.Apply(v)
	}
	wire, _ := b.Summary().Marshal()
	theirs, _ := collections.UnmarshalSummary(wire)
	missing := a.Missing(theirs)
	fmt.Println("a sends", len(missing))
	for _, c := range missing {
		v, err := b.Verify(c, collections.VerifyOptions{History: true})
		if err != nil {
			panic(err)
		}
		b.Apply(v)
	}
	fmt.Println("same digest:", a.Digest(collections.Domain) == b.Digest(collections.Domain))
	fmt.Println("then a sends", len(a.Missing(b.Summary())))
	// Output:
	// a sends 2
	// same digest: true
	// then a sends 0
}
