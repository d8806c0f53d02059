package collections

import (
	"fmt"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/zeebo/blake3"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/canon"
)

// Size caps of the signed forms.
const (
	MaxUpdateSize    = MaxValueSize + 4<<10  // an encoded Update
	MaxSignedSize    = MaxUpdateSize + 4<<10 // an encoded SignedUpdate
	MaxCertifiedSize = MaxSignedSize + 4<<10 // an encoded Certified
)

// Update is one change to one record, as its author signs it.
type Update struct {
	Collection Kind   `cbor:"1,keyasint"`
	Key        string `cbor:"2,keyasint"`
	Delete     bool   `cbor:"3,keyasint"`
	Value      []byte `cbor:"4,keyasint"` // canonical record (EncodeValue); empty on delete
	Author     string `cbor:"5,keyasint"` // the signing host's peer ID
	Seq        uint64 `cbor:"6,keyasint"` // per author and collection, from 1
	Clock      uint64 `cbor:"7,keyasint"` // Lamport clock, from 1
	Issued     int64  `cbor:"8,keyasint"` // unix nanoseconds, informational
	// IfAbsent makes the update conditional: it is applied only if the
	// key holds no live record when its turn in the consensus log comes
	// (creating a user, a folder). Otherwise it fails with ErrConflict.
	IfAbsent bool `cbor:"9,keyasint,omitempty"`
	// IfPrev makes the update conditional: it is applied only if the
	// key's current record is the one with this hash (Record.Hash) when
	// its turn in the log comes (a read-modify-write such as a share).
	// Otherwise it fails with ErrConflict.
	IfPrev []byte `cbor:"10,keyasint,omitempty"`
}

// Validate checks the update on its own: collection and key agree, the
// value decodes as the record at the key (or is empty for a delete), and
// the author, sequence number and clock are in range.
func (u Update) Validate() error {
	if !u.Collection.Valid() {
		return fmt.Errorf("%w: unknown collection %d", ErrMalformed, u.Collection)
	}
	if _, err := parseID(u.Author); err != nil {
		return fmt.Errorf("update author: %w", err)
	}
	if u.Seq == 0 || u.Clock == 0 {
		return fmt.Errorf("%w: update %s/%s: sequence number and clock start at 1", ErrMalformed, u.Collection, u.Key)
	}
	if len(u.IfPrev) != 0 && len(u.IfPrev) != 32 {
		return fmt.Errorf("%w: update %s/%s: condition hash is %d bytes, want 32", ErrMalformed, u.Collection, u.Key, len(u.IfPrev))
	}
	if u.IfAbsent && len(u.IfPrev) != 0 {
		return fmt.Errorf("%w: update %s/%s has two conditions", ErrMalformed, u.Collection, u.Key)
	}
	if len(u.Value) > MaxValueSize {
		return fmt.Errorf("%w: update %s/%s value is %d bytes, limit %d", ErrTooLarge, u.Collection, u.Key, len(u.Value), MaxValueSize)
	}
	if u.Delete {
		if err := ValidateKey(u.Collection, u.Key); err != nil {
			return err
		}
		if len(u.Value) != 0 {
			return fmt.Errorf("%w: delete of %s/%s carries a value", ErrMalformed, u.Collection, u.Key)
		}
		if u.Key == DomainKey || u.Key == ChainKey {
			return fmt.Errorf("%w: %s/%s cannot be deleted", ErrMalformed, u.Collection, u.Key)
		}
		return nil
	}
	_, err := DecodeValue(u.Collection, u.Key, u.Value)
	return err
}

// Decode returns the record u stores (nil for a delete).
func (u Update) Decode() (Value, error) {
	if u.Delete {
		return nil, nil
	}
	return DecodeValue(u.Collection, u.Key, u.Value)
}

// IssuedAt is Issued as a time.
func (u Update) IssuedAt() time.Time { return time.Unix(0, u.Issued).UTC() }

// Marshal is u's canonical encoding: the payload its author signs.
func (u Update) Marshal() ([]byte, error) {
	b, err := canon.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("encoding update: %w", err)
	}
	return b, nil
}

// UnmarshalUpdate decodes and validates an update.
func UnmarshalUpdate(data []byte) (Update, error) {
	var u Update
	if err := decodeCanonical(data, &u, MaxUpdateSize); err != nil {
		return Update{}, fmt.Errorf("update: %w", err)
	}
	if err := u.Validate(); err != nil {
		return Update{}, err
	}
	return u, nil
}

const updateHashLabel = "baton/update-hash/v1\x00"

