// Package memnet is an in-memory network for the folder sync engine's
// tests and benchmarks: hosts named by peer IDs, connected by hand,
// exchanging streams that behave as libp2p's do (half-close, reset,
// deadlines), with no sockets, keys or handshakes. A Host's Transport is
// a foldersync.Transport.
package memnet
