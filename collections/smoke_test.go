package collections_test

import (
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
)

func TestSmoke(t *testing.T) {
	s1, s2 := identitytest.Key("s1"), identitytest.Key("s2")
	h1, _ := identitytest.HostRecord(t, "s1", identity.RoleServer).Marshal()
	h2, _ := identitytest.HostRecord(t, "s2", identity.RoleServer).Marshal()
	gb, err := collections.NewGenesis(s1, collections.DomainInfo{Name: "example", Settings: collections.DefaultFailover(2)},
		collections.Chain{Servers: []string{s1.ID().String(), s2.ID().String()}}, [][]byte{h1, h2}, time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	g, err := collections.OpenGenesis(gb)
	if err != nil {
		t.Fatal(err)
	}
	st, err := collections.NewState(g)
	if err != nil {
		t.Fatal(err)
	}
	u, err := collections.Put(collections.User{Name: "ann", HomeServer: s2.ID().String()})
	if err != nil {
		t.Fatal(err)
	}
	su, err := collections.SignUpdate(s1, st.Prepare(s1.ID(), u, time.Unix(2, 0)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.VerifyProposal(su, s1.ID())
	if err != nil {
		t.Fatal(err)
	}
	c, v, err := p.Certify(s1, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Apply(v); got.Outcome != collections.Accepted {
		t.Fatal(got)
	}
	c2, err := collections.UnmarshalCertified(c.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	v2, err := st.Verify(c2, collections.VerifyOptions{MinEpoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Apply(v2); got.Outcome != collections.Duplicate {
		t.Fatal(got)
	}
	f, _ := collections.Put(collections.Folder{ID: "f1", Name: "Docs", Owner: "ann", Server: s2.ID().String(), Members: map[string]collections.Right{"ann": collections.RightOwner}})
	fsu, err := collections.SignUpdate(s2, st.Prepare(s2.ID(), f, time.Unix(3, 0)))
	if err != nil {
		t.Fatal(err)
	}
	fc, err := collections.Certify(s1, fsu, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	fv, err := st.Verify(fc, collections.VerifyOptions{Master: s1.ID(), MinEpoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Apply(fv); got.Outcome != collections.Accepted {
		t.Fatal(got)
	}
	if n := len(st.Missing(nil)); n != 2 {
		t.Fatalf("missing %d", n)
	}
	t.Logf("%x %d", st.Digest(collections.Domain), len(st.Summary()))
}
