package identity

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/internal/canon"
)

// Purpose names what a signature is for. Signatures are made over the purpose
// and the message together, so a signature for one purpose never verifies as
// another.
type Purpose string

// The purposes baton signs for. Each names a record type and its version.
const (
	PurposeHostRecord    Purpose = "baton/host-record/v1"
	PurposeRotation      Purpose = "baton/key-rotation/v1"
	PurposeUpdate        Purpose = "baton/collection-update/v1"
	PurposeCertification Purpose = "baton/master-certification/v1"
	PurposeGenesis       Purpose = "baton/domain-genesis/v1"
	PurposeReceipt       Purpose = "baton/receipt/v1"
	PurposeDevice        Purpose = "baton/device-certificate/v1"
	PurposeIndex         Purpose = "baton/folder-index/v2" // v2: FileHash is FileHashOf(blocks)
	PurposeHeartbeat     Purpose = "baton/heartbeat/v1"
)

// Errors callers branch on.
var (
	ErrBadSignature = errors.New("bad signature")
	ErrWrongPurpose = errors.New("wrong purpose")
	ErrWrongSigner  = errors.New("wrong signer")
	ErrMalformed    = errors.New("malformed signed record")
)

// MaxEnvelopeSize caps a decoded envelope (4 MiB).
const MaxEnvelopeSize = 4 << 20

// MaxSignatures caps the signatures in a decoded envelope, so a hostile
// envelope cannot make the receiver verify thousands of them.
const MaxSignatures = 16

const signaturePrefix = "baton signature\x00"

// signedBytes is the exact byte string signed for purpose and msg:
// the prefix, the purpose length (uvarint), the purpose, then msg.
func signedBytes(purpose Purpose, msg []byte) []byte {
	b := make([]byte, 0, len(signaturePrefix)+binary.MaxVarintLen64+len(purpose)+len(msg))
	b = append(b, signaturePrefix...)
	b = binary.AppendUvarint(b, uint64(len(purpose)))
	b = append(b, purpose...)
	return append(b, msg...)
}

func validPurpose(p Purpose) error {
	if p == "" || len(p) > 128 || strings.ContainsRune(string(p), 0) || !utf8.ValidString(string(p)) {
		return fmt.Errorf("%w: invalid purpose %q", ErrMalformed, p)
	}
	return nil
}

// Sign signs msg for purpose.
func (k *PrivateKey) Sign(purpose Purpose, msg []byte) ([]byte, error) {
	if err := validPurpose(purpose); err != nil {
		return nil, err
	}
	sig, err := k.priv().Sign(signedBytes(purpose, msg))
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", purpose, err)
	}
	return sig, nil
}

// Verify checks sig over msg for purpose.
func (p PublicKey) Verify(purpose Purpose, msg, sig []byte) error {
	if p.k == nil {
		return fmt.Errorf("%w: no public key", ErrBadSignature)
	}
	if err := validPurpose(purpose); err != nil {
		return err
	}
	ok, err := p.k.Verify(signedBytes(purpose, msg), sig)
	if err != nil || !ok {
		return fmt.Errorf("%w: %s signature by %s does not verify", ErrBadSignature, purpose, p.ID())
	}
	return nil
}

// Signature is one signer's signature inside an Envelope.
type Signature struct {
	Signer PublicKey `cbor:"1,keyasint"`
	Sig    []byte    `cbor:"2,keyasint"`
}

// Envelope is a payload with its purpose and one or more signatures over
// (purpose, payload). Its canonical encoding is the wire and file form of every
// signed baton record.
type Envelope struct {
	Purpose    Purpose     `cbor:"1,keyasint"`
	Payload    []byte      `cbor:"2,keyasint"`
	Signatures []Signature `cbor:"3,keyasint"`
}

// Seal signs payload for purpose with each key, in order.
func Seal(purpose Purpose, payload []byte, keys ...*PrivateKey) (*Envelope, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("sealing %s: no signing key", purpose)
	}
	env := &Envelope{Purpose: purpose, Payload: payload}
	for _, k := range keys {
		sig, err := k.Sign(purpose, payload)
		if err != nil {
			return nil, err
		}
		env.Signatures = append(env.Signatures, Signature{Signer: k.Public(), Sig: sig})
	}
	return env, nil
}

// Open verifies every signature in e for purpose and returns the signers in
// order. It fails if e was sealed for another purpose, has no signature, or any
// signature does not verify.
func (e *Envelope) Open(purpose Purpose) ([]PublicKey, error) {
	if e.Purpose != purpose {
		return nil, fmt.Errorf("%w: envelope is %q, want %q", ErrWrongPurpose, e.Purpose, purpose)
	}
	return e.verify()
}

// Verify checks every signature in e for its own purpose and returns the
// signers. Use Open when the purpose is known in advance.
func (e *Envelope) Verify() ([]PublicKey, error) {
	if err := validPurpose(e.Purpose); err != nil {
		return nil, err
	}
	return e.verify()
}

func (e *Envelope) verify() ([]PublicKey, error) {
	if len(e.Signatures) == 0 {
		return nil, fmt.Errorf("%w: %s envelope has no signature", ErrBadSignature, e.Purpose)
	}
	signers := make([]PublicKey, 0, len(e.Signatures))
	for _, s := range e.Signatures {
		if err := s.Signer.Verify(e.Purpose, e.Payload, s.Sig); err != nil {
			return nil, err
		}
		signers = append(signers, s.Signer)
	}
	return signers, nil
}

// OpenBy is Open that also requires the signers to be exactly ids, in order.
func (e *Envelope) OpenBy(purpose Purpose, ids ...lpeer.ID) error {
	signers, err := e.Open(purpose)
	if err != nil {
		return err
	}
	if len(signers) != len(ids) {
		return fmt.Errorf("%w: %d signatures, want %d", ErrWrongSigner, len(signers), len(ids))
	}
	for i, s := range signers {
		if s.ID() != ids[i] {
			return fmt.Errorf("%w: signed by %s, want %s", ErrWrongSigner, s.ID(), ids[i])
		}
	}
	return nil
}

// Marshal encodes e canonically.
func (e *Envelope) Marshal() ([]byte, error) { return canon.Marshal(e) }

// UnmarshalEnvelope decodes an envelope without verifying it; call Open next.
func UnmarshalEnvelope(data []byte) (*Envelope, error) {
	var e Envelope
	if err := canon.Unmarshal(data, &e, MaxEnvelopeSize); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := validPurpose(e.Purpose); err != nil {
		return nil, err
	}
	if len(e.Signatures) > MaxSignatures {
		return nil, fmt.Errorf("%w: %d signatures, at most %d", ErrMalformed, len(e.Signatures), MaxSignatures)
	}
	return &e, nil
}
