// Package identity holds baton's host identities: Ed25519 key pairs that are
// libp2p peer IDs, human fingerprints, key files (optionally encrypted at rest),
// domain-separated signatures, signed host records and key rotation statements.
//
// Usage:
//
//	key, _ := identity.Generate(rand.Reader)
//	env, _ := identity.Seal(identity.PurposeUpdate, payload, key)
//	wire, _ := env.Marshal()
//
//	env, _ = identity.UnmarshalEnvelope(wire)         // decodes only
//	signers, err := env.Open(identity.PurposeUpdate) // verifies; returns the signers
//
// Callers must Open (or OpenBy, OpenHostRecord, OpenRotation) an envelope
// before trusting its payload; UnmarshalEnvelope checks nothing but the form.
//
// A signature made for one Purpose never verifies for another: the signed
// bytes are "baton signature\x00", the purpose length as a uvarint, the
// purpose, then the message. Private keys never print: their String,
// GoString, Format and MarshalText methods redact or refuse.
//
// Every signed and stored format has golden-byte tests in testdata; a change
// that alters those bytes needs a new format version. Package identitytest
// provides deterministic keys for tests.
package identity
