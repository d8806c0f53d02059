package main

import (
	"bytes"
	"encoding/pem"
	"fmt"

	"github.com/baton-sync/baton/identity"
)

// armorType is the PEM block type of an armored signed record: the base64 of
// the envelope's canonical CBOR (identity.Envelope.Marshal), wrapped at 64
// columns, so records can be pasted into mail or chat.
//
//	-----BEGIN BATON SIGNED RECORD-----
//	omFYTmJhdG9uL2hvc3QtcmVjb3JkL3YxAlhw...
//	-----END BATON SIGNED RECORD-----
const armorType = "BATON SIGNED RECORD"

// armorEnvelope encodes e in the armored text form.
func armorEnvelope(e *identity.Envelope) ([]byte, error) {
	raw, err := e.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encoding signed record: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: armorType, Bytes: raw}), nil
}

// decodeEnvelope reads a signed record in the armored form (text around the
// block is ignored) or as raw CBOR. It does not verify signatures.
func decodeEnvelope(data []byte) (*identity.Envelope, error) {
	raw, err := unarmor(data)
	if err != nil {
		return nil, err
	}
	return identity.UnmarshalEnvelope(raw)
}

// unarmor returns the envelope bytes of a signed record in the armored form
// (text around the block is ignored) or as raw CBOR, as they were signed.
func unarmor(data []byte) ([]byte, error) {
	if len(data) > 0 && data[0]>>5 == 5 {
		return data, nil // raw CBOR: starts with a map header
	}
	if i := bytes.Index(data, []byte("-----BEGIN ")); i >= 0 {
		block, _ := pem.Decode(data[i:])
		if block == nil {
			return nil, fmt.Errorf("damaged armor: no valid %q block", armorType)
		}
		if block.Type != armorType {
			return nil, fmt.Errorf("armored %q, not a %q", block.Type, armorType)
		}
		return block.Bytes, nil
	}
	return nil, fmt.Errorf("neither an armored %q nor a CBOR envelope", armorType)
}

// armorBytes armors envelope bytes that are already encoded (a genesis).
func armorBytes(raw []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: armorType, Bytes: raw})
}
