package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/peer/foldersync"
	"github.com/baton-sync/baton/syncfs"
)

// Folder history: a server keeps every version of the folders it hosts in
// a folderstore.Store in DataDir/store (blocks/, one file per block, and
// snapshots.db). The folder sync engine tells the archiver of every index
// it publishes for a hosted folder (foldersync.Config.Archive, on the
// folder's goroutine); the archiver queues the index, which holds every
// change since the last index it kept, and its own goroutine appends the
// entries changed since then to the store as a snapshot, read from the
// index a window at a time (folderstore.Store.AppendFrom), reading the
// blocks the store lacks from the server's copy of the file. A file
// changed again before it is read is left out of that snapshot (and
// logged): the change that made it newer brings a later snapshot with it.
// The first index of a session (the folder started) is compared with the
// store's last tree a window at a time (folderstore.Comparison): only the
// entries that differ are kept, so a restart adds nothing, and a folder
// hosted before the store existed gets its whole index as its first
// snapshot. Indexes told while the archiver is busy replace each other
// (the last holds every change), so what waits is an index per folder,
// whatever the number of changes and files; a restore's change is kept
// apart, with who asked for it. A change that could not be kept is queued
// again and tried at the folder's next change or the next upkeep.
// The store is signed with the node's key (folderstore.WithServerKey):
// every read checks each snapshot against its signed root. At its start
// and every hour the archiver prunes each folder of the store by its
// retention policy (the Catalog folder option Keep; the default when
// unset or unreadable) and collects the blocks no kept snapshot
// references.
//
// Restore and export read the store on the server; an agent asks the
// folder's hosting servers, the home server first, its replica when the
// home server cannot be reached (historyops.go).

// Errors of folder history callers branch on.
var (
	// ErrNoHistory: this host keeps no history of the folder (an agent,
	// or a server that does not host it).
	ErrNoHistory = errors.New("no history of this folder here")
	// ErrNoVersion: no version of the path at the time or sequence asked.
	ErrNoVersion = folderstore.ErrNoVersion
)

// storeDir is where a server keeps its folders' history, under DataDir.
const storeDir = "store"

// Defaults of the archiver's upkeep: Prune of every folder in the store
// by its retention policy, then GC of unreferenced blocks.
const (
	historyUpkeepEvery = time.Hour
	historyGCGrace     = folderstore.DefaultGrace
)

// The archiver keeps changes once the server's transfers are quiet: its
// reads, hashes and writes of every block again would otherwise take the
// CPU and the disk from the sync under way (on two cores, a gigabyte
// synced through a server took half as long again).
const (
	// historyQuiet is how long no block may have moved before queued
	// changes are written.
	historyQuiet = time.Second
	// historyMaxHold is the longest a change waits for quiet transfers:
	// a server that syncs without a pause still keeps its changes this
	// often.
	historyMaxHold = 30 * time.Second
)

// historyHold returns how long changes queued since queuedAt wait, at
// now, before they are written: until no block moved for quiet since
// lastMoved, and no longer than most after queuedAt. Zero: write now.
func historyHold(now, lastMoved, queuedAt time.Time, quiet, most time.Duration) time.Duration {
	if queuedAt.IsZero() {
		return 0
	}
	wait := min(lastMoved.Add(quiet).Sub(now), queuedAt.Add(most).Sub(now))
	return max(wait, 0)
}

// archivable is a published index as the archiver reads it
// (foldersync.Published): its session, its sequence, and its entries
// changed after a sequence of the session, in name order.
type archivable interface {
	Session() uint64
	Seq() uint64
	Since(seq uint64) iter.Seq2[syncfs.FileInfo, error]
}

// archiveBatch is a change of a folder to append as one snapshot: the
// entries of ix changed after the last index of its session kept (every
// entry, compared with the store, when none of its session was), asked
// by by (a restore).
type archiveBatch struct {
	ix archivable
	by foldersync.Requester
}

// archivePending is what is queued for one folder: batches in order, a new
// one begun only when the requester changes (a restore between changes).
type archivePending struct {
	root    string
	batches []archiveBatch
}

// archived is the last index of a folder whose change was kept.
type archived struct{ session, seq uint64 }

