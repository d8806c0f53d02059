package identity

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
)

// ErrBadFingerprint reports a fingerprint that is malformed or whose check
// character does not match (a misread or mistyped character).
var ErrBadFingerprint = errors.New("bad fingerprint")

// fingerprintAlphabet is Crockford's base32: no I, L, O or U, so read-aloud
// and hand-typed fingerprints survive.
const fingerprintAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

const (
	fingerprintBody  = 24 // base32 characters of hash (120 bits)
	fingerprintGroup = 5
)

// Fingerprint is the human form of a public key: 24 base32 characters of a
// SHA-256 hash of the key plus one check character, in five groups of five,
// e.g. "7G3QK-2M9XA-R0BFT-Y4WNC-D8H1E".
func (p PublicKey) Fingerprint() string {
	sum := sha256.Sum256(append([]byte("baton fingerprint\x00"), p.Raw()...))
	body := base32Crockford(sum[:15]) // 15 bytes = 120 bits = 24 chars
	body += string(fingerprintAlphabet[checkChar(body)])
	var b strings.Builder
	for i := 0; i < len(body); i += fingerprintGroup {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(body[i : i+fingerprintGroup])
	}
	return b.String()
}

// Fingerprint is the key fingerprint of k's public key.
func (k *PrivateKey) Fingerprint() string { return k.Public().Fingerprint() }

func base32Crockford(b []byte) string {
	var out strings.Builder
	var acc uint32
	bits := 0
	for _, c := range b {
		acc = acc<<8 | uint32(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out.WriteByte(fingerprintAlphabet[(acc>>bits)&31])
		}
	}
	if bits > 0 {
		out.WriteByte(fingerprintAlphabet[(acc<<(5-bits))&31])
	}
	return out.String()
}

// checkChar is a Luhn mod 32 check over body, catching any single wrong
// character and every swap of adjacent characters except 0 and Z.
func checkChar(body string) int {
	factor, sum := 2, 0
	for i := len(body) - 1; i >= 0; i-- {
		v := strings.IndexByte(fingerprintAlphabet, body[i]) * factor
		sum += v/32 + v%32
		if factor == 2 {
			factor = 1
		} else {
			factor = 2
		}
	}
	return (32 - sum%32) % 32
}

// NormalizeFingerprint parses a fingerprint as a person typed it (any case,
// with or without dashes or spaces, O for 0 and I or L for 1), checks its
// check character and returns the canonical grouped form.
func NormalizeFingerprint(s string) (string, error) {
	var body strings.Builder
	for _, r := range s {
		// Only ASCII is folded: strings.ToUpper would also turn look-alikes
		// such as dotless i and long s into I and S.
		if r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		switch {
		case r == '-' || r == ' ':
			continue
		case r == 'O':
			r = '0'
		case r == 'I' || r == 'L':
			r = '1'
		}
		if r > 127 || strings.IndexRune(fingerprintAlphabet, r) < 0 {
			return "", fmt.Errorf("%w: %q contains %q", ErrBadFingerprint, s, r)
		}
		body.WriteRune(r)
	}
	all := body.String()
	if len(all) != fingerprintBody+1 {
		return "", fmt.Errorf("%w: %q has %d characters, want %d", ErrBadFingerprint, s, len(all), fingerprintBody+1)
	}
	if fingerprintAlphabet[checkChar(all[:fingerprintBody])] != all[fingerprintBody] {
		return "", fmt.Errorf("%w: %q fails its check character (misread or mistyped?)", ErrBadFingerprint, s)
	}
	var b strings.Builder
	for i := 0; i < len(all); i += fingerprintGroup {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(all[i : i+fingerprintGroup])
	}
	return b.String(), nil
}
