// Package folderstore is a server's store of folder versions: content-
// addressed blocks, each kept once whatever folder or version references it,
// and index snapshots, one per index the server accepts.
//
// # What is built
//
//   - BlockStore, the storage seam: Put, Get, Has, Delete and List of blocks
//     keyed by the BLAKE3 hash of their content (syncfs.HashBytes). A block's
//     hash is checked on Put and on Get: a tampered or damaged block is an
//     error wrapping ErrCorruptBlock, never returned.
//   - Disk, the local-disk BlockStore and the only one for now: one file per
//     block at DIR/ab/abcdef… (64 hex digits under a directory named by the
//     first two), plain files a backup tool can copy. A block is written to a
//     temporary file, fsynced, renamed into place and its directory fsynced.
//   - Store, the snapshots: one record per snapshot in a bbolt file (folder,
//     sequence, time, the signed index bytes as the caller gave them, and the
//     sorted list of block hashes it references). Commit refuses a snapshot
//     whose blocks are not all held, and writes the record in one fsynced
//     bbolt transaction, so a crash leaves a folder's snapshots as they were
//     or with the new one complete, never one with a missing block. Write
//     stores the blocks and then commits. Snapshots, Snapshot and Folders read
//     them back; Verify checks that every committed snapshot's blocks are
//     held and hash to their names.
//
// # What is not built yet
//
// Nothing imports this package yet. Not built: the server keeping its
// hosted folders here (server integration), signing and checking the
// snapshot's root hash (Store keeps the index bytes it is given and does
// not check signatures), history, restore and export commands, retention,
// garbage collection of unreferenced blocks and of temporary files a crash
// leaves behind, quotas, and any backend but the local disk. Commit checks
// that blocks are held before its transaction, so a collector, when there
// is one, must not delete blocks while a commit is under way.
//
// # Usage
//
//	blocks := folderstore.NewDisk(filepath.Join(dir, "blocks"))
//	st, err := folderstore.Open(filepath.Join(dir, "snapshots.db"), blocks)
//	defer st.Close()
//	for _, b := range newBlocks {
//		if err := blocks.Put(syncfs.HashBytes(b), b); err != nil { ... }
//	}
//	snap, err := st.Commit("photos", now, signedIndex, refs)
//
// Commit's promise holds only if every block was Put successfully first: a
// Put that failed may have left a block on disk that is not yet durable.
package folderstore
