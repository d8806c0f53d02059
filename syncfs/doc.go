// Package syncfs keeps folders in sync: scanning, chunking and hashing, the
// file index, the watcher's event aggregator, the pure sync plan and the
// applier that writes to disk safely. It does not use libp2p.
package syncfs