// archiver appends the changes of hosted folders to the store and keeps
// the store within each folder's retention policy. add queues (it never
// blocks the folder goroutine that calls it) the index told, which holds
// every change since the last one kept: a folder's pending changes are a
// few indexes, whatever the number of changes or of entries; Run owns the
// writes, which read the entries from the index a window at a time, and
// the upkeep.
type archiver struct {
	store *folderstore.Store
	log   *slog.Logger
	now   func() time.Time
	// policy returns folder's retention policy.
	policy func(folder string) folderstore.Policy
	// every is how often Run prunes and collects (and once at its start);
	// grace is GCOptions.Grace.
	every, grace time.Duration
	// transfers, if set, says when a block last moved: Run holds what is
	// queued while transfers are under way (historyHold with quiet and
	// maxHold).
	transfers      interface{ Last() time.Time }
	quiet, maxHold time.Duration

	mu       sync.Mutex
	pending  map[string]*archivePending
	queuedAt time.Time // when the oldest change of pending was queued by add (system clock)
	draining bool      // drain is writing
	wake     chan struct{}

	done map[string]archived // Run's own
}

func newArchiver(store *folderstore.Store, log *slog.Logger, now func() time.Time, policy func(string) folderstore.Policy) *archiver {
	if policy == nil {
		policy = func(string) folderstore.Policy { return folderstore.DefaultPolicy }
	}
	return &archiver{store: store, log: log, now: now, policy: policy, every: historyUpkeepEvery, grace: historyGCGrace,
		quiet: historyQuiet, maxHold: historyMaxHold,
		pending: map[string]*archivePending{}, wake: make(chan struct{}, 1), done: map[string]archived{}}
}

// archive is foldersync.Config.Archive.
func (a *archiver) archive(folder, root string, ix foldersync.Published, by foldersync.Requester) {
	a.add(folder, root, ix, by)
}

// add queues an index told (appendBatch).
func (a *archiver) add(folder, root string, ix archivable, by foldersync.Requester) {
	a.mu.Lock()
	p := a.pending[folder]
	if p == nil {
		p = &archivePending{}
		a.pending[folder] = p
	}
	p.root = root
	p.batches = appendBatch(p.batches, archiveBatch{ix: ix, by: by})
	if a.queuedAt.IsZero() {
		a.queuedAt = time.Now() // the hold times real transfers: not a.now
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// appendBatch queues b after batches. An index of another session than
// the last queued replaces them (its entries are compared with the store
// whole; a restore queued before it, when the folder restarts at once, is
// then kept without its requester); one asked by the same requester as
// the last queued replaces that one (it holds its changes too).
func appendBatch(batches []archiveBatch, b archiveBatch) []archiveBatch {
	n := len(batches)
	switch {
	case n > 0 && batches[n-1].ix.Session() != b.ix.Session():
		return []archiveBatch{b}
	case n > 0 && batches[n-1].by == b.by:
		batches[n-1] = b
		return batches
	}
	return append(batches, b)
}

// queued returns how many indexes are queued (tests).
func (a *archiver) queued() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, p := range a.pending {
		n += len(p.batches)
	}
	return n
}

// backlog returns how many folders have changes queued, plus one while
// changes are being written.
func (a *archiver) backlog() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := len(a.pending)
	if a.draining {
		n++
	}
	return n
}

// Run appends the queued changes until ctx ends, then those still queued;
// at its start and every a.every it prunes and collects (upkeep). Changes
// wait while transfers are under way (hold).
func (a *archiver) Run(ctx context.Context) error {
	tick := time.NewTicker(a.every)
	defer tick.Stop()
	a.drain()
	a.upkeep()
	var held <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			a.drain()
			return nil
		case <-a.wake:
		case <-held:
		case <-tick.C:
			held = nil
			a.drain()
			a.upkeep()
			continue
		}
		if d := a.hold(); d > 0 {
			held = time.After(d)
			continue
		}
		held = nil
		a.drain()
	}
}

// hold returns how long what is queued waits (historyHold); zero without
// a.transfers.
func (a *archiver) hold() time.Duration {
	if a.transfers == nil {
		return 0
	}
	a.mu.Lock()
	at := a.queuedAt
	a.mu.Unlock()
	return historyHold(time.Now(), a.transfers.Last(), at, a.quiet, a.maxHold)
}

