package identity_test

import (
	"bytes"
	"errors"
	"testing"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
)

var allPurposes = []identity.Purpose{
	identity.PurposeHostRecord,
	identity.PurposeRotation,
	identity.PurposeUpdate,
	identity.PurposeCertification,
	identity.PurposeGenesis,
	identity.PurposeReceipt,
	identity.PurposeDevice,
	identity.PurposeIndex,
	identity.PurposeHeartbeat,
}

func TestSignVerifyRoundTrip(t *testing.T) {
	k := identitytest.Key("alice")
	for _, p := range allPurposes {
		for _, msg := range [][]byte{nil, {}, []byte("hello"), bytes.Repeat([]byte{0xff}, 4096)} {
			sig, err := k.Sign(p, msg)
			if err != nil {
				t.Fatalf("Sign(%s, %d bytes) error = %v; want nil", p, len(msg), err)
			}
			if err := k.Public().Verify(p, msg, sig); err != nil {
				t.Errorf("Verify(%s, %d bytes, Sign(...)) = %v; want nil", p, len(msg), err)
			}
		}
	}
}

func TestSignatureNeverCrossesPurposes(t *testing.T) {
	k := identitytest.Key("alice")
	msg := []byte("the same message for every purpose")
	for _, signed := range allPurposes {
		sig, err := k.Sign(signed, msg)
		if err != nil {
			t.Fatalf("Sign(%s) error = %v", signed, err)
		}
		for _, checked := range allPurposes {
			err := k.Public().Verify(checked, msg, sig)
			if signed == checked {
				if err != nil {
					t.Errorf("Verify(%s, Sign(%s)) = %v; want nil", checked, signed, err)
				}
				continue
			}
			if !errors.Is(err, identity.ErrBadSignature) {
				t.Errorf("Verify(%s, Sign(%s)) = %v; want ErrBadSignature", checked, signed, err)
			}
		}
	}
}

