package collections_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
	"github.com/baton-sync/baton/identity"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares b with testdata/name.golden (hex, 64 digits a line).
func golden(t *testing.T, name string, b []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	var sb strings.Builder
	h := hex.EncodeToString(b)
	for len(h) > 64 {
		sb.WriteString(h[:64] + "\n")
		h = h[64:]
	}
	sb.WriteString(h + "\n")
	if *update {
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create): %v", err)
	}
	if sb.String() != string(want) {
		t.Errorf("%s encoding changed:\ngot:\n%s\nwant:\n%s", name, sb.String(), want)
	}
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".golden"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(strings.ReplaceAll(string(b), "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// goldenValues builds every format from deterministic keys and fixed times.
func goldenValues(t testing.TB) (d *ct.Domain, u collections.Update, su collections.SignedUpdate, c collections.Certified, sum collections.Summary) {
	d = ct.NewTestDomain(t, 2)
	u = mustPut(collections.Folder{ID: "f1", Name: "Photos", Owner: "ann", Server: ct.ID("s2").String(),
		Members: map[string]collections.Right{"ann": collections.RightOwner, "bob": collections.RightReadOnly}})
	su = ct.Sign(t, "s2", u, 3, 17)
	u = su.Update()
	var err error
	c, err = collections.Certify(ct.Key("s1"), su, 4, 12)
	if err != nil {
		t.Fatal(err)
	}
	sum = collections.Summary{
		collections.Domain:  {ct.ID("s1").String(): {{First: 1, Last: 9}}},
		collections.Catalog: {ct.ID("s2").String(): {{First: 1, Last: 3}, {First: 5, Last: 5}}},
	}
	return d, u, su, c, sum
}

func TestGolden(t *testing.T) {
	d, u, su, c, sum := goldenValues(t)
	ub, err := u.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sum.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "update", ub)
	golden(t, "signed_update", su.Marshal())
	golden(t, "certified", c.Marshal())
	golden(t, "genesis", d.Genesis.Marshal())
	golden(t, "summary", sb)
	if *update {
		return
	}

	// The stored bytes still decode, to the same values.
	if got, err := collections.UnmarshalUpdate(readGolden(t, "update")); err != nil || got.Key != u.Key || got.Seq != 3 || got.Clock != 17 {
		t.Errorf("UnmarshalUpdate(golden) = %+v, %v", got, err)
	}
	gs, err := collections.UnmarshalSignedUpdate(readGolden(t, "signed_update"))
	if err != nil || gs.Hash() != su.Hash() {
		t.Errorf("UnmarshalSignedUpdate(golden) = %v", err)
	}
	gc, err := collections.UnmarshalCertified(readGolden(t, "certified"))
	if err != nil || gc.Epoch() != 4 || gc.MasterSeq() != 12 || gc.Master() != ct.ID("s1") {
		t.Errorf("UnmarshalCertified(golden) = %v", err)
	}
	gg, err := collections.OpenGenesis(readGolden(t, "genesis"))
	if err != nil || gg.Hash() != d.Genesis.Hash() {
		t.Errorf("OpenGenesis(golden) = %v", err)
	}
	gsum, err := collections.UnmarshalSummary(readGolden(t, "summary"))
	if err != nil || !gsum.Has(collections.Catalog, ct.ID("s2"), 5) || gsum.Has(collections.Catalog, ct.ID("s2"), 4) {
		t.Errorf("UnmarshalSummary(golden) = %v, %v", gsum, err)
	}
}

// TestGoldenFolderHosts: the encoding of a folder record with its options
// and hosting set; the stored bytes decode to it.
func TestGoldenFolderHosts(t *testing.T) {
	f := collections.Folder{ID: "f2", Name: "Builds", Owner: "ann", Server: ct.ID("s2").String(),
		Members: map[string]collections.Right{"ann": collections.RightOwner},
		Hosts:   []string{ct.ID("s2").String(), ct.ID("s1").String()}}
	f.Replicas, f.Keep = 2, "all:2d"
	u := ct.Sign(t, "s2", mustPut(f), 1, 1).Update()
	b, err := u.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "folder_hosts", b)
	if *update {
		return
	}
	if g := goldenFolder(t, "folder_hosts"); g.Replicas != 2 || g.Keep != "all:2d" || len(g.Hosts) != 2 || g.Hosts[1] != ct.ID("s1").String() {
		t.Errorf("golden folder_hosts decodes to %+v", g)
	}
}

