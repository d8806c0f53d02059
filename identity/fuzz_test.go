package identity_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/internal/canon"
)

// validEnvelopes are seed inputs: every signed format, encoded.
func validEnvelopes(f *testing.F) [][]byte {
	f.Helper()
	var out [][]byte
	add := func(env *identity.Envelope, err error) {
		if err != nil {
			f.Fatal(err)
		}
		b, err := env.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	add(identity.SignHostRecord(identitytest.Key("s1"), goldenHostRecord()))
	add(identitytest.HostRecord(f, "laptop", identity.RoleAgent), nil)
	add(identity.Rotate("s1.example", identitytest.Key("s1"), identitytest.Key("s1-2"), goldenTime))
	add(identity.Seal(identity.PurposeUpdate, []byte("update"), identitytest.Key("a"), identitytest.Key("b")))
	add(identity.Seal(identity.PurposeHeartbeat, nil, identitytest.Key("a")))
	return out
}

func FuzzUnmarshalEnvelope(f *testing.F) {
	for _, b := range validEnvelopes(f) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xa0})
	f.Add([]byte{0xa1, 0x01, 0x60})
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := identity.UnmarshalEnvelope(data)
		if err != nil {
			if !errors.Is(err, identity.ErrMalformed) {
				t.Fatalf("UnmarshalEnvelope error = %v; want ErrMalformed", err)
			}
			return
		}
		// Whatever decodes re-encodes canonically, and that encoding is a
		// fixed point.
		enc, err := env.Marshal()
		if err != nil {
			t.Fatalf("Marshal(UnmarshalEnvelope(%x)) error = %v", data, err)
		}
		again, err := identity.UnmarshalEnvelope(enc)
		if err != nil {
			t.Fatalf("UnmarshalEnvelope(Marshal(...)) error = %v", err)
		}
		enc2, err := again.Marshal()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("Marshal is not a fixed point: %x then %x (%v)", enc, enc2, err)
		}

		signers, verr := env.Verify()
		if verr == nil && len(signers) != len(env.Signatures) {
			t.Fatalf("Verify() = %d signers for %d signatures", len(signers), len(env.Signatures))
		}
		for _, p := range allPurposes {
			_, err := env.Open(p)
			if p != env.Purpose && !errors.Is(err, identity.ErrWrongPurpose) {
				t.Fatalf("Open(%s) of a %s envelope = %v; want ErrWrongPurpose", p, env.Purpose, err)
			}
			if p == env.Purpose && (err == nil) != (verr == nil) {
				t.Fatalf("Open(%s) = %v but Verify() = %v", p, err, verr)
			}
		}
		if r, err := identity.OpenHostRecord(env); err == nil {
			if err := r.Validate(); err != nil {
				t.Fatalf("OpenHostRecord accepted an invalid record %+v: %v", r, err)
			}
			if env.OpenBy(identity.PurposeHostRecord, r.ID()) != nil {
				t.Fatalf("OpenHostRecord accepted %+v not signed by its host", r)
			}
		}
		if r, err := identity.OpenRotation(env); err == nil {
			if env.OpenBy(identity.PurposeRotation, r.Old.ID(), r.New.ID()) != nil {
				t.Fatalf("OpenRotation accepted %+v not signed by old then new", r)
			}
		}
	})
}

// FuzzOpenHostRecord signs arbitrary payloads with a real key, so decoding
// and validation of the record (names, multiaddrs, roles) are reached.
func FuzzOpenHostRecord(f *testing.F) {
	for _, b := range validEnvelopes(f) {
		env, err := identity.UnmarshalEnvelope(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(env.Payload)
	}
	k := identitytest.Key("s1")
	f.Fuzz(func(t *testing.T, payload []byte) {
		env, err := identity.Seal(identity.PurposeHostRecord, payload, k)
		if err != nil {
			t.Fatal(err)
		}
		r, err := identity.OpenHostRecord(env)
		if err != nil {
			return
		}
		if !r.PublicKey.Equal(k.Public()) {
			t.Fatalf("OpenHostRecord accepted a record for %s signed by %s", r.ID(), k.ID())
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("OpenHostRecord accepted an invalid record: %v", err)
		}
		// An accepted record can be re-signed and opens to the same record.
		env2, err := identity.SignHostRecord(k, r)
		if err != nil {
			t.Fatalf("SignHostRecord(OpenHostRecord(...)) error = %v", err)
		}
		r2, err := identity.OpenHostRecord(env2)
		if err != nil {
			t.Fatalf("OpenHostRecord(re-signed) error = %v", err)
		}
		b1, _ := canon.Marshal(r)
		b2, _ := canon.Marshal(r2)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("re-signed record differs: %x vs %x", b1, b2)
		}
	})
}

