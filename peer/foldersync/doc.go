// Package foldersync moves folder changes between hosts over libp2p: the
// network side of folder sync, built on package syncfs.
//
// # Topology and rights
//
// Each folder (an iFolder of the Catalog) is hosted by its owner's home
// server and by the replicas its Catalog record names (Access.Hosts:
// collections.FolderHosts), which all keep a copy and take each other's
// changes as any peer's; its
// member devices sync with every hosting server (the connected ones
// first) and with each other: a device takes the index of every hosting
// server and of every
// connected device of the owner or of a read-write member (the connections
// are the peer package's: mDNS on a local network, or addresses it was
// given). Each host announces its changes to the peers that take them: a
// hosting server to the other hosting servers and every connected member
// device, a read-write device to the hosting servers and to the other
// connected member devices. So devices keep syncing through the replica
// while the home server is down, and the home server catches up when it
// is back. And two laptops that
// reach each other keep a folder in sync while its server is down, and the
// server, when it is back, takes their indexes as any other change.
// Versions travel unchanged: a change that reaches a device from another
// device and later from the server is the same version (no conflict);
// concurrent changes become conflict copies, the same on every host.
//
// A read-only member's index is applied by nobody, server or device. Its
// device follows the server and the writers' devices: where one of them
// changes an entry the device changed too, their version wins and the
// device's content is kept as a conflict copy; its other changes stay,
// counted in FolderStatus.LocalChanges (against the server's index),
// until Engine.Revert makes the folder the server's copy again (keeping
// changed or new local content as conflict copies, never deleting it).
//
// Not built: devices on different networks reach each other only through
// the folder's hosting servers (no circuit relay v2 through the domain's
// servers, no DCUtR/AutoNAT hole punching). FolderStatus.InSync speaks of
// the index of the first hosting server the device reached at its last
// request (FolderStatus.Servers lists them), so it stays false while no
// hosting server is reachable, whatever the devices exchanged.
//
// # Quotas
//
// A server hosting a folder (its home server, and its replica, so that a
// change one refuses does not reach it through the other) takes a member
// device's changes only while the owner's bytes (the current files of the
// owner's folders it hosts; their history does not count) stay within the
// owner's quota (Config.Quota): quotaAdmit, a pure decision over the plan,
// takes every change that adds nothing (and counts the room it frees) and
// the others in plan order while they fit. The hosting servers take each
// other's changes as they are. What is held back stays on the device,
// whose next pull of a hosting server's index hears why (the index
// header's quota fields; FolderStatus.Quota and QuotaRefused), and is
// planned again at the device's next index or the server's next pull.
// Nothing is deleted.
//
// # Protocols
//
// Three protocols, all CBOR (internal/canon) in varint-length frames, with
// size caps and deadlines:
//
//   - ProtoIndex: {Folder, Session, Have} → a header {Status, Session,
//     Sequence, Pages} and that many signed pages (syncfs.SignIndex, about
//     512 KiB each): the whole index, or only the entries changed since
//     Have when the requester holds an earlier index of the same session,
//     or NotModified.
//   - ProtoBlock: {Folder, Blocks: [{Hash, Size}...]} (up to 64 blocks,
//     8 MiB) → one frame per block, in order: a status byte and the bytes,
//     read from the file the sender's index names if its size and mtime
//     are still the indexed ones (not hashed again: the receiver verifies).
//   - ProtoNotify: {Folder, Session, Sequence}: "my index changed",
//     answered by an empty receipt once the folder took it (a notification
//     without one is sent again, up to three times). The receiver pulls
//     the index if it takes changes from the sender. A periodic pull
//     (Config.PullInterval: the server and the connected writers' devices,
//     from a device) and a pull on every new connection catch what is
//     still lost.
//
// # Trust
//
// Every index is signed by the host that made it; the receiver checks that
// the signer is the peer it asked, for the folder and sequence asked, and
// that the peer may write the folder: a device of the owner or of a
// read-write member (Access.UserOf, a current certificate, and the
// folder's Members), or the folder's hosting server (a server of the
// chain). A device applies these checks to another device exactly as the
// server does (takesFrom). Every request handler
// checks the requester: only member devices of the folder and its hosting
// server get anything; strangers get a reset stream. Names are checked on
// receipt (syncfs.OpenIndex) and every write is confined to the folder
// (syncfs.Applier). An old index changes nothing: Plan takes only entries
// newer than the local ones. Another host's symlink whose target is
// absolute or leaves the folder is not created (nor is the local entry at
// its name removed) and is listed in FolderStatus.Skipped with why, unless
// Config.OutsideSymlinks allows it for the folder.
//
// # Transfer
//
// Blocks are fetched from the peer whose index is being applied first,
// then from the folder's other connected members (the server always
// qualifies), at most Config.Fetches streams per folder, ahead of the
// applier in plan order within Config.Prefetch bytes, in batches, verified
// once, on receipt (a wrong block is asked from the next peer), and handed
// to the applier as syncfs.VerifiedBlock. Small files are applied several at
// once; files are announced as they land (every 100 ms at most), so the
// next host starts fetching before the whole change has arrived. A plan
// looks only at the entries changed since the last plan that went through
// (all of them after a full rescan, a failure or a skip). A transfer
// interrupted mid-file (a peer gone, a reset, a restart) is taken up at the
// next round where it stopped: the file's temporary file, named after its
// version, is kept, and before the blocks are fetched the ones it holds
// are read and verified (syncfs.Applier.Resume) and dropped from what is
// fetched; they count as resumed (FolderStatus.Resumed). Small files
// applied in batches start over. A partial file goes as soon as an index
// shows its version superseded (syncfs.Applier.DropSuperseded), and a
// directory's deletion removes the temporary files in it, so none is left
// behind by a file changed or deleted before it arrived.
//
// A change that cannot be applied is retried with a growing wait (at most
// 30 s) and named in FolderStatus.Failed with why; once one has failed
// Config.StuckAfter times in a row, FolderStatus.Stuck says the folder will
// not get in sync by itself. A change whose file another program holds
// open (syncfs.ErrBusy: Windows' sharing violations, retried a few times
// by the applier) is no failure: it is named in FolderStatus.Busy, the
// file stays as it was, and it is retried the same way.
//
// # Safety
//
// A folder's stored index is kept per folder and directory, so a folder
// synced in a new directory starts afresh instead of taking the old
// directory's files for deleted. Every folder holds a marker file
// (MarkerFile, never synced); a directory found empty and without it while
// files were synced in it (a drive that is not mounted) stops the folder
// with ErrEmptied until Engine.Rescan says it was emptied on purpose.
// Deleting every file but the marker (rm -rf dir/*) deletes them
// everywhere, as any deletion. A hosting server's copy is one of several:
// its directory found empty or gone, without the marker, while files were
// synced there, is a lost copy (a lost disk), never deletions: the server
// forgets its index of the folder and takes it afresh from the other
// hosting servers and the devices (lost.go).
//
// # Memory
//
// The indexes of the peers a folder syncs with are kept on disk
// (syncfs.PeerStore, peers.db in Config.DataDir, made anew at each
// start), each entry beside a digest of its version, and nothing of them
// in memory: a plan reads the digests and loads the entries at another
// version than the local ones, which are the only ones Plan acts on.
//
// The folder's own Local is kept in its database too
// (syncfs.DB.OpenLocal): whole in memory up to 32,768 entries, and past
// that only the entries changed since it was last stored, the others
// read from the database at each look and walked there a window at a
// time. A store (persist) writes what changed and lets go of it.
//
// The sets of names a folder notes (the entries to plan again, to
// publish, to count, to store, and the names a delta brought) hold at
// most 65,536 names (maxScopeNames). Past it, the next plan walks the
// peer's whole index on disk, a window of planWindow entries at a time
// (differingAfter), the next publication and count look at every entry,
// and the entries to store are stored sooner: a change of a million
// files costs walks of the indexes, not a set of a million names.
//
// A host's own published index is a tree of chunks that hold their
// entries encoded (pubtree.go). Past 32,768 entries (spillAbove), the
// chunks it makes keep their entries in pubchunks.db in Config.DataDir
// (chunkStore: a cache made anew at each start, written without fsync)
// and only their bounds in memory; so does the block index of what it
// publishes, past as many places. A chunk's or a block index's record
// goes once no published index holds it. Its signed pages are made once for every peer that asks
// the same (the whole index, or the delta since a sequence); those of
// more than 256 KiB go to a file in the pages directory of
// Config.DataDir (emptied at each start) and are sent from it, so they
// sit in the kernel's page cache, not in the heap. An index's files go
// once it is replaced and the last request sending them ended.
//
// # History
//
// A server that keeps its folders' history sets Config.Archive: it is
// told, on the folder's goroutine, of every index it publishes
// (Published: immutable, read from any goroutine, its entries changed
// since a sequence yielded in name order; every entry at the first index
// after the folder starts, which begins a session). Engine.Restore makes versions from that history the current
// ones, on the folder's goroutine: every block is read and checked first,
// each entry gets a version vector that dominates the current one,
// updated by this host, the plan is applied from the given blocks (the
// applier writes only verified ones), and the result is published, so it
// syncs to every member as any change. RestoreEntries computes what a
// restore of a file, a directory or the whole folder writes.
//
// # Usage
//
//	e, _ := foldersync.New(foldersync.Config{Host: h, Key: key, DataDir: dir, Access: view})
//	e.SetFolders(map[string]string{"photos": "/home/alice/Photos"})
//	go e.Run(ctx)                 // returns when ctx ends and every folder stopped
//	st, _ := e.Status("photos")   // State, NeedFiles, LocalChanges, InSync...
//
// Access must answer from a snapshot: it is called on every request.
package foldersync
