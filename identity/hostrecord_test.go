package identity_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/internal/canon"
)

var issued = time.Date(2025, time.March, 4, 5, 6, 7, 8, time.UTC)

func aliceRecord() identity.HostRecord {
	return identity.HostRecord{
		Name:         "alice",
		PublicKey:    identitytest.Key("alice").Public(),
		PublicAddrs:  []string{"/ip4/203.0.113.7/tcp/4001", "/dns4/alice.example.com/udp/4001/quic-v1"},
		PrivateAddrs: []string{"/ip4/10.0.0.7/tcp/4001"},
		Role:         identity.RoleServer,
		Issued:       issued.UnixNano(),
	}
}

func TestHostRecordRoundTrip(t *testing.T) {
	want := aliceRecord()
	env, err := identity.SignHostRecord(identitytest.Key("alice"), want)
	if err != nil {
		t.Fatalf("SignHostRecord error = %v", err)
	}
	data, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := identity.UnmarshalEnvelope(data)
	if err != nil {
		t.Fatalf("UnmarshalEnvelope error = %v", err)
	}
	got, err := identity.OpenHostRecord(decoded)
	if err != nil {
		t.Fatalf("OpenHostRecord error = %v", err)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(identity.PublicKey.Equal)); diff != "" {
		t.Errorf("OpenHostRecord(SignHostRecord(r)) mismatch (-want +got):\n%s", diff)
	}
	if got.ID() != identitytest.Key("alice").ID() {
		t.Errorf("ID() = %s; want %s", got.ID(), identitytest.Key("alice").ID())
	}
	if !got.IssuedAt().Equal(issued) {
		t.Errorf("IssuedAt() = %v; want %v", got.IssuedAt(), issued)
	}
}

func TestSignHostRecordRefusesAnotherHostsKey(t *testing.T) {
	if env, err := identity.SignHostRecord(identitytest.Key("mallory"), aliceRecord()); !errors.Is(err, identity.ErrBadRecord) {
		t.Errorf("SignHostRecord(mallory, alice's record) = %v, %v; want ErrBadRecord", env, err)
	}
}