// drain writes what is queued. A change that could not be kept is logged
// and queued again, without waking Run: the folder's next change, or the
// next upkeep, tries again (and once the folder's engine stopped, the
// folder's next start, which compares its whole index with the store).
func (a *archiver) drain() {
	retry := map[string]*archivePending{}
	defer func() {
		a.mu.Lock()
		a.draining = false
		a.mu.Unlock()
	}()
	for {
		a.mu.Lock()
		q := a.pending
		a.pending = map[string]*archivePending{}
		a.queuedAt = time.Time{}
		a.draining = true
		a.mu.Unlock()
		if len(q) == 0 {
			break
		}
		for _, folder := range slices.Sorted(maps.Keys(q)) {
			p := q[folder]
			if r := retry[folder]; r != nil {
				delete(retry, folder)
				p.batches = mergeBatches(r.batches, p.batches)
			}
			for i, b := range p.batches {
				if err := a.write(folder, p.root, b); err != nil {
					if errors.Is(err, foldersync.ErrIndexGone) {
						a.log.Info("folder history: changes not kept before the folder stopped; its next start compares its files with the history", "folder", folder)
					} else {
						a.log.Error("folder history: a change was not kept yet; it is tried again at the next change", "folder", folder, "err", err)
					}
					retry[folder] = &archivePending{root: p.root, batches: p.batches[i:]}
					break
				}
				p.batches[i] = archiveBatch{} // let go of it once written
			}
		}
	}
	if len(retry) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for folder, r := range retry {
		if p := a.pending[folder]; p != nil {
			p.batches = mergeBatches(r.batches, p.batches)
		} else {
			a.pending[folder] = r
		}
	}
}

// mergeBatches returns the batches queued after old (each appendBatch'd).
func mergeBatches(old, later []archiveBatch) []archiveBatch {
	for _, b := range later {
		old = appendBatch(old, b)
	}
	return old
}

// historyWindow is how many entries of a whole index the archiver compares
// with the store at a time.
const historyWindow = 1024

// write appends one batch of folder, whose directory is root, to the
// store. The entries of an index of a session none of whose indexes was
// kept are compared with the store's latest tree first, a window at a time
// (folderstore.Comparison): what is already kept is not appended again.
func (a *archiver) write(folder, root string, b archiveBatch) error {
	last, ok := a.done[folder]
	whole := !ok || last.session != b.ix.Session()
	var changes iter.Seq2[syncfs.FileInfo, error]
	if whole {
		changes = changedOnly(b.ix.Since(0), a.store.Compare(folder, sameVersion))
	} else {
		if b.ix.Seq() <= last.seq {
			return nil // kept already
		}
		changes = b.ix.Since(last.seq)
	}
	dir, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("opening the folder's directory: %w", err)
	}
	defer dir.Close()
	r := &fileReader{root: dir}
	defer r.close()
	var opts []folderstore.AppendOption
	if b.by != (foldersync.Requester{}) {
		opts = append(opts, folderstore.WithRequester(b.by.User, b.by.Device))
	}
	snap, skipped, err := a.store.AppendFrom(folder, a.now(), changes, r.read, opts...)
	if err != nil {
		return err
	}
	a.done[folder] = archived{b.ix.Session(), b.ix.Seq()}
	if len(skipped) > 0 {
		a.log.Warn("folder history: files changed again before they were kept; their newer version will be",
			"folder", folder, "snapshot", snap.Seq, "files", skipped)
	}
	if snap.Seq == 1 {
		a.log.Info(firstVersionLog, "folder", folder, "entries", snap.Count, "time", snap.At())
	}
	return nil
}

// changedOnly yields those of entries that c finds changed, comparing
// them a window of historyWindow at a time.
func changedOnly(entries iter.Seq2[syncfs.FileInfo, error], c *folderstore.Comparison) iter.Seq2[syncfs.FileInfo, error] {
	return func(yield func(syncfs.FileInfo, error) bool) {
		window := make([]syncfs.FileInfo, 0, historyWindow)
		flush := func() bool {
			changed, err := c.Changed(window)
			window = window[:0]
			if err != nil {
				yield(syncfs.FileInfo{}, err)
				return false
			}
			for _, fi := range changed {
				if !yield(fi, nil) {
					return false
				}
			}
			return true
		}
		for fi, err := range entries {
			if err != nil {
				yield(syncfs.FileInfo{}, err)
				return
			}
			if window = append(window, fi); len(window) == historyWindow && !flush() {
				return
			}
		}
		if len(window) > 0 {
			flush()
		}
	}
}