// FuzzHostRecordFields builds records from arbitrary strings, reaching the
// multiaddr parser and name validation directly.
func FuzzHostRecordFields(f *testing.F) {
	f.Add("s1.example", "server", "/ip4/10.0.0.1/tcp/4001", "/dns4/a.example/udp/1/quic-v1")
	f.Add("laptop", "agent", "/ip6/::1/tcp/1", "")
	f.Add("x", "agent", "/ip4/1.2.3.4/tcp/1/p2p/12D3KooWSFbk4Qrkw9yKafnwQn7EC9bU44MoT48XYr6xRgDDUFdJ", "/unix/tmp/s")
	f.Add("-", "master", "/ip4/1.2.3.4/tcp/99999", "/certhash/uEiA")
	k := identitytest.Key("s1")
	f.Fuzz(func(t *testing.T, name, role, pub, priv string) {
		r := identity.HostRecord{Name: name, PublicKey: k.Public(), Role: identity.Role(role), Issued: 1}
		if pub != "" {
			r.PublicAddrs = []string{pub}
		}
		if priv != "" {
			r.PrivateAddrs = []string{priv}
		}
		env, err := identity.SignHostRecord(k, r)
		if err != nil {
			if !errors.Is(err, identity.ErrBadRecord) {
				t.Fatalf("SignHostRecord error = %v; want ErrBadRecord", err)
			}
			return
		}
		data, err := env.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		decoded, err := identity.UnmarshalEnvelope(data)
		if err != nil {
			t.Fatalf("UnmarshalEnvelope(signed record) error = %v", err)
		}
		got, err := identity.OpenHostRecord(decoded)
		if err != nil {
			t.Fatalf("OpenHostRecord(SignHostRecord(%+v)) error = %v", r, err)
		}
		if got.Name != name || string(got.Role) != role {
			t.Fatalf("OpenHostRecord = %+v; want %+v", got, r)
		}
	})
}

func FuzzOpenRotation(f *testing.F) {
	for _, b := range validEnvelopes(f) {
		env, err := identity.UnmarshalEnvelope(b)
		if err != nil {
			f.Fatal(err)
		}
		for order := range byte(4) {
			f.Add(env.Payload, order)
		}
	}
	old, new, other := identitytest.Key("s1"), identitytest.Key("s1-2"), identitytest.Key("mallory")
	orders := [][]*identity.PrivateKey{{old, new}, {new, old}, {old}, {old, other}}
	f.Fuzz(func(t *testing.T, payload []byte, order byte) {
		keys := orders[int(order)%len(orders)]
		env, err := identity.Seal(identity.PurposeRotation, payload, keys...)
		if err != nil {
			t.Fatal(err)
		}
		r, err := identity.OpenRotation(env)
		if err != nil {
			return
		}
		if len(keys) != 2 || !r.Old.Equal(keys[0].Public()) || !r.New.Equal(keys[1].Public()) || r.Old.Equal(r.New) {
			t.Fatalf("OpenRotation accepted %+v signed by %v", r, keys)
		}
		if err := identity.ValidateName(r.Name); err != nil {
			t.Fatalf("OpenRotation accepted a bad name: %v", err)
		}
	})
}

