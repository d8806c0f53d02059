// Package raftstore keeps a chain server's raft log durably: the hard state,
// the entries and the latest snapshot, in one bbolt file. It is what the
// driver writes before it sends the messages of a raft Ready, as the engine
// requires (persist HardState and entries durably before sending), and what
// it reads back on restart to rebuild the raft.MemoryStorage the engine runs
// on.
//
// # Usage
//
//	st, err := raftstore.Open(filepath.Join(dataDir, "raft.db"))
//	ms, err := st.Restore() // raft.Config.Storage
//	...
//	for rd := range node.Ready() {
//		if err := st.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
//			// stop: raft must not go on with a log it could not persist
//		}
//		if !raft.IsEmptySnap(rd.Snapshot) {
//			ms.ApplySnapshot(rd.Snapshot)
//		}
//		ms.Append(rd.Entries)
//		send(rd.Messages)
//		apply(rd.CommittedEntries)
//		node.Advance()
//	}
//
// After the state machine has made a snapshot at its applied index (with
// MemoryStorage.CreateSnapshot and Compact), SaveSnapshot stores it and
// drops the entries it covers.
//
// # What is stored
//
// After every Save the file holds what a MemoryStorage given the same calls
// (ApplySnapshot, Append, SetHardState) holds: a snapshot received from the
// leader replaces the whole log, an entry at index i replaces the stored
// entry at i and everything after it, and entries at or below the snapshot's
// index are not kept. Load and Restore therefore give back exactly the log
// the engine had in memory when Save last returned.
//
// Each Save is one bbolt transaction, fsynced before Save returns; a crash
// leaves the file as it was before or after it, never in between.
//
// # File layout
//
// The meta bucket holds the format version (key "version", a big-endian
// uint64, currently 1), the hard state ("hardstate") and the snapshot
// ("snapshot"), both protobuf-encoded. The entries bucket holds one
// protobuf-encoded raftpb.Entry per key, keyed by its index as a big-endian
// uint64 so that bbolt's key order is log order. A file of another format
// version is refused at Open.
//
// Only one process may have the file open: bbolt locks it, and Open gives up
// after a second with an error saying the file is in use.
package raftstore