// firstVersionLog is logged when a folder's first version is kept here:
// a new folder's, or that of a folder this server came to with files in
// it (a new replica, a server that lost its store).
const firstVersionLog = "folder history: the first version of the folder kept on this server; versions from before it, if the folder had any, are kept by its other hosting servers"

// upkeep prunes every folder of the store by its policy, then collects
// the blocks no kept snapshot references, and logs what it did.
func (a *archiver) upkeep() {
	now := a.now()
	folders, err := a.store.Folders()
	if err != nil {
		a.log.Error("folder history: upkeep", "err", err)
		return
	}
	for _, f := range folders {
		p := a.policy(f)
		st, err := a.store.Prune(f, p, now)
		if err != nil {
			a.log.Error("folder history: pruning", "folder", f, "policy", p.String(), "err", err)
			continue
		}
		if len(st.Dropped) > 0 {
			a.log.Info("folder history: pruned", "folder", f, "policy", p.String(), "dropped", len(st.Dropped), "resigned", st.Rewritten)
		}
	}
	gs, err := a.store.GC(folderstore.GCOptions{Now: now, Grace: a.grace})
	if err != nil {
		a.log.Error("folder history: collecting blocks", "err", err)
		return
	}
	if gs.Deleted > 0 || gs.Temps > 0 {
		a.log.Info("folder history: collected blocks", "deleted", gs.Deleted, "referenced", gs.Referenced, "spared", gs.Spared, "temps", gs.Temps)
	}
}

// sameVersion reports whether a whole index's entry is the version the
// store keeps already.
func sameVersion(stored, fi syncfs.FileInfo) bool {
	return stored.Deleted == fi.Deleted && stored.Version.Compare(fi.Version) == syncfs.Equal && stored.SameContent(fi)
}

// fileReader reads blocks from the files of a folder, keeping the last
// file open.
type fileReader struct {
	root *os.Root
	name string
	f    *os.File
}

func (r *fileReader) read(name string, b syncfs.Block) ([]byte, error) {
	if r.f == nil || r.name != name {
		r.close()
		f, err := r.root.Open(filepath.FromSlash(name))
		if err != nil {
			return nil, err
		}
		r.f, r.name = f, name
	}
	buf := make([]byte, b.Size)
	if _, err := r.f.ReadAt(buf, b.Offset); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf, nil
}

