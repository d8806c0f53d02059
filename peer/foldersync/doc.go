// Package foldersync moves folder changes between hosts over libp2p: the
// network side of folder sync, built on package syncfs.
//
// Each folder (an iFolder of the Catalog) is hosted by one server, which
// keeps the canonical copy and is the hub: every member device syncs with
// it. A device applies the server's index to its folder and announces its
// own; the server applies the index of a device whose user may write the
// folder (owner or read-write) and announces the result to every connected
// member device. A read-only member's index is applied by nobody; its
// device shows its changes as LocalChanges, which Revert undoes.
//
// Three protocols carry it, all CBOR (internal/canon) in varint-length
// frames, with size caps and deadlines:
//
//   - ProtoIndex: {Folder, Session, Have} → a header {Status, Session,
//     Sequence, Pages} and Pages signed indexes (syncfs.SignIndex), the
//     whole index or only the entries changed since Have, or NotModified.
//   - ProtoBlock: {Folder, Blocks: [{Hash, Size}...]} (up to 64 blocks,
//     8 MiB) → one frame per block, in order: a status byte, then the
//     bytes, read from the file the sender's index names and verified
//     before they are sent.
//   - ProtoNotify: {Folder, Session, Sequence}, one way: "my index
//     changed". The receiver pulls the index if it takes changes from the
//     sender.
//
// Trust: every index is signed by the host that made it, and the receiver
// checks that the signer is the peer it asked and that it may write the
// folder: a device of a user with rights owner or rw (Access.UserOf and
// the folder's Members), or the folder's hosting server. Every request
// handler checks the requester: only member devices of the folder and its
// hosting server get anything; strangers get a reset stream. Names are
// checked on receipt (syncfs.OpenIndex) and every write is confined to
// the folder (syncfs.Applier).
//
// Blocks are fetched from the peer whose index is being applied first,
// then from the folder's other connected members (the server always
// qualifies), at most Config.Fetches streams per folder, fetched ahead of
// the applier in plan order within Config.Prefetch bytes, verified on
// receipt and again by the applier. A transfer interrupted mid-file
// starts that file again at the next round (its temporary file is
// dropped, so the blocks already fetched are fetched again); files
// completed before the interruption are not.
//
// # Usage
//
//	e, _ := foldersync.New(foldersync.Config{Host: h, Key: key, DataDir: dir, Access: view})
//	e.SetFolders(map[string]string{"photos": "/home/alice/Photos"})
//	go e.Run(ctx)                  // returns when ctx ends and every folder stopped
//	st, _ := e.Status("photos")   // State, NeedFiles, LocalChanges, InSync...
//
// Access must answer from a snapshot: it is called on every request.
package foldersync