var canonicalFingerprint = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){4}$`)

func FuzzNormalizeFingerprint(f *testing.F) {
	for _, name := range []string{"alice", "bob", "s1"} {
		fp := identitytest.Key(name).Fingerprint()
		f.Add(fp)
		f.Add(strings.ToLower(strings.ReplaceAll(fp, "-", "")))
	}
	f.Add("")
	f.Add("OOOOO-IIIII-LLLLL-ooooo-iiiii")
	f.Add("\u0131\u017f\u212a")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := identity.NormalizeFingerprint(s)
		if err != nil {
			if !errors.Is(err, identity.ErrBadFingerprint) {
				t.Fatalf("NormalizeFingerprint(%q) error = %v; want ErrBadFingerprint", s, err)
			}
			return
		}
		if !canonicalFingerprint.MatchString(got) {
			t.Fatalf("NormalizeFingerprint(%q) = %q; not in canonical form", s, got)
		}
		if again, err := identity.NormalizeFingerprint(got); err != nil || again != got {
			t.Fatalf("NormalizeFingerprint(%q) = %q, %v; want itself", got, again, err)
		}
		for _, r := range s {
			if r > 127 {
				t.Fatalf("NormalizeFingerprint(%q) accepted non-ASCII %q", s, r)
			}
		}
	})
}

func FuzzLoadKeyFile(f *testing.F) {
	dir := f.TempDir()
	for i, pass := range [][]byte{nil, []byte("fuzz")} {
		path := filepath.Join(dir, "seed"+string(rune('0'+i)))
		if err := identity.SaveKeyFileKDF(path, identitytest.Key("s1"), pass, identitytest.FastKDF); err != nil {
			f.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"baton_host_key":1,"type":"ed25519","id":"x","seed":"AAAA"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "host.key")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		info, infoErr := identity.ReadKeyFileInfo(path)
		passes := [][]byte{nil}
		// Decrypt only with cheap argon2id parameters: a file may ask for
		// gigabytes, which is allowed but too slow to fuzz.
		var kf struct {
			KDF *identity.KDFParams `json:"argon2id"`
		}
		if json.Unmarshal(data, &kf) == nil && kf.KDF != nil &&
			uint64(kf.KDF.Time)*uint64(kf.KDF.Memory) <= 4<<10 {
			passes = append(passes, []byte("fuzz"), []byte("wrong"))
		}
		for _, pass := range passes {
			k, err := identity.LoadKeyFile(path, pass)
			if err != nil {
				if !strings.Contains(err.Error(), path) {
					t.Fatalf("LoadKeyFile error %q does not name the file", err)
				}
				continue
			}
			if infoErr != nil {
				t.Fatalf("LoadKeyFile succeeded but ReadKeyFileInfo failed: %v", infoErr)
			}
			if k.ID().String() != info.ID {
				t.Fatalf("LoadKeyFile = %s but the file says %s", k.ID(), info.ID)
			}
		}
	})
}

// FuzzSeal checks that whatever Seal accepts can be encoded, decoded and
// opened again: no envelope is signed that receivers could not read.
func FuzzSeal(f *testing.F) {
	for _, p := range allPurposes {
		f.Add(string(p), []byte("payload"))
	}
	f.Add("x\xff", []byte(nil))
	k := identitytest.Key("s1")
	f.Fuzz(func(t *testing.T, purpose string, payload []byte) {
		env, err := identity.Seal(identity.Purpose(purpose), payload, k)
		if err != nil {
			return
		}
		data, err := env.Marshal()
		if err != nil {
			t.Fatalf("Marshal(Seal(%q)) error = %v", purpose, err)
		}
		got, err := identity.UnmarshalEnvelope(data)
		if err != nil {
			t.Fatalf("UnmarshalEnvelope(Seal(%q)) error = %v", purpose, err)
		}
		if err := got.OpenBy(identity.Purpose(purpose), k.ID()); err != nil {
			t.Fatalf("OpenBy(Seal(%q)) error = %v", purpose, err)
		}
		if !bytes.Equal(got.Payload, payload) {
			t.Fatalf("payload = %x; want %x", got.Payload, payload)
		}
	})
}
