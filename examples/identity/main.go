package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/baton-sync/baton/identity"
)

// demoPassphrase protects the demo key. Real hosts read theirs from a prompt
// or a passphrase file.
const demoPassphrase = "a demo passphrase, not a secret"

// demoKDF keeps the demo quick. Real key files use identity.DefaultKDF.
var demoKDF = identity.KDFParams{Time: 1, Memory: 8 << 10, Threads: 1}

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "identity example:", err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	dir, err := os.MkdirTemp("", "baton-identity-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	key, err := saveAndLoad(w, dir)
	if err != nil {
		return err
	}
	rec, err := signRecord(w, key)
	if err != nil {
		return err
	}
	return rotate(w, key, rec.Name)
}

// saveAndLoad is step 1: a host key, saved encrypted in dir and loaded
// back.
func saveAndLoad(w io.Writer, dir string) (*identity.PrivateKey, error) {
	key, err := identity.Generate(rand.Reader)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "host.key")
	if err := identity.SaveKeyFileKDF(path, key, []byte(demoPassphrase), demoKDF); err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "Made a new host key and saved it encrypted to %s (mode %04o).\n", filepath.Base(path), st.Mode().Perm())

	if _, err := identity.LoadKeyFile(path, nil); errors.Is(err, identity.ErrPassphraseRequired) {
		fmt.Fprintln(w, "Loading it without the passphrase is refused: the key is encrypted at rest.")
	} else {
		return nil, fmt.Errorf("loading without a passphrase: got %v, want ErrPassphraseRequired", err)
	}
	if _, err := identity.LoadKeyFile(path, []byte("guess")); errors.Is(err, identity.ErrWrongPassphrase) {
		fmt.Fprintln(w, "Loading it with a wrong passphrase is refused too.")
	} else {
		return nil, fmt.Errorf("loading with a wrong passphrase: got %v, want ErrWrongPassphrase", err)
	}
	loaded, err := identity.LoadKeyFile(path, []byte(demoPassphrase))
	if err != nil {
		return nil, err
	}
	if !loaded.Equal(key) {
		return nil, errors.New("the key loaded back is not the key saved")
	}
	fmt.Fprintln(w, "Loaded it back with the passphrase: same key.")
	fmt.Fprintf(w, "  peer ID:     %s\n", loaded.ID())
	fmt.Fprintf(w, "  fingerprint: %s (read this aloud to compare keys)\n", loaded.Fingerprint())
	fmt.Fprintf(w, "  printed:     %v (private keys never print)\n", loaded)
	return loaded, nil
}

// signRecord is step 2: a host record signed by loaded, verified, and a
// tampered copy rejected.
func signRecord(w io.Writer, loaded *identity.PrivateKey) (identity.HostRecord, error) {
	rec := identity.HostRecord{
		Name:         "s1",
		PublicKey:    loaded.Public(),
		PublicAddrs:  []string{"/dns4/s1.example.com/tcp/4001"},
		PrivateAddrs: []string{"/ip4/10.0.0.1/tcp/4001"},
		Role:         identity.RoleServer,
		Issued:       time.Now().UnixNano(),
	}
	env, err := identity.SignHostRecord(loaded, rec)
	if err != nil {
		return rec, err
	}
	wire, err := env.Marshal()
	if err != nil {
		return rec, err
	}
	fmt.Fprintf(w, "\nSigned a host record for %q (%d bytes on the wire).\n", rec.Name, len(wire))

	received, err := identity.UnmarshalEnvelope(wire)
	if err != nil {
		return rec, err
	}
	got, err := identity.OpenHostRecord(received)
	if err != nil {
		return rec, fmt.Errorf("verifying the host record: %w", err)
	}
	fmt.Fprintf(w, "Host record verified: %s is a %s at %v, signed by its own key %s.\n",
		got.Name, got.Role, got.PublicAddrs, got.PublicKey.Fingerprint())

	tampered, err := identity.UnmarshalEnvelope(wire)
	if err != nil {
		return rec, err
	}
	// An attacker edits the address in transit (same length, so the
	// encoding still parses).
	tampered.Payload = bytes.Replace(tampered.Payload, []byte("s1.example.com"), []byte("evil.example.c"), 1)
	if _, err := identity.OpenHostRecord(tampered); errors.Is(err, identity.ErrBadSignature) {
		fmt.Fprintln(w, "Tampered copy rejected: changing the address to evil.example.c breaks the signature.")
	} else {
		return rec, fmt.Errorf("opening a tampered record: got %v, want ErrBadSignature", err)
	}
	return rec, nil
}

// rotate is step 3: the host name's key loaded rotated to a new key,
// signed by both, and a rotation signed by the new key alone rejected.
func rotate(w io.Writer, loaded *identity.PrivateKey, name string) error {
	next, err := identity.Generate(rand.Reader)
	if err != nil {
		return err
	}
	rotation, err := identity.Rotate(name, loaded, next, time.Now())
	if err != nil {
		return err
	}
	rot, err := identity.OpenRotation(rotation)
	if err != nil {
		return fmt.Errorf("verifying the rotation: %w", err)
	}
	fmt.Fprintf(w, "\nRotated %s to a new key.\n", rot.Name)
	fmt.Fprintf(w, "  old: %s\n  new: %s\n", rot.Old.Fingerprint(), rot.New.Fingerprint())
	fmt.Fprintln(w, "Rotation accepted: signed by the old key, then the new key.")

	forged, err := identity.Seal(identity.PurposeRotation, rotation.Payload, next)
	if err != nil {
		return err
	}
	if _, err := identity.OpenRotation(forged); errors.Is(err, identity.ErrWrongSigner) {
		fmt.Fprintln(w, "A rotation signed only by the new key is rejected: only the old key's holder can hand over.")
	} else {
		return fmt.Errorf("opening a forged rotation: got %v, want ErrWrongSigner", err)
	}
	return nil
}
