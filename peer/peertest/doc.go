// Package peertest runs baton nodes in one process for tests: a domain of
// servers on 127.0.0.1 with OS-chosen ports and temporary data directories,
// with helpers to stop, restart and wait on them.
package peertest