// A record naming alice but sealed by mallory (bypassing SignHostRecord) must
// not open.
func TestOpenHostRecordRefusesForeignSigner(t *testing.T) {
	own, err := identity.SignHostRecord(identitytest.Key("alice"), aliceRecord())
	if err != nil {
		t.Fatal(err)
	}
	forged, err := identity.Seal(identity.PurposeHostRecord, own.Payload, identitytest.Key("mallory"))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := identity.OpenHostRecord(forged); !errors.Is(err, identity.ErrWrongSigner) {
		t.Errorf("OpenHostRecord(alice's record sealed by mallory) = %+v, %v; want ErrWrongSigner", r, err)
	}
	twice, err := identity.Seal(identity.PurposeHostRecord, own.Payload, identitytest.Key("alice"), identitytest.Key("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := identity.OpenHostRecord(twice); !errors.Is(err, identity.ErrWrongSigner) {
		t.Errorf("OpenHostRecord(sealed twice by alice) = %v; want ErrWrongSigner", err)
	}
	other, err := identity.Seal(identity.PurposeUpdate, own.Payload, identitytest.Key("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := identity.OpenHostRecord(other); !errors.Is(err, identity.ErrWrongPurpose) {
		t.Errorf("OpenHostRecord(sealed as an update) = %v; want ErrWrongPurpose", err)
	}
}

func TestHostRecordValidation(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*identity.HostRecord)
	}{
		{"empty name", func(r *identity.HostRecord) { r.Name = "" }},
		{"name too long", func(r *identity.HostRecord) { r.Name = strings.Repeat("a", 65) }},
		{"name with space", func(r *identity.HostRecord) { r.Name = "al ice" }},
		{"name with slash", func(r *identity.HostRecord) { r.Name = "al/ice" }},
		{"name starting with dot", func(r *identity.HostRecord) { r.Name = ".alice" }},
		{"name starting with dash", func(r *identity.HostRecord) { r.Name = "-alice" }},
		{"name non-ascii", func(r *identity.HostRecord) { r.Name = "alicé" }},
		{"name with nul", func(r *identity.HostRecord) { r.Name = "al\x00ice" }},
		{"name invalid utf-8", func(r *identity.HostRecord) { r.Name = "al\xffice" }},
		{"no role", func(r *identity.HostRecord) { r.Role = "" }},
		{"bad role", func(r *identity.HostRecord) { r.Role = "master" }},
		{"role wrong case", func(r *identity.HostRecord) { r.Role = "Server" }},
		{"public addr not a multiaddr", func(r *identity.HostRecord) { r.PublicAddrs = []string{"203.0.113.7:4001"} }},
		{"public addr empty", func(r *identity.HostRecord) { r.PublicAddrs = []string{""} }},
		{"private addr bad ip", func(r *identity.HostRecord) { r.PrivateAddrs = []string{"/ip4/10.0.0.300/tcp/1"} }},
		{"private addr bad port", func(r *identity.HostRecord) { r.PrivateAddrs = []string{"/ip4/10.0.0.1/tcp/70000"} }},
		{"addr invalid utf-8", func(r *identity.HostRecord) { r.PrivateAddrs = []string{"/dns/\xe0"} }},
		{"unknown protocol", func(r *identity.HostRecord) { r.PrivateAddrs = []string{"/carrier-pigeon/1"} }},
		{"too many addrs", func(r *identity.HostRecord) {
			r.PublicAddrs = make([]string, 33)
			for i := range r.PublicAddrs {
				r.PublicAddrs[i] = "/ip4/10.0.0.1/tcp/1"
			}
		}},
		{"no public key", func(r *identity.HostRecord) { r.PublicKey = identity.PublicKey{} }},
	}
	for _, c := range cases {
		r := aliceRecord()
		c.modify(&r)
		if err := r.Validate(); !errors.Is(err, identity.ErrBadRecord) {
			t.Errorf("%s: Validate(%+v) = %v; want ErrBadRecord", c.name, r, err)
		}
		if _, err := identity.SignHostRecord(identitytest.Key("alice"), r); err == nil {
			t.Errorf("%s: SignHostRecord(%+v) = nil error; want an error", c.name, r)
		}
		// Sealed directly, bypassing SignHostRecord's checks: must not open.
		payload, err := canon.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		env, err := identity.Seal(identity.PurposeHostRecord, payload, identitytest.Key("alice"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := identity.OpenHostRecord(env); err == nil {
			t.Errorf("%s: OpenHostRecord(sealed invalid record) = %+v, nil; want an error", c.name, got)
		}
	}
}

func TestValidateNameAccepts(t *testing.T) {
	for _, name := range []string{"a", "A", "0", "s1", "alice.example-com_2", strings.Repeat("x", 64)} {
		if err := identity.ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v; want nil", name, err)
		}
	}
}

func TestOpenHostRecordTamperedPayload(t *testing.T) {
	env, err := identity.SignHostRecord(identitytest.Key("alice"), aliceRecord())
	if err != nil {
		t.Fatal(err)
	}
	for i := range env.Payload {
		for _, bit := range []byte{0x01, 0x80} {
			c := *env
			c.Payload = append([]byte(nil), env.Payload...)
			c.Payload[i] ^= bit
			if r, err := identity.OpenHostRecord(&c); !errors.Is(err, identity.ErrBadSignature) {
				t.Fatalf("OpenHostRecord(payload byte %d ^ %#x) = %+v, %v; want ErrBadSignature", i, bit, r, err)
			}
		}
	}
}

func TestRotationRoundTrip(t *testing.T) {
	old, new := identitytest.Key("alice"), identitytest.Key("alice-2")
	env, err := identity.Rotate("alice", old, new, issued)
	if err != nil {
		t.Fatalf("Rotate error = %v", err)
	}
	data, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := identity.UnmarshalEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := identity.OpenRotation(decoded)
	if err != nil {
		t.Fatalf("OpenRotation(Rotate(...)) error = %v", err)
	}
	want := identity.Rotation{Name: "alice", Old: old.Public(), New: new.Public(), Issued: issued.UnixNano()}
	if diff := cmp.Diff(want, got, cmp.Comparer(identity.PublicKey.Equal)); diff != "" {
		t.Errorf("OpenRotation mismatch (-want +got):\n%s", diff)
	}
	if err := decoded.OpenBy(identity.PurposeRotation, old.ID(), new.ID()); err != nil {
		t.Errorf("OpenBy(old, new) = %v; want nil", err)
	}
}

func TestRotateRefuses(t *testing.T) {
	k := identitytest.Key("alice")
	if _, err := identity.Rotate("alice", k, identitytest.Key("alice"), issued); !errors.Is(err, identity.ErrBadRecord) {
		t.Errorf("Rotate(k, k) = %v; want ErrBadRecord", err)
	}
	if _, err := identity.Rotate("bad name", k, identitytest.Key("alice-2"), issued); !errors.Is(err, identity.ErrBadRecord) {
		t.Errorf("Rotate(bad name) = %v; want ErrBadRecord", err)
	}
}

func TestOpenRotationRefuses(t *testing.T) {
	old, new, other := identitytest.Key("alice"), identitytest.Key("alice-2"), identitytest.Key("mallory")
	statement := func(r identity.Rotation) []byte {
		t.Helper()
		b, err := canon.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := statement(identity.Rotation{Name: "alice", Old: old.Public(), New: new.Public(), Issued: issued.UnixNano()})
	cases := []struct {
		name    string
		purpose identity.Purpose
		payload []byte
		keys    []*identity.PrivateKey
		want    error
	}{
		{"only old", identity.PurposeRotation, good, []*identity.PrivateKey{old}, identity.ErrWrongSigner},
		{"only new", identity.PurposeRotation, good, []*identity.PrivateKey{new}, identity.ErrWrongSigner},
		{"wrong order", identity.PurposeRotation, good, []*identity.PrivateKey{new, old}, identity.ErrWrongSigner},
		{"unrelated instead of new", identity.PurposeRotation, good, []*identity.PrivateKey{old, other}, identity.ErrWrongSigner},
		{"unrelated instead of old", identity.PurposeRotation, good, []*identity.PrivateKey{other, new}, identity.ErrWrongSigner},
		{"unrelated only", identity.PurposeRotation, good, []*identity.PrivateKey{other}, identity.ErrWrongSigner},
		{"extra signer", identity.PurposeRotation, good, []*identity.PrivateKey{old, new, other}, identity.ErrWrongSigner},
		{"wrong purpose", identity.PurposeHostRecord, good, []*identity.PrivateKey{old, new}, identity.ErrWrongPurpose},
		{"same key twice", identity.PurposeRotation,
			statement(identity.Rotation{Name: "alice", Old: old.Public(), New: old.Public()}),
			[]*identity.PrivateKey{old, old}, identity.ErrBadRecord},
		{"bad name", identity.PurposeRotation,
			statement(identity.Rotation{Name: "a b", Old: old.Public(), New: new.Public()}),
			[]*identity.PrivateKey{old, new}, identity.ErrBadRecord},
		{"not a rotation", identity.PurposeRotation, []byte("hello"), []*identity.PrivateKey{old, new}, identity.ErrMalformed},
	}
	for _, c := range cases {
		env, err := identity.Seal(c.purpose, c.payload, c.keys...)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := identity.OpenRotation(env); !errors.Is(err, c.want) {
			t.Errorf("%s: OpenRotation = %+v, %v; want %v", c.name, r, err, c.want)
		}
	}

	env, err := identity.Rotate("alice", old, new, issued)
	if err != nil {
		t.Fatal(err)
	}
	env.Payload = statement(identity.Rotation{Name: "alice", Old: old.Public(), New: other.Public(), Issued: issued.UnixNano()})
	if r, err := identity.OpenRotation(env); !errors.Is(err, identity.ErrBadSignature) {
		t.Errorf("OpenRotation(payload swapped to name mallory) = %+v, %v; want ErrBadSignature", r, err)
	}
}
