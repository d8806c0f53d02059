package identity

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/baton-sync/baton/internal/canon"
)

// Role is what a host does in a domain.
type Role string

// Host roles.
const (
	RoleServer Role = "server"
	RoleAgent  Role = "agent"
)

// ErrBadRecord reports a host record or rotation statement that does not
// hold together (bad name, bad address, signer not the host, ...).
var ErrBadRecord = errors.New("bad record")

// HostRecord is what a host says about itself: its name, key, the addresses
// desktop agents dial (public) and servers dial (private), and its role.
type HostRecord struct {
	Name         string    `cbor:"1,keyasint"`
	PublicKey    PublicKey `cbor:"2,keyasint"`
	PublicAddrs  []string  `cbor:"3,keyasint,omitempty"`
	PrivateAddrs []string  `cbor:"4,keyasint,omitempty"`
	Role         Role      `cbor:"5,keyasint"`
	Issued       int64     `cbor:"6,keyasint"` // unix nanoseconds
}

// ID is the host's peer ID.
func (r HostRecord) ID() lpeer.ID { return r.PublicKey.ID() }

// IssuedAt is when the record was signed.
func (r HostRecord) IssuedAt() time.Time { return time.Unix(0, r.Issued).UTC() }

// ValidateName checks a host or user name: 1 to 64 characters of letters,
// digits, '.', '-' and '_', starting with a letter or digit.
func ValidateName(name string) error {
	if name == "" || len(name) > 64 || !utf8.ValidString(name) {
		return fmt.Errorf("%w: name %q must be 1 to 64 characters", ErrBadRecord, name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			i > 0 && strings.ContainsRune(".-_", r)
		if !ok {
			return fmt.Errorf("%w: name %q: use letters, digits, '.', '-' and '_', starting with a letter or digit", ErrBadRecord, name)
		}
	}
	return nil
}

// Validate checks the record's fields.
func (r HostRecord) Validate() error {
	if err := ValidateName(r.Name); err != nil {
		return err
	}
	if r.PublicKey.IsZero() {
		return fmt.Errorf("%w: host %s has no public key", ErrBadRecord, r.Name)
	}
	if r.Role != RoleServer && r.Role != RoleAgent {
		return fmt.Errorf("%w: host %s has role %q, want server or agent", ErrBadRecord, r.Name, r.Role)
	}
	if len(r.PublicAddrs)+len(r.PrivateAddrs) > 32 {
		return fmt.Errorf("%w: host %s lists too many addresses", ErrBadRecord, r.Name)
	}
	for _, list := range [][]string{r.PublicAddrs, r.PrivateAddrs} {
		for _, a := range list {
			// The canonical encoding refuses invalid UTF-8 on decode, so a
			// record carrying it would be signed but could never be opened.
			if !utf8.ValidString(a) {
				return fmt.Errorf("%w: host %s address %q is not valid UTF-8", ErrBadRecord, r.Name, a)
			}
			if _, err := ma.NewMultiaddr(a); err != nil {
				return fmt.Errorf("%w: host %s address %q: %v", ErrBadRecord, r.Name, a, err)
			}
		}
	}
	return nil
}

// SignHostRecord validates r and seals it with k, which must be r's key.
func SignHostRecord(k *PrivateKey, r HostRecord) (*Envelope, error) {
	if !k.Public().Equal(r.PublicKey) {
		return nil, fmt.Errorf("%w: signing host record %s with another host's key", ErrBadRecord, r.Name)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	payload, err := canon.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding host record %s: %w", r.Name, err)
	}
	return Seal(PurposeHostRecord, payload, k)
}

// OpenHostRecord verifies a signed host record: the signature, that the
// signer is the host the record describes, and the record's fields.
func OpenHostRecord(e *Envelope) (HostRecord, error) {
	signers, err := e.Open(PurposeHostRecord)
	if err != nil {
		return HostRecord{}, err
	}
	var r HostRecord
	if err := canon.Unmarshal(e.Payload, &r, 64<<10); err != nil {
		return HostRecord{}, fmt.Errorf("%w: host record: %v", ErrMalformed, err)
	}
	if len(signers) != 1 || !signers[0].Equal(r.PublicKey) {
		return HostRecord{}, fmt.Errorf("%w: host record for %s is not signed by that host", ErrWrongSigner, r.Name)
	}
	if err := r.Validate(); err != nil {
		return HostRecord{}, err
	}
	return r, nil
}

// Rotation says that the host holding Old now uses New. It is signed by both
// keys, so only the holder of both can make it.
type Rotation struct {
	Name   string    `cbor:"1,keyasint"`
	Old    PublicKey `cbor:"2,keyasint"`
	New    PublicKey `cbor:"3,keyasint"`
	Issued int64     `cbor:"4,keyasint"` // unix nanoseconds
}

// Rotate makes a rotation statement from old to new signed by both.
func Rotate(name string, old, new *PrivateKey, now time.Time) (*Envelope, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if old.Equal(new) {
		return nil, fmt.Errorf("%w: rotating %s to the same key", ErrBadRecord, name)
	}
	payload, err := canon.Marshal(Rotation{Name: name, Old: old.Public(), New: new.Public(), Issued: now.UnixNano()})
	if err != nil {
		return nil, fmt.Errorf("encoding rotation for %s: %w", name, err)
	}
	return Seal(PurposeRotation, payload, old, new)
}

// OpenRotation verifies a rotation statement: both signatures, by the old key
// then the new key it names.
func OpenRotation(e *Envelope) (Rotation, error) {
	signers, err := e.Open(PurposeRotation)
	if err != nil {
		return Rotation{}, err
	}
	var r Rotation
	if err := canon.Unmarshal(e.Payload, &r, 4<<10); err != nil {
		return Rotation{}, fmt.Errorf("%w: rotation: %v", ErrMalformed, err)
	}
	if len(signers) != 2 || !signers[0].Equal(r.Old) || !signers[1].Equal(r.New) {
		return Rotation{}, fmt.Errorf("%w: rotation for %s must be signed by the old key then the new key", ErrWrongSigner, r.Name)
	}
	if r.Old.Equal(r.New) {
		return Rotation{}, fmt.Errorf("%w: rotation for %s names the same key twice", ErrBadRecord, r.Name)
	}
	if err := ValidateName(r.Name); err != nil {
		return Rotation{}, err
	}
	return r, nil
}
