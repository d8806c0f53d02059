// Package syncfs keeps folders in sync: name checks, ignore patterns,
// chunking and hashing, version vectors, the signed file index, the
// watcher and its event aggregator, the pure sync plan, the scanner and the
// applier that reads and writes folders on disk safely, and the index store.
// It does not use libp2p networking.
//
// The pieces, lowest first:
//
//   - Names (CheckName, SafeJoin, CheckNoSymlinkTraversal, Canonical,
//     ClashIndex, CheckSymlinkTarget): every name received from a peer is a clean relative
//     slash path, and nothing is written outside the folder root or through
//     a symlink. Canonical (NFC plus case folding) finds names that would be
//     one file on macOS or Windows. NameRules and CheckWindowsName say
//     which names a folder's file system cannot hold (Windows' reserved
//     device names, trailing dots and spaces, <>:"|?*\, the legacy path
//     length); NativeNameRules picks them for this system.
//   - Ignore patterns (ParseIgnore, Matcher): gitignore syntax in
//     .batonignore. The caller filters scans and snapshots with it; Plan does
//     not know about it.
//   - Blocks (Hasher, HashFile): content-defined chunks (FastCDC with a
//     fixed gear table and DefaultChunking, identical on every host)
//     hashed with BLAKE3; the file hash (FileHashOf) is derived
//     from the block list, so each byte is hashed once and verifying every
//     block verifies the file.
//   - Vector: per-file version vectors, as Syncthing's.
//   - Index, FileInfo, SignIndex, OpenIndex: a device's entries, canonically
//     encoded and signed by the device with identity.PurposeIndex. OpenIndex
//     verifies the signature and every entry; the caller checks the signer's
//     rights in the Catalog and the sequence number.
//   - Aggregator: fed events and ticks with explicit times, returns batches
//     of paths to rescan. Events are hints; the scanner is the truth.
//   - Plan: given the local and remote snapshots, the actions that make the
//     local folder take the remote's changes. Pure and deterministic.
//   - Local, Scanner: this device's own record of a folder (its Snapshot
//     plus what Lstat said of each entry) and the parallel scanner that
//     updates it, rehashing only files whose stat changed. It reads the
//     disk through FS (os.Root, or a simulated file system in tests, such
//     as syncfstest.FakeFS); on a file system that stores names in NFD
//     (macOS) it records an entry under the NFC name it was made with. A
//     stat is trusted only if the file is still the one recorded (FileID:
//     the inode on unix; on Windows, which has no inodes, the volume serial
//     number and file index, read by opening the file only when size,
//     times and mode match), so a file put in another's place with the
//     same size and times is hashed again.
//   - Applier, BlockSource, VerifiedBlock: carries out a plan on disk
//     through temporary files, verified blocks and an os.Root, never
//     outside the folder (or through a WriteFS, a simulated file system in
//     tests, which Apply, Resume and DropSuperseded use for every
//     operation; ApplyBatch then applies alone); ApplyBatch makes many small independent files
//     durable with two filesystem barriers instead of two fsyncs each;
//     Resume finds the verified blocks an interrupted fetch left, so they
//     are not fetched again; DropSuperseded removes such partial files
//     once their version is superseded, so none outlives it.
//   - Watcher: recursive fsnotify watching, feeding an Aggregator, sending
//     batches of names to rescan. On macOS (Watcher.DirsOnly) directories
//     only are watched, with a kqueue of one descriptor per directory, not
//     per file; a directory's change lists it again, and the whole folder
//     is sent for a rescan every Watcher.Rescan for the writes in place a
//     directory watch misses.
//   - DB: the per-agent bbolt store of each folder's Local and the latest
//     signed index of every other device. A Local opened from it
//     (OpenLocal) is kept there: whole in memory up to DefaultLocalWhole
//     entries, and past that only what changed since its last Flush,
//     which stores it (and the last entries it wrote); Get reads the
//     others from the DB and All walks it a window at a time. Such a
//     Local keeps indexes of its stored blocks and canonical names
//     beside it, so that Plan looks up what it needs instead of walking
//     every entry.
//   - PeerStore, PeerSummary: other devices' index entries on disk (a
//     cache, made anew at each start), each beside a digest of its version,
//     so that a host keeps none of them in memory: it reads the digests
//     and loads the entries that differ from its own.
//
// # Usage
//
// The driver (one goroutine per folder, in package peer) owns the state and
// does the I/O; Scan and Apply never run at the same time on one folder:
//
//	local, _ := db.Local(folder)                     // empty on first start
//	w, _ := syncfs.NewWatcher(root, ignore, syncfs.DefaultAggregatorConfig, log)
//	go w.Run(ctx)                                    // first batch: [""]
//	sc := &syncfs.Scanner{Root: root, Self: self, Ignore: ignore}
//	ap := &syncfs.Applier{Root: root, Source: blocksFromPeers, Expect: w.Expect}
//	for {
//		select {
//		case paths := <-w.Batches(): // and a periodic full rescan
//			local, stats, err = sc.Scan(ctx, local, paths...)
//			// rescan stats.Unstable later; announce the changed entries
//		case msg := <-indexes:
//			idx, signer, err := syncfs.OpenIndex(msg) // verify, then check rights
//			ap.DropSuperseded(idx.Snapshot())         // partial files of versions gone
//			plan := syncfs.Plan(&local, idx.Snapshot(), self)
//			results := ap.Apply(ctx, &local, plan)  // records what it did in local
//			// ErrChangedMeanwhile: the next scan and plan sort it out
//		}
//		db.PutLocal(folder, local)
//	}
//
// Plan's contract: actions are ordered to be applied in sequence; every
// name in an action passes CheckName; concurrent changes resolve alike on
// every device, the loser kept as a conflict copy; a live entry beats a
// deletion; a directory holding live entries is never deleted (nor, when
// applied, one holding entries not synced, which is kept as a conflict);
// a name that clashes by case or normalization is skipped with a reason,
// never written over another; a remote symlink whose target is absolute or
// leaves the folder (CheckSymlinkTarget) is skipped with a reason, and the
// local entry at its name kept, unless PlanOptions.OutsideSymlinks; an
// action touching a name PlanOptions.Names refuses is skipped with the
// reason, so such a name is neither created, changed nor deleted here.
package syncfs
