package collections_test

import (
	"errors"
	"testing"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
)

// reseal re-encodes an envelope after edit changed it.
func reseal(t *testing.T, raw []byte, edit func(*identity.Envelope)) []byte {
	t.Helper()
	env, err := identity.UnmarshalEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	edit(env)
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestForgery: tampered, misattributed, uncertified and stale updates are
// refused and change nothing.
func TestForgery(t *testing.T) {
	d, st := ruleBase(t)
	u := mustPut(collections.User{Name: "carol", HomeServer: ct.ID("s2").String()})
	seq, clock := st.NextSeq(ct.ID("s1"), collections.Domain), st.NextClock()
	good := ct.Sign(t, "s1", u, seq, clock)
	cert := func(su collections.SignedUpdate) collections.Certified { return d.Certify(t, "s1", su) }
	signed := func(raw []byte) collections.SignedUpdate {
		su, err := collections.UnmarshalSignedUpdate(raw)
		if err != nil {
			t.Fatalf("UnmarshalSignedUpdate: %v", err)
		}
		return su
	}
	certified := func(raw []byte) collections.Certified {
		c, err := collections.UnmarshalCertified(raw)
		if err != nil {
			t.Fatalf("UnmarshalCertified: %v", err)
		}
		return c
	}
	misattributed := func() collections.SignedUpdate {
		// s3 signs an update naming s1 as its author.
		u := u
		u.Author, u.Seq, u.Clock = ct.ID("s1").String(), seq, clock
		payload, err := u.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		env, err := identity.Seal(identity.PurposeUpdate, payload, ct.Key("s3"))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := env.Marshal()
		return signed(raw)
	}
	otherPurpose := func() collections.SignedUpdate {
		// A genuine s1 signature, but made for another purpose.
		raw := reseal(t, good.Marshal(), func(e *identity.Envelope) {
			sig, err := ct.Key("s1").Sign(identity.PurposeReceipt, e.Payload)
			if err != nil {
				t.Fatal(err)
			}
			e.Signatures[0].Sig = sig
		})
		return signed(raw)
	}
	tamperedPayload := func() collections.SignedUpdate {
		raw := reseal(t, good.Marshal(), func(e *identity.Envelope) {
			u := good.Update()
			u.Value = mustPut(collections.User{Name: "carol", HomeServer: ct.ID("s3").String()}).Value
			e.Payload, _ = u.Marshal()
		})
		return signed(raw)
	}
	certifiedBy := func(master string, epoch uint64) collections.Certified {
		c, err := collections.Certify(ct.Key(master), good, epoch, 99)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name string
		c    func() collections.Certified
		opts collections.VerifyOptions
		want error
	}{
		{"flipped author signature bit", func() collections.Certified {
			return cert(signed(reseal(t, good.Marshal(), func(e *identity.Envelope) { e.Signatures[0].Sig[10] ^= 0x20 })))
		}, collections.VerifyOptions{}, collections.ErrBadSignature},
		{"truncated author signature", func() collections.Certified {
			return cert(signed(reseal(t, good.Marshal(), func(e *identity.Envelope) { e.Signatures[0].Sig = e.Signatures[0].Sig[:63] })))
		}, collections.VerifyOptions{}, collections.ErrBadSignature},
		{"tampered payload", func() collections.Certified { return cert(tamperedPayload()) }, collections.VerifyOptions{}, collections.ErrBadSignature},
		{"author signature for another purpose", func() collections.Certified { return cert(otherPurpose()) }, collections.VerifyOptions{}, collections.ErrBadSignature},
		{"author field names someone else", func() collections.Certified { return cert(misattributed()) }, collections.VerifyOptions{}, collections.ErrBadSignature},
		{"flipped master signature bit", func() collections.Certified {
			return certified(reseal(t, cert(good).Marshal(), func(e *identity.Envelope) { e.Signatures[0].Sig[3] ^= 1 }))
		}, collections.VerifyOptions{}, collections.ErrBadSignature},
		{"truncated master signature", func() collections.Certified {
			return certified(reseal(t, cert(good).Marshal(), func(e *identity.Envelope) { e.Signatures[0].Sig = e.Signatures[0].Sig[:32] }))
		}, collections.VerifyOptions{}, collections.ErrBadSignature},
		{"master signature by another key", func() collections.Certified {
			return certified(reseal(t, cert(good).Marshal(), func(e *identity.Envelope) {
				sig, _ := ct.Key("s2").Sign(identity.PurposeCertification, e.Payload)
				e.Signatures[0] = identity.Signature{Signer: ct.Key("s2").Public(), Sig: sig}
			}))
		}, collections.VerifyOptions{}, collections.ErrBadSignature},
		{"certified by a server outside the chain", func() collections.Certified { return certifiedBy("spare", 5) }, collections.VerifyOptions{}, collections.ErrUnauthorized},
		{"certified by an agent", func() collections.Certified { return certifiedBy("agent", 5) }, collections.VerifyOptions{}, collections.ErrUnauthorized},
		{"certified by an unknown key", func() collections.Certified { return certifiedBy("stranger", 5) }, collections.VerifyOptions{}, collections.ErrUnauthorized},
		{"certified by a server that is not the master", func() collections.Certified { return certifiedBy("s1", 5) }, collections.VerifyOptions{Master: ct.ID("s2")}, collections.ErrUnauthorized},
		{"stale epoch", func() collections.Certified { return certifiedBy("s1", 2) }, collections.VerifyOptions{MinEpoch: 3}, collections.ErrStaleEpoch},
		{"stale epoch in history mode too", func() collections.Certified { return certifiedBy("s1", 2) }, collections.VerifyOptions{MinEpoch: 3, History: true}, collections.ErrStaleEpoch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c()
			before := st.Digest(collections.Domain)
			if _, err := st.Verify(c, tc.opts); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v; want %v", err, tc.want)
			}
			if st.Digest(collections.Domain) != before {
				t.Fatal("digest changed")
			}
		})
	}
	// The untampered update at the current epoch is fine.
	if _, err := st.Verify(certifiedBy("s1", 3), collections.VerifyOptions{MinEpoch: 3, Master: ct.ID("s1")}); err != nil {
		t.Fatalf("Verify(good) = %v", err)
	}
	if _, err := st.VerifyProposal(misattributed(), ct.ID("s1")); !errors.Is(err, collections.ErrBadSignature) || !errors.Is(err, identity.ErrWrongSigner) {
		t.Fatalf("VerifyProposal(misattributed) = %v; want ErrBadSignature, identity.ErrWrongSigner", err)
	}
	if _, err := st.VerifyProposal(good, ct.ID("spare")); !errors.Is(err, collections.ErrUnauthorized) {
		t.Fatalf("VerifyProposal(for a non-chain master) = %v; want ErrUnauthorized", err)
	}
}

