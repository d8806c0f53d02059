package collections

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/canon"
)

// parseID decodes a peer ID string, which must be in its canonical text form
// and name an Ed25519 key.
func parseID(s string) (lpeer.ID, error) {
	if s == "" || len(s) > 128 {
		return "", fmt.Errorf("%w: peer ID %q", ErrMalformed, s)
	}
	id, err := lpeer.Decode(s)
	if err != nil {
		return "", fmt.Errorf("%w: peer ID %q: %v", ErrMalformed, s, err)
	}
	if id.String() != s {
		return "", fmt.Errorf("%w: peer ID %q is not in canonical form", ErrMalformed, s)
	}
	if _, err := identity.PublicKeyFromID(id); err != nil {
		return "", fmt.Errorf("%w: peer ID %q: %v", ErrMalformed, s, err)
	}
	return id, nil
}

// validateID checks a folder or report ID: 1 to 128 bytes of letters,
// digits, '.', '-' and '_', starting with a letter or digit.
func validateID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("%w: ID %q must be 1 to 128 characters", ErrMalformed, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '.' || c == '-' || c == '_')
		if !ok {
			return fmt.Errorf("%w: ID %q: use letters, digits, '.', '-' and '_', starting with a letter or digit", ErrMalformed, id)
		}
	}
	return nil
}

// validateText checks a free-text name: 1 to 256 bytes of printable UTF-8.
func validateText(s string) error {
	if s == "" || len(s) > maxTextSize || !utf8.ValidString(s) {
		return fmt.Errorf("%w: %q must be 1 to %d bytes of UTF-8", ErrMalformed, s, maxTextSize)
	}
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return fmt.Errorf("%w: %q has unprintable characters", ErrMalformed, s)
	}
	return nil
}

// mustBeCanonical checks that data is exactly the canonical encoding of v,
// which was decoded from it. It makes every accepted encoding unique, so
// hashes over bytes identify values.
func mustBeCanonical(data []byte, v any) error {
	again, err := canon.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !bytes.Equal(again, data) {
		return fmt.Errorf("%w: encoding is not canonical", ErrMalformed)
	}
	return nil
}

// decodeCanonical decodes data into v with a size cap and requires it to be
// canonical.
func decodeCanonical(data []byte, v any, max int) error {
	if len(data) > max {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), max)
	}
	if err := canon.Unmarshal(data, v, max); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return mustBeCanonical(data, v)
}

// kindOfKey is the collection a key belongs to, or 0.
func kindOfKey(key string) Kind {
	switch {
	case key == DomainKey, key == ChainKey, strings.HasPrefix(key, UserPrefix), strings.HasPrefix(key, HostPrefix):
		return Domain
	case strings.HasPrefix(key, FolderPrefix), strings.HasPrefix(key, DevicePrefix):
		return Catalog
	case strings.HasPrefix(key, ReportPrefix):
		return Report
	}
	return 0
}

// ValidateKey checks that key is well formed and belongs to collection k.
func ValidateKey(k Kind, key string) error {
	if len(key) > MaxKeySize {
		return fmt.Errorf("%w: key is %d bytes, limit %d", ErrTooLarge, len(key), MaxKeySize)
	}
	if got := kindOfKey(key); got != k || !k.Valid() {
		return fmt.Errorf("%w: key %q does not belong to collection %s", ErrMalformed, key, k)
	}
	var err error
	switch {
	case strings.HasPrefix(key, UserPrefix):
		if e := identity.ValidateName(key[len(UserPrefix):]); e != nil {
			err = fmt.Errorf("%w: %v", ErrMalformed, e)
		}
	case strings.HasPrefix(key, HostPrefix):
		_, err = parseID(key[len(HostPrefix):])
	case strings.HasPrefix(key, FolderPrefix):
		err = validateID(key[len(FolderPrefix):])
	case strings.HasPrefix(key, DevicePrefix):
		_, err = parseID(key[len(DevicePrefix):])
	case strings.HasPrefix(key, ReportPrefix):
		err = validateID(key[len(ReportPrefix):])
	}
	if err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	return nil
}

// DecodeValue decodes and validates the record stored at key of collection
// k. The encoding must be canonical and the record's own key must be key.
// The result is one of DomainInfo, Chain, User, Host, Folder, Device,
// ReportRecord.
func DecodeValue(k Kind, key string, data []byte) (Value, error) {
	if err := ValidateKey(k, key); err != nil {
		return nil, err
	}
	var v Value
	var err error
	switch {
	case key == DomainKey:
		var d DomainInfo
		err = decodeCanonical(data, &d, MaxValueSize)
		v = d
	case key == ChainKey:
		var c Chain
		err = decodeCanonical(data, &c, MaxValueSize)
		v = c
	case strings.HasPrefix(key, UserPrefix):
		var u User
		err = decodeCanonical(data, &u, MaxValueSize)
		v = u
	case strings.HasPrefix(key, HostPrefix):
		var h Host
		err = decodeCanonical(data, &h, MaxValueSize)
		v = h
	case strings.HasPrefix(key, FolderPrefix):
		var f Folder
		err = decodeCanonical(data, &f, MaxValueSize)
		v = f
	case strings.HasPrefix(key, DevicePrefix):
		var d Device
		err = decodeCanonical(data, &d, MaxValueSize)
		v = d
	case strings.HasPrefix(key, ReportPrefix):
		var r ReportRecord
		err = decodeCanonical(data, &r, MaxValueSize)
		v = r
	}
	if err != nil {
		return nil, fmt.Errorf("record %s/%s: %w", k, key, err)
	}
	if err := v.Validate(); err != nil {
		return nil, fmt.Errorf("record %s/%s: %w", k, key, err)
	}
	if got := v.Key(); got != key {
		return nil, fmt.Errorf("%w: record at key %q names key %q", ErrMalformed, key, got)
	}
	return v, nil
}

// EncodeValue validates v and returns its canonical encoding.
func EncodeValue(v Value) ([]byte, error) {
	if err := v.Validate(); err != nil {
		return nil, err
	}
	b, err := canon.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %s record: %w", v.Collection(), err)
	}
	if len(b) > MaxValueSize {
		return nil, fmt.Errorf("%w: %s record is %d bytes, limit %d", ErrTooLarge, v.Collection(), len(b), MaxValueSize)
	}
	return b, nil
}

// Put returns an update that stores v at its key. The caller fills in
// Author, Seq, Clock and Issued (see State.Prepare).
func Put(v Value) (Update, error) {
	b, err := EncodeValue(v)
	if err != nil {
		return Update{}, err
	}
	return Update{Collection: v.Collection(), Key: v.Key(), Value: b}, nil
}

// Delete returns an update that deletes the record at key of collection k
// (a tombstone). The caller fills in Author, Seq, Clock and Issued.
func Delete(k Kind, key string) Update {
	return Update{Collection: k, Key: key, Delete: true}
}