func TestGenesis(t *testing.T) {
	d := ct.NewTestDomain(t, 2)
	g := d.Genesis
	if g.Signer() != ct.ID("s1") || g.Domain.Name != "test" || len(g.Hosts) != 4 {
		t.Errorf("genesis = %+v", g)
	}
	st := d.State(t)
	if !st.IsServer(ct.ID("s2")) || st.IsServer(ct.ID("spare")) || st.IsServer(ct.ID("agent")) {
		t.Errorf("IsServer wrong: chain %v", st.Chain())
	}
	if h, ok := st.HostByID(ct.ID("agent")); !ok || h.Role != identity.RoleAgent {
		t.Errorf("HostByID(agent) = %+v, %v", h, ok)
	}
	if n := len(st.Hosts()); n != 4 {
		t.Errorf("%d hosts; want 4", n)
	}
	if st.Genesis().Hash() != g.Hash() {
		t.Errorf("state genesis differs")
	}
	// Two replicas start with the same digests; another domain does not.
	ct.AssertSameDigests(t, st, d.State(t))
	other := ct.NewDomain(t, ct.Spec{Name: "other", Servers: []string{"s1", "s2"}, Spares: []string{"spare"}, Agents: []string{"agent"}})
	if other.State(t).Digest(collections.Domain) == st.Digest(collections.Domain) {
		t.Errorf("different genesis, same digest")
	}
	if _, err := collections.NewState(collections.Genesis{Domain: g.Domain, Chain: g.Chain, Hosts: g.Hosts}); !errors.Is(err, collections.ErrNotVerified) {
		t.Errorf("NewState(unopened) = %v; want ErrNotVerified", err)
	}

	info := collections.DomainInfo{Name: "x", Settings: collections.DefaultFailover(2)}
	host := func(name string, role identity.Role) []byte {
		b, _ := identitytestRecord(t, name, role)
		return b
	}
	chain := collections.Chain{Servers: []string{ct.ID("s1").String(), ct.ID("s2").String()}}
	bad := []struct {
		name  string
		key   string
		info  collections.DomainInfo
		chain collections.Chain
		hosts [][]byte
	}{
		{"signed by the second server", "s2", info, chain, [][]byte{host("s1", identity.RoleServer), host("s2", identity.RoleServer)}},
		{"chain server without host record", "s1", info, chain, [][]byte{host("s1", identity.RoleServer)}},
		{"agent in the chain", "s1", info, chain, [][]byte{host("s1", identity.RoleServer), host("s2", identity.RoleAgent)}},
		{"host listed twice", "s1", info, chain, [][]byte{host("s1", identity.RoleServer), host("s2", identity.RoleServer), host("s2", identity.RoleServer)}},
		{"three servers without majority", "s1", info, collections.Chain{Servers: append(chain.Servers, ct.ID("s3").String())},
			[][]byte{host("s1", identity.RoleServer), host("s2", identity.RoleServer), host("s3", identity.RoleServer)}},
		{"empty chain", "s1", info, collections.Chain{}, nil},
	}
	for _, tc := range bad {
		if _, err := collections.NewGenesis(ct.Key(tc.key), tc.info, tc.chain, tc.hosts, ct.Created); err == nil {
			t.Errorf("NewGenesis(%s) succeeded", tc.name)
		}
	}
	// A genesis whose signer is not the first server does not open.
	raw := reseal(t, g.Marshal(), func(e *identity.Envelope) {
		sig, _ := ct.Key("s2").Sign(identity.PurposeGenesis, e.Payload)
		e.Signatures[0] = identity.Signature{Signer: ct.Key("s2").Public(), Sig: sig}
	})
	if _, err := collections.OpenGenesis(raw); !errors.Is(err, collections.ErrBadSignature) {
		t.Errorf("OpenGenesis(signed by s2) = %v; want ErrBadSignature", err)
	}
	if _, err := collections.OpenGenesis(append(bytes.Clone(g.Marshal()), 0)); !errors.Is(err, collections.ErrMalformed) {
		t.Errorf("OpenGenesis(trailing byte) = %v; want ErrMalformed", err)
	}
}
