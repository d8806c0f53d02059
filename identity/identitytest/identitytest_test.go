package identitytest_test

import (
	"testing"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
)

func TestKeyDeterministic(t *testing.T) {
	a1, a2, b := identitytest.Key("alice"), identitytest.Key("alice"), identitytest.Key("bob")
	if !a1.Equal(a2) {
		t.Errorf("Key(alice) twice gave %s and %s; want the same key", a1.ID(), a2.ID())
	}
	if a1.Equal(b) {
		t.Errorf("Key(alice) = Key(bob) = %s; want different keys", a1.ID())
	}
	// Pin the derivation: changing it would silently invalidate golden files.
	const want = "12D3KooW"
	if got := a1.ID().String(); got[:len(want)] != want {
		t.Errorf("Key(alice).ID() = %s; want an Ed25519 peer ID starting %s", got, want)
	}
}

func TestHostRecord(t *testing.T) {
	env := identitytest.HostRecord(t, "alice", identity.RoleServer, "/ip4/192.0.2.1/tcp/4001")
	rec, err := identity.OpenHostRecord(env)
	if err != nil {
		t.Fatalf("OpenHostRecord(HostRecord(alice)) error = %v; want nil", err)
	}
	if rec.Name != "alice" || rec.Role != identity.RoleServer || rec.ID() != identitytest.Key("alice").ID() {
		t.Errorf("OpenHostRecord(HostRecord(alice)) = %+v; want alice, server, Key(alice)", rec)
	}
	if !rec.IssuedAt().Equal(identitytest.Issued) {
		t.Errorf("IssuedAt() = %v; want %v", rec.IssuedAt(), identitytest.Issued)
	}
}

func TestFastKDFLoads(t *testing.T) {
	path := t.TempDir() + "/key"
	k := identitytest.Key("carol")
	if err := identity.SaveKeyFileKDF(path, k, []byte("pw"), identitytest.FastKDF); err != nil {
		t.Fatalf("SaveKeyFileKDF(FastKDF) error = %v", err)
	}
	got, err := identity.LoadKeyFile(path, []byte("pw"))
	if err != nil {
		t.Fatalf("LoadKeyFile error = %v; want nil", err)
	}
	if !got.Equal(k) {
		t.Errorf("LoadKeyFile = %s; want Key(carol) %s", got.ID(), k.ID())
	}
}
