package syncfs

import (
	"math/rand/v2"
	"testing"
)

// Canonical's shortcut for ASCII names gives what the Unicode tables give:
// every ASCII character, and random ASCII names.
func TestCanonicalASCII(t *testing.T) {
	check := func(name string) {
		t.Helper()
		if got, want := Canonical(name), canonicalSlow(name); got != want {
			t.Errorf("Canonical(%q) = %q; want %q", name, got, want)
		}
	}
	for c := 1; c < 128; c++ {
		check("dir/" + string(rune(c)) + "x")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		b := make([]byte, 1+rng.IntN(40))
		for i := range b {
			b[i] = byte(1 + rng.IntN(127))
		}
		check(string(b))
	}
	for _, name := range []string{"Straße/ÄB", "K\u212a", "e\u0301"} {
		check(name)
	}
}
