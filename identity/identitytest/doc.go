// Package identitytest provides deterministic host identities for tests.
//
// Keys are derived from names, so the same name always yields the same key in
// every test run and on every machine, and golden files that hold signatures
// stay stable:
//
//	alice := identitytest.Key("alice")
//	env := identitytest.HostRecord(t, "alice", identity.RoleServer, "/ip4/10.0.0.1/tcp/4001")
//
// These keys are public knowledge; never use them outside tests.
package identitytest