// A purpose that is a prefix of another, with the message absorbing the rest,
// must not collide: the purpose is length-prefixed.
func TestPurposeBoundaryIsFixed(t *testing.T) {
	k := identitytest.Key("alice")
	sig, err := k.Sign("baton/a", []byte("b/msg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Public().Verify("baton/ab", []byte("/msg"), sig); !errors.Is(err, identity.ErrBadSignature) {
		t.Errorf("Verify(baton/ab, /msg, Sign(baton/a, b/msg)) = %v; want ErrBadSignature", err)
	}
}

func TestSignRejectsInvalidPurpose(t *testing.T) {
	k := identitytest.Key("alice")
	for _, p := range []identity.Purpose{"", "with\x00nul", "bad\xffutf-8", identity.Purpose(bytes.Repeat([]byte("x"), 129))} {
		if _, err := k.Sign(p, []byte("m")); !errors.Is(err, identity.ErrMalformed) {
			t.Errorf("Sign(%q) error = %v; want ErrMalformed", p, err)
		}
		if err := k.Public().Verify(p, []byte("m"), make([]byte, 64)); err == nil {
			t.Errorf("Verify(%q) = nil; want an error", p)
		}
		if env, err := identity.Seal(p, []byte("m"), k); err == nil {
			t.Errorf("Seal(%q) = %+v, nil; want an error (it could never be decoded)", p, env)
		}
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	k := identitytest.Key("alice")
	msg := []byte("a message worth signing")
	sig, err := k.Sign(identity.PurposeUpdate, msg)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, bit int) []byte {
		c := bytes.Clone(b)
		c[bit/8] ^= 1 << (bit % 8)
		return c
	}
	type tc struct {
		name     string
		key      identity.PublicKey
		msg, sig []byte
	}
	cases := []tc{
		{"wrong key", identitytest.Key("mallory").Public(), msg, sig},
		{"zero key", identity.PublicKey{}, msg, sig},
		{"empty sig", k.Public(), msg, nil},
		{"sig plus a byte", k.Public(), msg, append(bytes.Clone(sig), 0)},
		{"payload truncated", k.Public(), msg[:len(msg)-1], sig},
		{"payload extended", k.Public(), append(bytes.Clone(msg), 0), sig},
	}
	for n := 0; n < len(sig); n++ {
		cases = append(cases, tc{"sig truncated", k.Public(), msg, sig[:n]})
	}
	for bit := 0; bit < len(sig)*8; bit++ {
		cases = append(cases, tc{"sig bit flipped", k.Public(), msg, flip(sig, bit)})
	}
	for bit := 0; bit < len(msg)*8; bit++ {
		cases = append(cases, tc{"payload bit flipped", k.Public(), flip(msg, bit), sig})
	}
	for _, c := range cases {
		if err := c.key.Verify(identity.PurposeUpdate, c.msg, c.sig); !errors.Is(err, identity.ErrBadSignature) {
			t.Errorf("%s: Verify(%q, %x) = %v; want ErrBadSignature", c.name, c.msg, c.sig, err)
		}
	}
}

func TestEnvelopeSealOpen(t *testing.T) {
	a, b := identitytest.Key("alice"), identitytest.Key("bob")
	env, err := identity.Seal(identity.PurposeUpdate, []byte("payload"), a, b)
	if err != nil {
		t.Fatalf("Seal error = %v", err)
	}
	data, err := env.Marshal()
	if err != nil {
		t.Fatalf("Marshal error = %v", err)
	}
	got, err := identity.UnmarshalEnvelope(data)
	if err != nil {
		t.Fatalf("UnmarshalEnvelope(Marshal(env)) error = %v", err)
	}
	signers, err := got.Open(identity.PurposeUpdate)
	if err != nil {
		t.Fatalf("Open error = %v", err)
	}
	if len(signers) != 2 || !signers[0].Equal(a.Public()) || !signers[1].Equal(b.Public()) {
		t.Errorf("Open signers = %v; want [%s %s]", signers, a.ID(), b.ID())
	}
	if signers, err := got.Verify(); err != nil || len(signers) != 2 {
		t.Errorf("Verify() = %v, %v; want 2 signers, nil", signers, err)
	}
	if err := got.OpenBy(identity.PurposeUpdate, a.ID(), b.ID()); err != nil {
		t.Errorf("OpenBy(alice, bob) = %v; want nil", err)
	}
	if string(got.Payload) != "payload" {
		t.Errorf("Payload = %q; want %q", got.Payload, "payload")
	}
	again, _ := got.Marshal()
	if !bytes.Equal(again, data) {
		t.Errorf("Marshal(UnmarshalEnvelope(b)) = %x; want %x", again, data)
	}
}

func TestSealWithoutKeys(t *testing.T) {
	if env, err := identity.Seal(identity.PurposeUpdate, []byte("x")); err == nil {
		t.Errorf("Seal(no keys) = %+v, nil; want an error", env)
	}
}

func TestEnvelopeOpenFailures(t *testing.T) {
	a, b, m := identitytest.Key("alice"), identitytest.Key("bob"), identitytest.Key("mallory")
	seal := func(p identity.Purpose, keys ...*identity.PrivateKey) *identity.Envelope {
		t.Helper()
		env, err := identity.Seal(p, []byte("payload"), keys...)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	noSigs := seal(identity.PurposeUpdate, a)
	noSigs.Signatures = nil
	swapped := seal(identity.PurposeUpdate, a)
	swapped.Signatures[0].Signer = m.Public()
	tampered := seal(identity.PurposeUpdate, a, b)
	tampered.Payload = []byte("Payload")
	relabelled := seal(identity.PurposeUpdate, a)
	relabelled.Purpose = identity.PurposeReceipt
	oneBad := seal(identity.PurposeUpdate, a, b)
	oneBad.Signatures[1].Sig = oneBad.Signatures[0].Sig

	cases := []struct {
		name    string
		env     *identity.Envelope
		purpose identity.Purpose
		ids     []lpeer.ID
		want    error
	}{
		{"no signatures", noSigs, identity.PurposeUpdate, nil, identity.ErrBadSignature},
		{"signer swapped", swapped, identity.PurposeUpdate, []lpeer.ID{m.ID()}, identity.ErrBadSignature},
		{"payload tampered", tampered, identity.PurposeUpdate, []lpeer.ID{a.ID(), b.ID()}, identity.ErrBadSignature},
		{"purpose relabelled", relabelled, identity.PurposeReceipt, []lpeer.ID{a.ID()}, identity.ErrBadSignature},
		{"second signature bad", oneBad, identity.PurposeUpdate, []lpeer.ID{a.ID(), b.ID()}, identity.ErrBadSignature},
		{"wrong purpose", seal(identity.PurposeUpdate, a), identity.PurposeReceipt, []lpeer.ID{a.ID()}, identity.ErrWrongPurpose},
		{"wrong signer", seal(identity.PurposeUpdate, m), identity.PurposeUpdate, []lpeer.ID{a.ID()}, identity.ErrWrongSigner},
		{"signers reordered", seal(identity.PurposeUpdate, b, a), identity.PurposeUpdate, []lpeer.ID{a.ID(), b.ID()}, identity.ErrWrongSigner},
		{"missing signer", seal(identity.PurposeUpdate, a), identity.PurposeUpdate, []lpeer.ID{a.ID(), b.ID()}, identity.ErrWrongSigner},
		{"extra signer", seal(identity.PurposeUpdate, a, m), identity.PurposeUpdate, []lpeer.ID{a.ID()}, identity.ErrWrongSigner},
	}
	for _, c := range cases {
		err := c.env.OpenBy(c.purpose, c.ids...)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: OpenBy(%s) = %v; want %v", c.name, c.purpose, err, c.want)
		}
		if c.want == identity.ErrWrongSigner {
			continue // the signatures themselves are fine
		}
		if _, err := c.env.Open(c.purpose); !errors.Is(err, c.want) {
			t.Errorf("%s: Open(%s) = %v; want %v", c.name, c.purpose, err, c.want)
		}
	}
}

func TestUnmarshalEnvelopeRejects(t *testing.T) {
	valid, err := identitytest.HostRecord(t, "alice", identity.RoleAgent).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":          nil,
		"not cbor":       []byte("{}"),
		"trailing byte":  append(bytes.Clone(valid), 0),
		"truncated":      valid[:len(valid)-1],
		"unknown field":  {0xa1, 0x04, 0x00},
		"empty purpose":  {0xa1, 0x01, 0x60},
		"too large":      make([]byte, identity.MaxEnvelopeSize+1),
		"duplicate keys": {0xa2, 0x01, 0x61, 'x', 0x01, 0x61, 'y'},
	}
	for name, data := range cases {
		if env, err := identity.UnmarshalEnvelope(data); err == nil {
			t.Errorf("%s: UnmarshalEnvelope(%x) = %+v, nil; want an error", name, data[:min(len(data), 32)], env)
		} else if !errors.Is(err, identity.ErrMalformed) {
			t.Errorf("%s: UnmarshalEnvelope error = %v; want ErrMalformed", name, err)
		}
	}
}