// TestEveryBitFlip: flipping any single bit of a certified update makes it
// fail to decode or to verify.
func TestEveryBitFlip(t *testing.T) {
	d, st := ruleBase(t)
	u := mustPut(report("rx", "s2", "content"))
	c := d.Certify(t, "s1", ct.Sign(t, "s2", u, st.NextSeq(ct.ID("s2"), collections.Report), st.NextClock()))
	raw := c.Marshal()
	if _, err := st.Verify(c, collections.VerifyOptions{}); err != nil {
		t.Fatalf("Verify(original) = %v", err)
	}
	for i := range len(raw) * 8 {
		if testing.Short() && i%7 != 0 {
			continue
		}
		b := append([]byte(nil), raw...)
		b[i/8] ^= 1 << (i % 8)
		c, err := collections.UnmarshalCertified(b)
		if err != nil {
			continue
		}
		if _, err := st.Verify(c, collections.VerifyOptions{}); err == nil {
			t.Fatalf("bit %d flipped: Verify accepted", i)
		}
	}
}

// TestConfusedEnvelopes: one kind of signed record never decodes as another.
func TestConfusedEnvelopes(t *testing.T) {
	d, st := ruleBase(t)
	su := ct.Sign(t, "s2", mustPut(report("ry", "s2", "c")), st.NextSeq(ct.ID("s2"), collections.Report), st.NextClock())
	c := d.Certify(t, "s1", su)
	if _, err := collections.UnmarshalCertified(su.Marshal()); !errors.Is(err, collections.ErrMalformed) {
		t.Errorf("UnmarshalCertified(signed update) = %v; want ErrMalformed", err)
	}
	if _, err := collections.UnmarshalSignedUpdate(c.Marshal()); !errors.Is(err, collections.ErrMalformed) {
		t.Errorf("UnmarshalSignedUpdate(certified) = %v; want ErrMalformed", err)
	}
	if _, err := collections.OpenGenesis(c.Marshal()); err == nil {
		t.Errorf("OpenGenesis(certified) succeeded")
	}
	if _, err := collections.UnmarshalCertified(d.Genesis.Marshal()); !errors.Is(err, collections.ErrMalformed) {
		t.Errorf("UnmarshalCertified(genesis) = %v; want ErrMalformed", err)
	}
}

func identitytestRecord(t *testing.T, name string, role identity.Role) ([]byte, error) {
	t.Helper()
	return identitytest.HostRecord(t, name, role).Marshal()
}
