// Package folderstore is a server's store of folder versions: content-
// addressed blocks, each kept once whatever folder or version references it,
// and signed, chained index snapshots, one per change the server accepts,
// with history, retention and garbage collection.
//
// # Blocks
//
// BlockStore is the storage seam: Put, Get, Has, Delete and List of blocks
// keyed by the BLAKE3 hash of their content (syncfs.HashBytes). A block's
// hash is checked on Put and on Get: a tampered or damaged block is an
// error wrapping ErrCorruptBlock, never returned. Disk, the local-disk
// BlockStore and the only one for now, keeps one file per block at
// DIR/ab/abcdef… (64 hex digits under a directory named by the first two),
// plain files a backup tool can copy, each written to a temporary file,
// fsynced, renamed into place and its directory fsynced. A BlockStore that
// is a BatchPutter stores a batch at once: Disk.PutBatch, on Linux, makes
// a batch's temporary files durable with one syncfs(2), renames them and
// makes the renames durable with a second, so that a crash still leaves
// each block whole or absent.
//
// # Snapshots
//
// Store keeps, in one bbolt file, per folder:
//
//   - snapshots: sequence → header (folder, sequence, time, author, entry
//     count, previous root, root, evidence, server signature; for a
//     snapshot of Commit the index bytes and block list);
//   - entries: sequence ‖ name → the entry (syncfs.FileInfo) a snapshot of
//     Append changed;
//   - paths: name ‖ 0 ‖ sequence → nothing, so that a path's versions are
//     adjacent: History is a range scan, and Tree finds each path's version
//     at a sequence with one seek, never replaying the history;
//   - times: time ‖ sequence → nothing: SeqAt is one seek.
//
// A snapshot's Root is BLAKE3 in derive-key mode with RootContext over its
// header's canonical encoding (the previous snapshot's root included, so
// roots form a chain) and each entry's, in name order (RootOf). The server
// signs the root (identity.PrivateKey.Sign for PurposeSnapshot) when the
// store is opened WithServerKey; such a store then refuses every snapshot
// not signed by a trusted key. WithEvidence keeps the authoring device's
// signed index pages (syncfs.SignIndex) in the snapshot, checked on Append
// and on every read: each entry must be in a page exactly, and the author
// must have signed one.
//
// Tree, Export, History and Snapshot check every snapshot they read from
// against its root and signature before returning any of its data (an
// error wrapping ErrTampered otherwise), and every block against its hash.
// Verify checks everything: the chain, roots, signatures, evidence, that
// the indexes hold exactly the snapshots' entries and times, and every
// block. A paths index altered to hide a version makes Tree return the
// authentic earlier version; Verify reports it.
//
// Writes are crash-safe: Append takes its changes 256 at a time
// (appendChunk), stores and pins their blocks, makes them durable, then
// writes their entries in one fsynced bbolt transaction as pending
// entries of the snapshot to be; once every chunk is written, it commits
// the snapshot's header in a last transaction, and the snapshot exists
// from then on. Reads never see pending entries (they stop at a folder's
// last header), a collection counts their blocks as referenced, and the
// next Append or Commit of the folder, or the next Open, removes those of
// an Append that failed or a process that died. So a crash leaves the
// folder as it was or with the new snapshot complete, never one with a
// missing block, and an Append's memory does not grow with its change.
// AppendFrom takes the changes from an iterator, read a chunk at a time as
// they are written, so that a change of a million entries is never held
// whole (a server's archiver reads them from the folder's published
// index); a Comparison compares entries with a folder's latest tree a
// window at a time, checking each snapshot it reads from once. Snapshot
// times never go back: an Append dated before its predecessor gets the
// predecessor's time. An Append that keeps no entry
// commits nothing. WithRequester records who asked for a change its author
// made on their behalf (a server's restore); History shows it.
//
// # Retention
//
// A Policy (text form `all:1d,daily:30d,weekly:365d`, the default; see
// Policy) says which snapshots to keep; Plan, pure, lists those to drop at
// a given time, never the latest. Prune drops them in one transaction,
// merging each dropped snapshot's entries into the next kept one, so that
// every kept snapshot's tree is unchanged, and re-roots and re-signs the
// kept snapshots after the first dropped one.
//
// # Garbage collection
//
// GC deletes blocks no snapshot references. It marks (reads every kept
// snapshot's blocks in one transaction, each snapshot checked against its
// signed root: a tampered one stops it) and then sweeps, deleting a block
// only if it is not pinned (Pin: Append, Write and Commit pin theirs, a
// transfer pins the blocks it writes), not referenced by a snapshot
// committed since the mark, and, in a BlockStore that is an Ager, last
// written before the grace (GCOptions.Grace; a Put of a block already held
// renews it). It then removes the temporary files of crashed Puts older
// than the grace. A crash at any step leaves every referenced block.
//
// # Costs
//
// Tree and Export hold the tree's paths and one snapshot's share of the
// tree at a time (Tree returns the whole tree as a map; Export writes each
// share out before reading the next); each snapshot read is hashed whole
// to check its root. References is a seek per block; Usage scans the
// folder's headers and refs index, holding nothing that grows with them. History reads the snapshots that hold the path's
// versions. Prune rehashes the snapshots from the first dropped one on.
// GC holds the set of referenced blocks, 8 bytes each (the first 8 of
// their hash: blocks that share them are kept together), and Verify the
// set of their hashes (32 bytes each plus the map's overhead). No call holds all snapshots. Append holds
// one chunk of its changes at a time, encoded, with their blocks and a
// transaction of their entries (BenchmarkAppendWhole: a 100,000-entry
// Append in one call). Changed, which compares a folder's whole index with
// its latest tree, holds what differs and the set of snapshots it read
// from, never the tree. Every call lets go of the pages of the file's
// memory map it read or wrote, every 64 entries and once it is done
// (boltmap.Releaser), so that a walk of the history does not stay in the
// process's resident memory.
//
// # References and usage
//
// Per folder, a refs index (block hash ‖ sequence ‖ entry name → the
// block's size) is written with the entries in the same transactions
// (commit, Prune), checked whole by Verify, and built when a file of
// format version 2 is opened. References answers whether a folder's kept
// snapshots reference blocks with one seek each (a server gives an agent
// only such blocks); Usage counts a folder's kept snapshots, their time
// span and the distinct blocks they reference and their bytes, scanning
// the index. The index is not covered by the roots: it decides what may
// be given and what is reported, never what a read returns.
//
// # Export
//
// WriteTree writes entries as plain files under an os.Root, asking a
// BlockReader for each file's blocks in bounded batches and checking each
// block's size and hash before it is written. Export uses it with the
// store's blocks; a server's agent uses it with blocks from the server.
//
// # What is not built yet
//
// The removal of a folder's history, and any backend but the local disk.
// (Per-user quotas count the current trees, not the history: package
// foldersync.) Files of format version 1 (before roots and signatures)
// are refused.
//
// # Usage
//
//	blocks := folderstore.NewDisk(filepath.Join(dir, "blocks"))
//	st, err := folderstore.Open(filepath.Join(dir, "snapshots.db"), blocks, folderstore.WithServerKey(key))
//	defer st.Close()
//	snap, skipped, err := st.Append("photos", now, changes, device, readBlock, folderstore.WithEvidence(signedIndex))
//	seq, err := st.SeqAt("photos", when)
//	err = st.Export("photos", seq, dir)
//	_, err = st.Prune("photos", folderstore.DefaultPolicy, now)
//	_, err = st.GC(folderstore.GCOptions{Now: now})
package folderstore
