// Package canon is baton's canonical binary encoding: deterministic CBOR
// (RFC 8949 core deterministic encoding) with size caps on every decode.
//
// Every signed or stored format in baton is encoded with Marshal, so the same
// value always yields the same bytes, and decoded with Unmarshal, which
// refuses oversized or deeply nested input before allocating for it.
package canon

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// MaxSize is the largest encoded value Unmarshal accepts (16 MiB).
const MaxSize = 16 << 20

// ErrTooLarge reports input larger than the decoder's cap.
var ErrTooLarge = errors.New("encoded value too large")

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(fmt.Sprintf("canon: building CBOR encoder: %v", err))
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:   16,
		MaxArrayElements:  1 << 20,
		MaxMapPairs:       1 << 20,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(fmt.Sprintf("canon: building CBOR decoder: %v", err))
	}
}

// Marshal encodes v canonically.
func Marshal(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonical encoding: %w", err)
	}
	return b, nil
}

// Unmarshal decodes data into v, refusing input over max bytes (MaxSize if
// max <= 0), unknown fields, duplicate keys, indefinite lengths, tags and
// trailing bytes.
func Unmarshal(data []byte, v any, max int) error {
	if max <= 0 {
		max = MaxSize
	}
	if len(data) > max {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), max)
	}
	if err := decMode.Unmarshal(data, v); err != nil {
		return fmt.Errorf("canonical decoding: %w", err)
	}
	return nil
}
