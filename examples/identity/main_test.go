package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run() error = %v\noutput:\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"saved it encrypted",
		"(mode 0600)",
		"without the passphrase is refused",
		"wrong passphrase is refused",
		"peer ID:     12D3KooW",
		"fingerprint: ",
		"identity.PrivateKey(redacted)",
		"Host record verified",
		"Tampered copy rejected",
		"Rotation accepted",
		"signed only by the new key is rejected",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("run() output lacks %q; output:\n%s", want, got)
		}
	}
}
