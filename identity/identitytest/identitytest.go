package identitytest

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/baton-sync/baton/identity"
)

// seedLabel domain-separates test key seeds from any other use of SHA-256.
const seedLabel = "baton identitytest key v1\x00"

// Issued is the fixed issue time HostRecord stamps on records, so their
// encodings are stable.
var Issued = time.Date(2025, time.January, 2, 3, 4, 5, 0, time.UTC)

// FastKDF is a cheap argon2id setting (one pass over 64 KiB) for tests that
// save encrypted key files. It is far too weak for real keys.
var FastKDF = identity.KDFParams{Time: 1, Memory: 64, Threads: 1}

// Seed returns the 32-byte Ed25519 seed of Key(name): SHA-256 of a fixed
// label followed by name.
func Seed(name string) []byte {
	sum := sha256.Sum256([]byte(seedLabel + name))
	return sum[:]
}

// Key returns the deterministic test key for name. The same name always gives
// the same key.
func Key(name string) *identity.PrivateKey {
	k, err := identity.PrivateKeyFromSeed(Seed(name))
	if err != nil {
		panic("identitytest: deriving key for " + name + ": " + err.Error())
	}
	return k
}

// Record returns an unsigned host record for Key(name) with role, the given
// public addresses and the fixed Issued time.
func Record(name string, role identity.Role, publicAddrs ...string) identity.HostRecord {
	return identity.HostRecord{
		Name:        name,
		PublicKey:   Key(name).Public(),
		PublicAddrs: publicAddrs,
		Role:        role,
		Issued:      Issued.UnixNano(),
	}
}

// HostRecord returns the host record of Record(name, role, publicAddrs...)
// signed by Key(name). It fails the test if signing fails.
func HostRecord(t testing.TB, name string, role identity.Role, publicAddrs ...string) *identity.Envelope {
	t.Helper()
	env, err := identity.SignHostRecord(Key(name), Record(name, role, publicAddrs...))
	if err != nil {
		t.Fatalf("signing host record for %s: %v", name, err)
	}
	return env
}
