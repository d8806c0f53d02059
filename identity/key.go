package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/crypto"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
)

// ErrBadKey reports key material that is malformed or not Ed25519.
var ErrBadKey = errors.New("bad key")

// PrivateKey is a host's Ed25519 private key. It cannot be compared with ==
// and never prints its secret.
type PrivateKey struct {
	_ [0]func() // not comparable
	// priv returns the key. It is a func rather than the key itself so that
	// reflection-based printing (fmt with a bad verb or an unexported field,
	// dumpers) reaches only a code pointer, never the key bytes.
	priv func() crypto.PrivKey
}

func newPrivateKey(k crypto.PrivKey) *PrivateKey {
	return &PrivateKey{priv: func() crypto.PrivKey { return k }}
}

// PublicKey is a host's Ed25519 public key. The zero value is invalid.
type PublicKey struct {
	k crypto.PubKey
}

// Generate makes a new Ed25519 key from rand.
func Generate(rand io.Reader) (*PrivateKey, error) {
	priv, _, err := crypto.GenerateEd25519Key(rand)
	if err != nil {
		return nil, fmt.Errorf("generating ed25519 key: %w", err)
	}
	return newPrivateKey(priv), nil
}

// PrivateKeyFromSeed derives a key from a 32-byte Ed25519 seed.
func PrivateKeyFromSeed(seed []byte) (*PrivateKey, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: seed is %d bytes, want %d", ErrBadKey, len(seed), ed25519.SeedSize)
	}
	return privateFromStd(ed25519.NewKeyFromSeed(seed))
}

func privateFromStd(std ed25519.PrivateKey) (*PrivateKey, error) {
	priv, err := crypto.UnmarshalEd25519PrivateKey(std)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return newPrivateKey(priv), nil
}

// seed returns the 32-byte Ed25519 seed, the only secret form stored on disk.
func (k *PrivateKey) seed() []byte {
	raw, err := k.priv().Raw()
	if err != nil {
		panic(fmt.Sprintf("identity: raw ed25519 key: %v", err))
	}
	return raw[:ed25519.SeedSize]
}

// Public returns the matching public key.
func (k *PrivateKey) Public() PublicKey { return PublicKey{k: k.priv().GetPublic()} }

// ID returns the host's peer ID.
func (k *PrivateKey) ID() lpeer.ID { return k.Public().ID() }

// Libp2p returns the key in libp2p's form, for building a libp2p host.
func (k *PrivateKey) Libp2p() crypto.PrivKey { return k.priv() }

// Equal reports whether k and o are the same key, in constant time.
func (k *PrivateKey) Equal(o *PrivateKey) bool {
	if k == nil || o == nil {
		return k == o
	}
	return k.priv().Equals(o.priv())
}

// String redacts the key. String, GoString, Format and MarshalText have value
// receivers so that a PrivateKey copied into a struct is redacted too.
func (k PrivateKey) String() string { return "identity.PrivateKey(redacted)" }

// GoString redacts the key.
func (k PrivateKey) GoString() string { return k.String() }

// Format redacts the key under every verb.
func (k PrivateKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// MarshalText refuses: private keys are saved only through key files.
func (k PrivateKey) MarshalText() ([]byte, error) {
	return nil, errors.New("identity: refusing to encode a private key as text")
}

// ParsePublicKey decodes a raw 32-byte Ed25519 public key.
func ParsePublicKey(raw []byte) (PublicKey, error) {
	if len(raw) != ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("%w: public key is %d bytes, want %d", ErrBadKey, len(raw), ed25519.PublicKeySize)
	}
	pk, err := crypto.UnmarshalEd25519PublicKey(raw)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return PublicKey{k: pk}, nil
}

// PublicKeyFromID extracts the public key embedded in an Ed25519 peer ID.
func PublicKeyFromID(id lpeer.ID) (PublicKey, error) {
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: extracting public key from %s: %v", ErrBadKey, id, err)
	}
	if pk.Type() != crypto.Ed25519 {
		return PublicKey{}, fmt.Errorf("%w: %s is not an Ed25519 identity", ErrBadKey, id)
	}
	return PublicKey{k: pk}, nil
}

// Raw returns the 32-byte public key.
func (p PublicKey) Raw() []byte {
	if p.k == nil {
		return nil
	}
	raw, err := p.k.Raw()
	if err != nil {
		panic(fmt.Sprintf("identity: raw ed25519 public key: %v", err))
	}
	return raw
}

// IsZero reports whether p is the zero (invalid) key.
func (p PublicKey) IsZero() bool { return p.k == nil }

// Equal reports whether p and o are the same key.
func (p PublicKey) Equal(o PublicKey) bool { return bytes.Equal(p.Raw(), o.Raw()) }

// ID returns the peer ID of p.
func (p PublicKey) ID() lpeer.ID {
	if p.k == nil {
		return ""
	}
	id, err := lpeer.IDFromPublicKey(p.k)
	if err != nil {
		panic(fmt.Sprintf("identity: peer ID from ed25519 key: %v", err))
	}
	return id
}

// Libp2p returns the key in libp2p's form.
func (p PublicKey) Libp2p() crypto.PubKey { return p.k }

// String is the key's peer ID.
func (p PublicKey) String() string { return p.ID().String() }

// MarshalBinary encodes the raw 32-byte key, so PublicKey can sit in records.
func (p PublicKey) MarshalBinary() ([]byte, error) { return p.Raw(), nil }

// UnmarshalBinary decodes a raw 32-byte key.
func (p *PublicKey) UnmarshalBinary(b []byte) error {
	pk, err := ParsePublicKey(b)
	if err != nil {
		return err
	}
	*p = pk
	return nil
}
