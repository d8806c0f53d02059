// Package identity holds baton's host identities: Ed25519 key pairs that are
// libp2p peer IDs, human fingerprints, key files (optionally encrypted at rest),
// domain-separated signatures, signed host records and key rotation statements.
//
// Usage:
//
//	key, _ := identity.Generate(rand.Reader)
//	env, _ := identity.Seal(key, identity.PurposeHostRecord, payload)
//	signer, _ := env.Open(identity.PurposeHostRecord) // verifies; returns the signer
//
// A signature made for one Purpose never verifies for another: the signed
// bytes are prefixed with the purpose string. Private keys never print: their
// String, GoString and Format methods redact the key.
package identity
