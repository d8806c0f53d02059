package identity_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
)

var fingerprintForm = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){4}$`)

func TestFingerprintStable(t *testing.T) {
	seen := map[string]string{}
	for i := range 200 {
		name := fmt.Sprintf("host%d", i)
		k := identitytest.Key(name)
		fp := k.Fingerprint()
		if !fingerprintForm.MatchString(fp) {
			t.Errorf("Key(%s).Fingerprint() = %q; want 5 groups of 5 Crockford base32 characters", name, fp)
		}
		if again := identitytest.Key(name).Public().Fingerprint(); again != fp {
			t.Errorf("Fingerprint of %s = %q then %q; want stable", name, fp, again)
		}
		if other, dup := seen[fp]; dup {
			t.Errorf("Fingerprint(%s) = Fingerprint(%s) = %q; want distinct", name, other, fp)
		}
		seen[fp] = name
		if got, err := identity.NormalizeFingerprint(fp); err != nil || got != fp {
			t.Errorf("NormalizeFingerprint(%q) = %q, %v; want itself", fp, got, err)
		}
	}
}

func TestNormalizeFingerprintAccepts(t *testing.T) {
	fp := identitytest.Key("alice").Fingerprint()
	body := strings.ReplaceAll(fp, "-", "")
	variants := []string{
		fp,
		strings.ToLower(fp),
		body,
		strings.ToLower(body),
		strings.ReplaceAll(fp, "-", " "),
		"  " + fp + " ",
		strings.ReplaceAll(fp, "0", "O"),
		strings.ReplaceAll(fp, "0", "o"),
		strings.ReplaceAll(fp, "1", "I"),
		strings.ReplaceAll(fp, "1", "l"),
		body[:3] + "-" + body[3:11] + " " + body[11:],
	}
	for _, in := range variants {
		if got, err := identity.NormalizeFingerprint(in); err != nil || got != fp {
			t.Errorf("NormalizeFingerprint(%q) = %q, %v; want %q", in, got, err, fp)
		}
	}
}

// equivalent reports whether NormalizeFingerprint reads a and b as the same
// character (case, O for 0, I and L for 1).
func equivalent(a, b byte) bool {
	canon := func(c byte) byte {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		switch c {
		case 'O':
			return '0'
		case 'I', 'L':
			return '1'
		}
		return c
	}
	return canon(a) == canon(b)
}

// Every single-character substitution of a valid fingerprint by any other
// printable ASCII character (that is not read as the same character) must be
// rejected, for many keys.
func TestNormalizeFingerprintRejectsEverySubstitution(t *testing.T) {
	for i := range 50 {
		fp := identitytest.Key(fmt.Sprintf("host%d", i)).Fingerprint()
		for pos := range len(fp) {
			for c := byte(0x20); c < 0x7f; c++ {
				if equivalent(c, fp[pos]) {
					continue
				}
				if fp[pos] == '-' && c == ' ' {
					continue // separators are interchangeable
				}
				in := fp[:pos] + string(c) + fp[pos+1:]
				if got, err := identity.NormalizeFingerprint(in); !errors.Is(err, identity.ErrBadFingerprint) {
					t.Errorf("NormalizeFingerprint(%q) = %q, %v; want ErrBadFingerprint (substituted %q at %d of %q)", in, got, err, c, pos, fp)
				}
			}
		}
	}
}

// Luhn mod 32 catches every swap of two adjacent different characters except
// 0 and Z (values 0 and 31), exactly as Luhn mod 10 misses 09 and 90.
func TestNormalizeFingerprintRejectsAdjacentSwaps(t *testing.T) {
	for i := range 200 {
		body := strings.ReplaceAll(identitytest.Key(fmt.Sprintf("host%d", i)).Fingerprint(), "-", "")
		for pos := 0; pos+1 < len(body); pos++ {
			a, b := body[pos], body[pos+1]
			if a == b || a == '0' && b == 'Z' || a == 'Z' && b == '0' {
				continue
			}
			in := body[:pos] + string(b) + string(a) + body[pos+2:]
			if got, err := identity.NormalizeFingerprint(in); !errors.Is(err, identity.ErrBadFingerprint) {
				t.Errorf("NormalizeFingerprint(%q) = %q, %v; want ErrBadFingerprint (swapped %c%c at %d)", in, got, err, a, b, pos)
			}
		}
	}
}

func TestNormalizeFingerprintRejectsMalformed(t *testing.T) {
	fp := identitytest.Key("alice").Fingerprint()
	body := strings.ReplaceAll(fp, "-", "")
	cases := []string{
		"",
		"-----",
		body[:24],
		body + "0",
		body[:24] + "U",
		body[:12] + "\u00e9" + body[13:],
		body[:12] + "\x00" + body[13:],
		strings.Replace(fp, "-", "_", 1),
		strings.Replace(fp, "-", "\t", 1),
	}
	// Non-ASCII look-alikes are refused even where they would case-fold to
	// the right character: dotless i (to I, read as 1), long s (to S),
	// Kelvin sign (K), fullwidth digits and letters.
	for i := range 20 {
		body := strings.ReplaceAll(identitytest.Key(fmt.Sprintf("host%d", i)).Fingerprint(), "-", "")
		for pos := range len(body) {
			for _, r := range "\u0131\u017f\u212a\uff10\uff11\uff21" {
				cases = append(cases, body[:pos]+string(r)+body[pos+1:])
			}
		}
	}
	for _, in := range cases {
		if got, err := identity.NormalizeFingerprint(in); !errors.Is(err, identity.ErrBadFingerprint) {
			t.Errorf("NormalizeFingerprint(%q) = %q, %v; want ErrBadFingerprint", in, got, err)
		}
	}
}
