package identity_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current code")

// golden compares got with testdata/name, or rewrites the file under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file: %v (run go test ./identity -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed: a signed or stored format is no longer byte-identical.\ngot  %x\nwant %x\n"+
			"If the change is intended, bump the format's version and run go test -update.", path, got, want)
	}
}

var goldenTime = time.Date(2025, time.June, 7, 8, 9, 10, 123456789, time.UTC)

func goldenHostRecord() identity.HostRecord {
	return identity.HostRecord{
		Name:         "s1.example",
		PublicKey:    identitytest.Key("s1").Public(),
		PublicAddrs:  []string{"/dns4/s1.example.com/tcp/4001", "/ip6/2001:db8::1/udp/4001/quic-v1"},
		PrivateAddrs: []string{"/ip4/10.1.2.3/tcp/4002"},
		Role:         identity.RoleServer,
		Issued:       goldenTime.UnixNano(),
	}
}

func TestGoldenHostRecordEnvelope(t *testing.T) {
	env, err := identity.SignHostRecord(identitytest.Key("s1"), goldenHostRecord())
	if err != nil {
		t.Fatal(err)
	}
	data, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "hostrecord.envelope.golden", data)

	// The stored bytes still decode and verify to the same record.
	stored, err := os.ReadFile(filepath.Join("testdata", "hostrecord.envelope.golden"))
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := identity.UnmarshalEnvelope(stored)
	if err != nil {
		t.Fatalf("UnmarshalEnvelope(golden) error = %v", err)
	}
	got, err := identity.OpenHostRecord(decoded)
	if err != nil {
		t.Fatalf("OpenHostRecord(golden) error = %v", err)
	}
	if diff := cmp.Diff(goldenHostRecord(), got, cmp.Comparer(identity.PublicKey.Equal)); diff != "" {
		t.Errorf("OpenHostRecord(golden) mismatch (-want +got):\n%s", diff)
	}
}

func TestGoldenAgentRecordEnvelope(t *testing.T) {
	r := identity.HostRecord{
		Name:      "laptop",
		PublicKey: identitytest.Key("laptop").Public(),
		Role:      identity.RoleAgent,
		Issued:    goldenTime.UnixNano(),
	}
	env, err := identity.SignHostRecord(identitytest.Key("laptop"), r)
	if err != nil {
		t.Fatal(err)
	}
	data, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "agentrecord.envelope.golden", data)
}

func TestGoldenRotationEnvelope(t *testing.T) {
	old, new := identitytest.Key("s1"), identitytest.Key("s1-2")
	env, err := identity.Rotate("s1.example", old, new, goldenTime)
	if err != nil {
		t.Fatal(err)
	}
	data, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "rotation.envelope.golden", data)

	stored, err := os.ReadFile(filepath.Join("testdata", "rotation.envelope.golden"))
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := identity.UnmarshalEnvelope(stored)
	if err != nil {
		t.Fatalf("UnmarshalEnvelope(golden) error = %v", err)
	}
	got, err := identity.OpenRotation(decoded)
	if err != nil {
		t.Fatalf("OpenRotation(golden) error = %v", err)
	}
	want := identity.Rotation{Name: "s1.example", Old: old.Public(), New: new.Public(), Issued: goldenTime.UnixNano()}
	if diff := cmp.Diff(want, got, cmp.Comparer(identity.PublicKey.Equal)); diff != "" {
		t.Errorf("OpenRotation(golden) mismatch (-want +got):\n%s", diff)
	}
}

// TestGoldenSignedBytes pins the exact bytes every signature covers, for each
// purpose: "baton signature\x00", uvarint(len(purpose)), purpose, message.
func TestGoldenSignedBytes(t *testing.T) {
	msg := []byte("message")
	var out bytes.Buffer
	for _, p := range allPurposes {
		got := identity.SignedBytes(p, msg)
		want := []byte("baton signature\x00")
		want = binary.AppendUvarint(want, uint64(len(p)))
		want = append(want, p...)
		want = append(want, msg...)
		if !bytes.Equal(got, want) {
			t.Errorf("SignedBytes(%s, %q) = %x; want %x", p, msg, got, want)
		}
		fmt.Fprintf(&out, "%s %x\n", p, got)
	}
	// A purpose of 128 bytes needs a two-byte uvarint length.
	long := identity.Purpose(strings.Repeat("p", 128))
	if got := identity.SignedBytes(long, nil)[16:18]; !bytes.Equal(got, []byte{0x80, 0x01}) {
		t.Errorf("length prefix of a 128-byte purpose = %x; want 8001", got)
	}
	golden(t, "signedbytes.golden", out.Bytes())
}

// TestGoldenSignatures pins Ed25519 signatures of each purpose by a fixed key.
func TestGoldenSignatures(t *testing.T) {
	k := identitytest.Key("s1")
	var out bytes.Buffer
	fmt.Fprintf(&out, "key %s\n", k.ID())
	for _, p := range allPurposes {
		sig, err := k.Sign(p, []byte("message"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%s %s\n", p, hex.EncodeToString(sig))
	}
	golden(t, "signatures.golden", out.Bytes())
}

func TestGoldenFingerprints(t *testing.T) {
	var out bytes.Buffer
	for _, name := range []string{"alice", "bob", "s1", "s2", "s3", "laptop"} {
		k := identitytest.Key(name)
		fmt.Fprintf(&out, "%s %s %s\n", name, k.ID(), k.Fingerprint())
	}
	golden(t, "fingerprints.golden", out.Bytes())
}

func TestGoldenPlaintextKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host.key")
	if err := identity.SaveKeyFile(path, identitytest.Key("s1"), nil); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "keyfile-plaintext.golden", data)
}

// An encrypted key file has a random salt and nonce, so it cannot be compared
// byte for byte; instead a stored file must keep loading.
func TestGoldenEncryptedKeyFile(t *testing.T) {
	stored := filepath.Join("testdata", "keyfile-encrypted.golden")
	if *update {
		if err := identity.SaveKeyFileKDF(stored, identitytest.Key("s1"), []byte("golden passphrase"), identitytest.FastKDF); err != nil {
			t.Fatal(err)
		}
	}
	// Key files must be 0600 to load, and git does not keep that mode.
	data, err := os.ReadFile(stored)
	if err != nil {
		t.Fatalf("reading golden file: %v (run go test ./identity -run %s -update)", err, t.Name())
	}
	path := filepath.Join(t.TempDir(), "host.key")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := identity.LoadKeyFile(path, []byte("golden passphrase"))
	if err != nil {
		t.Fatalf("LoadKeyFile(%s) error = %v", stored, err)
	}
	if !k.Equal(identitytest.Key("s1")) {
		t.Errorf("LoadKeyFile(%s) = %s; want %s", stored, k.ID(), identitytest.Key("s1").ID())
	}
	if _, err := identity.LoadKeyFile(path, []byte("wrong")); err == nil {
		t.Errorf("LoadKeyFile(%s, wrong passphrase) = nil error; want an error", stored)
	}
}
