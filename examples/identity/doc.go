// Command identity walks through baton host identities end to end, offline:
// it makes a host key, saves it encrypted with a passphrase and loads it
// back, prints the peer ID and fingerprint, signs a host record and verifies
// it, shows that a tampered copy is rejected, and rotates to a new key.
//
// Run it with:
//
//	go run ./examples/identity
//
// Everything happens in a temporary directory that is removed at the end.
package main