// hashUpdate identifies an update by its canonical payload: the same change
// certified twice, by different masters or epochs, has one hash.
func hashUpdate(payload []byte) [32]byte {
	h := blake3.New()
	h.WriteString(updateHashLabel)
	h.Write(payload)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// SignedUpdate is an update signed by its author (PurposeUpdate): what a
// slave proposes to the master. The zero value is invalid.
type SignedUpdate struct {
	raw    []byte // canonical envelope
	env    *identity.Envelope
	update Update
	hash   [32]byte
}

// SignUpdate validates u and signs it with key, which must be u's author.
// An empty u.Author is filled in with key's peer ID.
func SignUpdate(key *identity.PrivateKey, u Update) (SignedUpdate, error) {
	if u.Author == "" {
		u.Author = key.ID().String()
	}
	if u.Author != key.ID().String() {
		return SignedUpdate{}, fmt.Errorf("%w: signing an update by %s with the key of %s", ErrUnauthorized, u.Author, key.ID())
	}
	if err := u.Validate(); err != nil {
		return SignedUpdate{}, err
	}
	payload, err := u.Marshal()
	if err != nil {
		return SignedUpdate{}, err
	}
	env, err := identity.Seal(identity.PurposeUpdate, payload, key)
	if err != nil {
		return SignedUpdate{}, fmt.Errorf("signing update %s/%s: %w", u.Collection, u.Key, err)
	}
	raw, err := env.Marshal()
	if err != nil {
		return SignedUpdate{}, fmt.Errorf("encoding signed update: %w", err)
	}
	if len(raw) > MaxSignedSize {
		return SignedUpdate{}, fmt.Errorf("%w: signed update is %d bytes, limit %d", ErrTooLarge, len(raw), MaxSignedSize)
	}
	return SignedUpdate{raw: raw, env: env, update: u, hash: hashUpdate(payload)}, nil
}

// UnmarshalSignedUpdate decodes a signed update and checks its structure.
// It does not verify the signature: State.Verify and State.VerifyProposal do.
func UnmarshalSignedUpdate(data []byte) (SignedUpdate, error) {
	if len(data) > MaxSignedSize {
		return SignedUpdate{}, fmt.Errorf("%w: signed update is %d bytes, limit %d", ErrTooLarge, len(data), MaxSignedSize)
	}
	env, err := identity.UnmarshalEnvelope(data)
	if err != nil {
		return SignedUpdate{}, fmt.Errorf("%w: signed update: %v", ErrMalformed, err)
	}
	if err := mustBeCanonical(data, env); err != nil {
		return SignedUpdate{}, fmt.Errorf("signed update: %w", err)
	}
	if env.Purpose != identity.PurposeUpdate {
		return SignedUpdate{}, fmt.Errorf("%w: envelope purpose %q, want %q", ErrMalformed, env.Purpose, identity.PurposeUpdate)
	}
	if len(env.Signatures) != 1 {
		return SignedUpdate{}, fmt.Errorf("%w: signed update has %d signatures, want 1", ErrMalformed, len(env.Signatures))
	}
	u, err := UnmarshalUpdate(env.Payload)
	if err != nil {
		return SignedUpdate{}, err
	}
	raw := append([]byte(nil), data...)
	return SignedUpdate{raw: raw, env: env, update: u, hash: hashUpdate(env.Payload)}, nil
}

// IsZero reports whether s is the zero SignedUpdate.
func (s SignedUpdate) IsZero() bool { return s.env == nil }

// Marshal returns the canonical envelope bytes. The caller must not modify them.
func (s SignedUpdate) Marshal() []byte { return s.raw }

// Update is the update as signed. It is only verified once Verify or
// VerifyProposal accepted s.
func (s SignedUpdate) Update() Update { return s.update }

// Hash identifies the update (its canonical payload).
func (s SignedUpdate) Hash() [32]byte { return s.hash }

// verifyAuthor checks the author's signature and that the signer is the
// author the update names: the signer, never the relayer.
func (s SignedUpdate) verifyAuthor() error {
	if s.env == nil {
		return fmt.Errorf("%w: empty signed update", ErrMalformed)
	}
	signers, err := s.env.Open(identity.PurposeUpdate)
	if err != nil {
		return sigErr("author signature", err)
	}
	if len(signers) != 1 {
		return fmt.Errorf("%w: %d author signatures, want 1", ErrBadSignature, len(signers))
	}
	if got := signers[0].ID().String(); got != s.update.Author {
		return fmt.Errorf("%w: %w: update names author %s but is signed by %s", ErrBadSignature, identity.ErrWrongSigner, s.update.Author, got)
	}
	return nil
}

// certification is the payload a master signs (PurposeCertification).
type certification struct {
	Update    []byte `cbor:"1,keyasint"` // the author's signed update (envelope bytes)
	Epoch     uint64 `cbor:"2,keyasint"`
	MasterSeq uint64 `cbor:"3,keyasint"`
	Master    string `cbor:"4,keyasint"` // the certifying master's peer ID
}

// Certified is a signed update countersigned by the master of an epoch: what
// the master republishes and every host stores in its data files. The zero
// value is invalid.
type Certified struct {
	raw    []byte
	env    *identity.Envelope
	cert   certification
	signed SignedUpdate
	master lpeer.ID
}

// Certify countersigns su as master for epoch, with masterSeq its sequence
// number within the epoch (both from 1). It checks su's structure but not
// its author signature or write rules: the master calls State.VerifyProposal
// first (or uses VerifiedProposal.Certify, which does both).
func Certify(master *identity.PrivateKey, su SignedUpdate, epoch, masterSeq uint64) (Certified, error) {
	if su.IsZero() {
		return Certified{}, fmt.Errorf("%w: certifying an empty signed update", ErrMalformed)
	}
	if epoch == 0 || masterSeq == 0 {
		return Certified{}, fmt.Errorf("%w: epoch and master sequence number start at 1", ErrMalformed)
	}
	cert := certification{Update: su.raw, Epoch: epoch, MasterSeq: masterSeq, Master: master.ID().String()}
	payload, err := canon.Marshal(cert)
	if err != nil {
		return Certified{}, fmt.Errorf("encoding certification: %w", err)
	}
	env, err := identity.Seal(identity.PurposeCertification, payload, master)
	if err != nil {
		return Certified{}, fmt.Errorf("certifying update: %w", err)
	}
	raw, err := env.Marshal()
	if err != nil {
		return Certified{}, fmt.Errorf("encoding certified update: %w", err)
	}
	if len(raw) > MaxCertifiedSize {
		return Certified{}, fmt.Errorf("%w: certified update is %d bytes, limit %d", ErrTooLarge, len(raw), MaxCertifiedSize)
	}
	return Certified{raw: raw, env: env, cert: cert, signed: su, master: master.ID()}, nil
}

// UnmarshalCertified decodes a certified update and checks its structure.
// It does not verify signatures: State.Verify does.
func UnmarshalCertified(data []byte) (Certified, error) {
	if len(data) > MaxCertifiedSize {
		return Certified{}, fmt.Errorf("%w: certified update is %d bytes, limit %d", ErrTooLarge, len(data), MaxCertifiedSize)
	}
	env, err := identity.UnmarshalEnvelope(data)
	if err != nil {
		return Certified{}, fmt.Errorf("%w: certified update: %v", ErrMalformed, err)
	}
	if err := mustBeCanonical(data, env); err != nil {
		return Certified{}, fmt.Errorf("certified update: %w", err)
	}
	if env.Purpose != identity.PurposeCertification {
		return Certified{}, fmt.Errorf("%w: envelope purpose %q, want %q", ErrMalformed, env.Purpose, identity.PurposeCertification)
	}
	if len(env.Signatures) != 1 {
		return Certified{}, fmt.Errorf("%w: certified update has %d signatures, want 1", ErrMalformed, len(env.Signatures))
	}
	var cert certification
	if err := decodeCanonical(env.Payload, &cert, MaxCertifiedSize); err != nil {
		return Certified{}, fmt.Errorf("certification: %w", err)
	}
	if cert.Epoch == 0 || cert.MasterSeq == 0 {
		return Certified{}, fmt.Errorf("%w: certification epoch and master sequence number start at 1", ErrMalformed)
	}
	master, err := parseID(cert.Master)
	if err != nil {
		return Certified{}, fmt.Errorf("certification master: %w", err)
	}
	su, err := UnmarshalSignedUpdate(cert.Update)
	if err != nil {
		return Certified{}, err
	}
	raw := append([]byte(nil), data...)
	return Certified{raw: raw, env: env, cert: cert, signed: su, master: master}, nil
}

// IsZero reports whether c is the zero Certified.
func (c Certified) IsZero() bool { return c.env == nil }

// Marshal returns the canonical envelope bytes. The caller must not modify them.
func (c Certified) Marshal() []byte { return c.raw }

// Signed is the author's signed update inside the certification.
func (c Certified) Signed() SignedUpdate { return c.signed }

// Update is the certified update. It is only verified once Verify accepted c.
func (c Certified) Update() Update { return c.signed.update }

// Hash identifies the update (not the certification): the same update
// certified twice has one hash.
func (c Certified) Hash() [32]byte { return c.signed.hash }

// Epoch is the master term the certification was made in.
func (c Certified) Epoch() uint64 { return c.cert.Epoch }

// MasterSeq is the certification's sequence number within its epoch.
func (c Certified) MasterSeq() uint64 { return c.cert.MasterSeq }

// Master is the peer ID of the certifying master.
func (c Certified) Master() lpeer.ID { return c.master }

// verifyMaster checks the master's signature and that the signer is the
// master the certification names.
func (c Certified) verifyMaster() error {
	if c.env == nil {
		return fmt.Errorf("%w: empty certified update", ErrMalformed)
	}
	signers, err := c.env.Open(identity.PurposeCertification)
	if err != nil {
		return sigErr("master signature", err)
	}
	if len(signers) != 1 {
		return fmt.Errorf("%w: %d master signatures, want 1", ErrBadSignature, len(signers))
	}
	if got := signers[0].ID(); got != c.master {
		return fmt.Errorf("%w: %w: certification names master %s but is signed by %s", ErrBadSignature, identity.ErrWrongSigner, c.master, got)
	}
	return nil
}