func (r *fileReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// openHistory opens the server's folder store and runs its archiver on wg
// until ctx ends; the store is closed once the archiver and stop (closed
// when the folder sync engine has stopped) are done.
func (d *driver) openHistory(ctx context.Context, wg *sync.WaitGroup, stopped <-chan struct{}, transfers *foldersync.Activity) (*archiver, error) {
	dir := filepath.Join(d.cfg.DataDir, storeDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("folder history: %w", err)
	}
	// Signed with the node's key: every snapshot read is checked against
	// its signed root, so that one altered on disk is never served.
	st, err := folderstore.Open(filepath.Join(dir, "snapshots.db"), folderstore.NewDisk(filepath.Join(dir, "blocks")), folderstore.WithServerKey(d.cfg.Key))
	if err != nil {
		return nil, fmt.Errorf("folder history: %w", err)
	}
	fr := d.cfg.folders
	log := d.log.With("part", "history")
	a := newArchiver(st, log, d.cfg.Now, fr.retention(log))
	a.transfers = transfers
	fr.historyMu.Lock()
	fr.history, fr.archiver = st, a
	fr.historyMu.Unlock()
	wg.Go(func() {
		_ = a.Run(ctx)
		<-stopped
		a.drain()           // what the engine told it as it stopped
		fr.historyMu.Lock() // waits for every user of the store
		fr.history, fr.archiver = nil, nil
		fr.historyMu.Unlock()
		if err := st.Close(); err != nil {
			d.log.Error("folder history", "err", err)
		}
	})
	return a, nil
}

// KeepDefault is the text that sets a folder's retention policy back to
// the default (ParseKeep reads it as "").
const KeepDefault = "default"

// ParseKeep checks the text of a folder's retention policy (the folder
// option Keep) and returns it as the Catalog records it: the canonical
// text of folderstore.ParsePolicy, or "" for "default" (or ""). Bad text
// is an error wrapping folderstore.ErrBadPolicy that says the syntax.
func ParseKeep(text string) (string, error) {
	text = strings.TrimSpace(text)
	if text == "" || text == KeepDefault {
		return "", nil
	}
	p, err := folderstore.ParsePolicy(text)
	if err != nil {
		return "", fmt.Errorf("retention policy %q: %w (want tiers EVERY:FOR, EVERY one of all, hourly, daily, weekly or a span, FOR a span such as 12h, 30d, 52w or forever, such as %s; or default)", text, err, folderstore.DefaultPolicy)
	}
	return p.String(), nil
}

// KeepPolicy returns the retention policy of the folder option Keep: the
// default for "", and for text that does not parse (with the error).
func KeepPolicy(keep string) (folderstore.Policy, error) {
	if keep == "" {
		return folderstore.DefaultPolicy, nil
	}
	p, err := folderstore.ParsePolicy(keep)
	if err != nil {
		return folderstore.DefaultPolicy, err
	}
	return p, nil
}

// retention is the archiver's policy of a folder: its Catalog record's
// Keep option, the default if unset, unreadable (logged) or the folder is
// gone from the Catalog.
func (fr *folderRuntime) retention(log *slog.Logger) func(string) folderstore.Policy {
	return func(id string) folderstore.Policy {
		f, ok := fr.access().Folder(id)
		if !ok {
			return folderstore.DefaultPolicy
		}
		p, err := KeepPolicy(f.Keep)
		if err != nil {
			log.Warn("folder history: the folder's retention policy cannot be read; the default applies", "folder", id, "keep", f.Keep, "err", err)
		}
		return p
	}
}

// historyStore returns the server's folder store, if it runs, held open
// until release is called (once).
func (fr *folderRuntime) historyStore() (st *folderstore.Store, release func()) {
	fr.historyMu.RLock()
	if fr.history == nil {
		fr.historyMu.RUnlock()
		return nil, func() {}
	}
	return fr.history, fr.historyMu.RUnlock
}

// HistoryBacklog returns how many hosted folders have changes this server
// has yet to keep in their history, plus one while it writes some: 0 when
// the history holds every change published (and on an agent). Changes
// wait while blocks are moving (see historyQuiet).
func (n *Node) HistoryBacklog() int {
	fr := n.cfg.folders
	fr.historyMu.RLock()
	defer fr.historyMu.RUnlock()
	if fr.archiver == nil {
		return 0
	}
	return fr.archiver.backlog()
}

// HistoryPoint names a version of a folder: the snapshot Seq, or the last
// one at or before At; neither: the latest.
type HistoryPoint struct {
	Seq uint64
	At  time.Time
}

// FolderVersion is one version of one entry of a folder's history.
type FolderVersion struct {
	Seq    uint64          // the snapshot that made it ('restore --version')
	Time   time.Time       // when the server kept it
	Device string          // the device that authored it
	User   string          // that device's user, "" if unknown (a server, or a device gone)
	Entry  syncfs.FileInfo // the entry as it became (a tombstone for a deletion)
	// RestoredBy and RestoredByDevice: who asked for the restore that
	// made this version (the hosting server made it on their behalf);
	// both "" for a version that is no restore, the device alone for a
	// restore asked on the server itself.
	RestoredBy, RestoredByDevice string
}

// RestoreRequest is what to restore: Path ("" with All for the whole
// folder) as it was at Point.
type RestoreRequest struct {
	Path  string
	All   bool
	Point HistoryPoint
}

// hostedHistory returns the store of a folder this server hosts, held
// open until release is called (once, and not again before), or
// ErrNoHistory.
func (n *Node) hostedHistory(id string) (st *folderstore.Store, release func(), err error) {
	st, release = n.cfg.folders.historyStore()
	if st == nil {
		return nil, release, fmt.Errorf("folder %s: %w", id, ErrNoHistory)
	}
	a := n.cfg.folders.access()
	f, ok := a.Folder(id)
	if !ok || !slices.Contains(a.Hosts(f), n.ID()) { // its home server or its replica
		release()
		return nil, func() {}, fmt.Errorf("folder %s is not hosted on this server: %w", id, ErrNoHistory)
	}
	return st, release, nil
}

// resolveSeq returns the snapshot pt names in folder id.
func resolveSeq(st *folderstore.Store, id string, pt HistoryPoint) (uint64, error) {
	snaps, err := st.Snapshots(id)
	if err != nil {
		return 0, err
	}
	if len(snaps) == 0 {
		return 0, fmt.Errorf("folder %s has no history yet: %w", id, ErrNoVersion)
	}
	last := snaps[len(snaps)-1].Seq
	switch {
	case pt.Seq > 0:
		if pt.Seq > last {
			return 0, fmt.Errorf("folder %s has no version %d (the last is %d): %w", id, pt.Seq, last, ErrNoVersion)
		}
		return pt.Seq, nil
	case !pt.At.IsZero():
		return st.SeqAt(id, pt.At)
	}
	return last, nil
}

// FolderHistory lists the versions of path ("" for every entry) in folder
// id, oldest first: from this server's store if it hosts the folder, else
// (an agent) from the folder's hosting server.
func (n *Node) FolderHistory(ctx context.Context, id, path string) ([]FolderVersion, error) {
	if n.cfg.Role == identity.RoleServer {
		st, release, err := n.hostedHistory(id)
		defer release()
		if err != nil {
			return nil, err
		}
		return n.localHistory(st, id, path)
	}
	return n.remoteHistory(ctx, id, path)
}

func (n *Node) localHistory(st *folderstore.Store, id, path string) ([]FolderVersion, error) {
	vs, err := st.History(id, path)
	if err != nil {
		return nil, err
	}
	a := n.cfg.folders.access()
	out := make([]FolderVersion, len(vs))
	for i, v := range vs {
		out[i] = FolderVersion{Seq: v.Seq, Time: v.Time, Device: v.Device, Entry: v.Entry, RestoredBy: v.ReqUser, RestoredByDevice: v.ReqDevice}
		if p, err := lpeer.Decode(v.Device); err == nil {
			out[i].User, _ = a.UserOf(p)
		}
	}
	return out, nil
}

// RestoreFolder restores a path of folder id (or all of it) as it was at
// req.Point, as a new change that syncs to every member; history is not
// rewritten (the restore is kept as a new version). On the hosting
// server it restores from its store; an agent asks a hosting server
// (historyCall: the home server, or its replica while it is down), which
// allows only the owner's and read-write members' devices.
func (n *Node) RestoreFolder(ctx context.Context, id string, req RestoreRequest) (foldersync.RestoreResult, error) {
	if req.Path == "" && !req.All {
		return foldersync.RestoreResult{}, errors.New("restoring: name a path, or the whole folder")
	}
	if n.cfg.Role == identity.RoleServer {
		return n.restoreHosted(ctx, id, req)
	}
	return n.remoteRestore(ctx, id, req)
}

func (n *Node) restoreHosted(ctx context.Context, id string, req RestoreRequest) (foldersync.RestoreResult, error) {
	st, release, err := n.hostedHistory(id)
	defer release()
	if err != nil {
		return foldersync.RestoreResult{}, err
	}
	// Asked on the server itself: its administrator, through the control
	// socket.
	return n.restoreWith(ctx, st, id, req, foldersync.Requester{Device: n.ID().String()})
}

// restoreWith restores req in folder id, a folder this server hosts, from
// st, as asked by by (kept with the snapshot the restore makes).
func (n *Node) restoreWith(ctx context.Context, st *folderstore.Store, id string, req RestoreRequest, by foldersync.Requester) (foldersync.RestoreResult, error) {
	e := n.cfg.folders.running()
	if e == nil {
		return foldersync.RestoreResult{}, ErrStopped
	}
	then, p, err := restorePoint(st, id, req)
	if err != nil {
		return foldersync.RestoreResult{}, err
	}
	// Pinned until the restore is written, so that a collection after a
	// prune that drops the version meanwhile does not take its blocks.
	var hs []syncfs.Hash
	for _, fi := range then {
		if !fi.Deleted && fi.Type == syncfs.TypeFile && folderstore.Under(fi.Name, p) {
			for _, b := range fi.Blocks {
				hs = append(hs, b.Hash)
			}
		}
	}
	release := st.Pin(hs...)
	defer release()
	return e.RestoreTree(ctx, id, then, p, st.Blocks().Get, by)
}

// restorePoint returns the tree of folder id that req restores, and the
// path it restores in it ("" for the whole folder).
//
// A path with neither a sequence nor a time is restored as of the last
// snapshot in which it (or something under it) was not deleted: what
// 'restore PATH' of a deleted file means.
func restorePoint(st *folderstore.Store, id string, req RestoreRequest) (syncfs.Snapshot, string, error) {
	pt := req.Point
	if !req.All && pt == (HistoryPoint{}) {
		vs, err := st.History(id, req.Path)
		if err != nil {
			return nil, "", err
		}
		for _, v := range vs {
			if !v.Entry.Deleted {
				pt.Seq = v.Seq
			}
		}
		if pt.Seq == 0 {
			return nil, "", fmt.Errorf("%s in folder %s: %w (never kept, or only deleted)", req.Path, id, ErrNoVersion)
		}
	}
	seq, err := resolveSeq(st, id, pt)
	if err != nil {
		return nil, "", err
	}
	then, err := st.Tree(id, seq)
	if err != nil {
		return nil, "", err
	}
	if req.All {
		return then, "", nil
	}
	p := strings.Trim(path.Clean("/"+req.Path), "/")
	if p == "" {
		return nil, "", errors.New("restoring: name a path, or the whole folder")
	}
	if !slices.ContainsFunc(slices.Collect(maps.Keys(then)), func(n string) bool { return folderstore.Under(n, p) }) {
		return nil, "", fmt.Errorf("%s in folder %s at version %d: %w", p, id, seq, ErrNoVersion)
	}
	return then, p, nil
}

// ExportFolder writes folder id as it was at pt into dir (new, or empty)
// as plain files, every block checked, and returns the snapshot written.
// On an agent the tree and the blocks come from the hosting server.
func (n *Node) ExportFolder(ctx context.Context, id string, pt HistoryPoint, dir string) (uint64, error) {
	if n.cfg.Role == identity.RoleServer {
		st, release, err := n.hostedHistory(id)
		defer release()
		if err != nil {
			return 0, err
		}
		seq, err := resolveSeq(st, id, pt)
		if err != nil {
			return 0, err
		}
		return seq, st.Export(id, seq, dir)
	}
	return n.remoteExport(ctx, id, pt, dir)
}

// HistoryUsage is what a folder's history holds on its hosting server.
type HistoryUsage struct {
	Versions       int       // kept snapshots
	Oldest, Latest time.Time // the first and last kept (zero: none)
	Blocks         int       // distinct blocks the kept snapshots reference
	Bytes          int64     // their size (blocks other folders share counted too)
	Keep           string    // the retention policy applied, text
	// Tree is the digest of the latest kept snapshot's tree
	// (folderstore.TreeDigest), on the hosting server itself only (zero
	// when asked of a server, with no snapshot, or when ctx ended before
	// the walk of the tree's paths did).
	Tree syncfs.Hash
}

// FolderHistoryUsage returns what folder id's history holds: from this
// server's store if it hosts the folder, else (an agent) asked of the
// folder's hosting server. Its cost on the server is a scan of the
// folder's snapshot headers and block references, no block read, and on
// the server itself (its own 'folder status') a walk of the latest tree's
// paths for Tree, holding none of them (folderstore.Store.TreeDigest).
func (n *Node) FolderHistoryUsage(ctx context.Context, id string) (HistoryUsage, error) {
	if n.cfg.Role != identity.RoleServer {
		return n.remoteUsage(ctx, id)
	}
	st, release, err := n.hostedHistory(id)
	defer release()
	if err != nil {
		return HistoryUsage{}, err
	}
	u, err := n.localUsage(st, id)
	if err != nil || u.Versions == 0 {
		return u, err
	}
	seq, err := resolveSeq(st, id, HistoryPoint{})
	if err != nil {
		return u, err
	}
	u.Tree, err = st.TreeDigest(ctx, id, seq)
	if err != nil && ctx.Err() != nil {
		// A large tree takes longer than the caller waits: the rest
		// stands without it.
		return u, nil
	}
	return u, err
}

func (n *Node) localUsage(st *folderstore.Store, id string) (HistoryUsage, error) {
	u, err := st.Usage(id)
	if err != nil {
		return HistoryUsage{}, err
	}
	return HistoryUsage{Versions: u.Snapshots, Oldest: u.Oldest, Latest: u.Latest, Blocks: u.Blocks, Bytes: u.Bytes,
		Keep: n.cfg.folders.retention(n.cfg.Logger)(id).String()}, nil
}
