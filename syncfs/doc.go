// Package syncfs keeps folders in sync: name checks, ignore patterns,
// chunking and hashing, version vectors, the signed file index, the
// watcher's event aggregator, the pure sync plan and (later) the applier that
// writes to disk safely. It does not use libp2p networking.
//
// The pieces, lowest first:
//
//   - Names (CheckName, SafeJoin, CheckNoSymlinkTraversal, Canonical,
//     ClashIndex): every name received from a peer is a clean relative
//     slash path, and nothing is written outside the folder root or through
//     a symlink. Canonical (NFC plus case folding) finds names that would be
//     one file on macOS or Windows.
//   - Ignore patterns (ParseIgnore, Matcher): gitignore syntax in
//     .batonignore. The caller filters scans and snapshots with it; Plan does
//     not know about it.
//   - Blocks (Hasher, HashFile): content-defined chunks (restic's Rabin
//     chunker with the fixed Polynomial and DefaultChunking, identical on
//     every host) hashed with BLAKE3, plus the hash of the whole file.
//   - Vector: per-file version vectors, as Syncthing's.
//   - Index, FileInfo, SignIndex, OpenIndex: a device's entries, canonically
//     encoded and signed by the device with identity.PurposeIndex. OpenIndex
//     verifies the signature and every entry; the caller checks the signer's
//     rights in the Catalog and the sequence number.
//   - Aggregator: fed events and ticks with explicit times, returns batches
//     of paths to rescan. Events are hints; the scanner is the truth.
//   - Plan: given the local and remote snapshots, the actions that make the
//     local folder take the remote's changes. Pure and deterministic.
//
// # Usage
//
// The driver (one goroutine per folder, in package peer) owns the state and
// does the I/O:
//
//	idx, signer, err := syncfs.OpenIndex(msg)       // verify, then check rights
//	actions := syncfs.Plan(local, idx.Snapshot(), self)
//	// apply actions in order: fetch Need blocks from peers, copy Copy blocks
//	// from local files, verify every hash, then record each Action's File.
//
// Plan's contract: actions are ordered to be applied in sequence; every
// name in an action passes CheckName; concurrent changes resolve alike on
// every device, the loser kept as a conflict copy; a live entry beats a
// deletion; a directory holding live entries is never deleted; a name that
// clashes by case or normalization is skipped with a reason, never written
// over another.
package syncfs
