// Package peertest runs baton nodes in one process for tests: a domain of
// servers on 127.0.0.1 with OS-chosen ports and temporary data directories,
// with helpers to stop, restart and wait on them. It is a thin testing.TB
// wrapper over internal/sandbox, which builds, starts and waits on the
// domain: test hosts get identitytest keys and a fixed genesis time, and
// an error fails the test.
package peertest
