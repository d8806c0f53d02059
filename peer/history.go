package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
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
// snapshots.db). The folder sync engine tells the archiver of every change
// of a hosted folder's index (foldersync.Config.Archive, on the folder's
// goroutine); the archiver queues it and its own goroutine appends it to
// the store as a snapshot, reading the blocks the store lacks from the
// server's copy of the file. A file changed again before it is read is
// left out of that snapshot (and logged): the change that made it newer
// brings a later snapshot with it. The first change after the folder
// starts is the whole index: only the entries that differ from the
// store's last tree are kept, so a restart adds nothing, and a folder
// hosted before the store existed gets its whole index as its first
// snapshot.
//
// Restore and export read the store on the server; an agent asks the
// folder's hosting server (historyops.go).

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

// archiveJob is one change of a hosted folder's index to append.
type archiveJob struct {
	folder, root string
	changes      []syncfs.FileInfo
	whole        bool
}

// archiver appends the changes of hosted folders to the store. add queues
// (it never blocks the folder goroutine that calls it); Run owns the
// writes.
type archiver struct {
	store *folderstore.Store
	log   *slog.Logger
	now   func() time.Time

	mu    sync.Mutex
	queue []archiveJob
	wake  chan struct{}
}

func newArchiver(store *folderstore.Store, log *slog.Logger, now func() time.Time) *archiver {
	return &archiver{store: store, log: log, now: now, wake: make(chan struct{}, 1)}
}

// add queues a change (foldersync.Config.Archive).
func (a *archiver) add(folder, root string, changes []syncfs.FileInfo, whole bool) {
	a.mu.Lock()
	a.queue = append(a.queue, archiveJob{folder: folder, root: root, changes: changes, whole: whole})
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Run appends the queued changes until ctx ends, then those still queued.
func (a *archiver) Run(ctx context.Context) error {
	for {
		a.drain()
		select {
		case <-ctx.Done():
			a.drain()
			return nil
		case <-a.wake:
		}
	}
}

func (a *archiver) drain() {
	for {
		a.mu.Lock()
		q := a.queue
		a.queue = nil
		a.mu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, j := range q {
			if err := a.write(j); err != nil {
				a.log.Error("folder history: a change was not kept", "folder", j.folder, "entries", len(j.changes), "err", err)
			}
		}
	}
}

// write appends one change to the store.
func (a *archiver) write(j archiveJob) error {
	changes := j.changes
	if j.whole {
		var err error
		if changes, err = a.newSince(j.folder, changes); err != nil {
			return err
		}
	}
	if len(changes) == 0 {
		return nil
	}
	root, err := os.OpenRoot(j.root)
	if err != nil {
		return fmt.Errorf("opening the folder's directory: %w", err)
	}
	defer root.Close()
	r := &fileReader{root: root}
	defer r.close()
	snap, skipped, err := a.store.Append(j.folder, a.now(), changes, author(changes), r.read)
	if err != nil {
		return err
	}
	if len(skipped) > 0 {
		a.log.Warn("folder history: files changed again before they were kept; their newer version will be",
			"folder", j.folder, "snapshot", snap.Seq, "files", skipped)
	}
	return nil
}

// newSince returns the entries of whole, a folder's whole index, that
// differ from the store's last tree of the folder.
func (a *archiver) newSince(folder string, whole []syncfs.FileInfo) ([]syncfs.FileInfo, error) {
	snaps, err := a.store.Snapshots(folder)
	if err != nil || len(snaps) == 0 {
		return whole, err
	}
	tree, err := a.store.Tree(folder, snaps[len(snaps)-1].Seq)
	if err != nil {
		return nil, err
	}
	var out []syncfs.FileInfo
	for _, fi := range whole {
		old, ok := tree[fi.Name]
		if ok && old.Deleted == fi.Deleted && old.Version.Compare(fi.Version) == syncfs.Equal && old.SameContent(fi) {
			continue
		}
		out = append(out, fi)
	}
	return out, nil
}

// author is the device that authored most of changes (folderstore.Author
// of each; the first by name among equals).
func author(changes []syncfs.FileInfo) string {
	count := map[string]int{}
	for _, fi := range changes {
		count[folderstore.Author(fi)]++
	}
	best := ""
	for _, d := range slices.Sorted(maps.Keys(count)) {
		if count[d] > count[best] || best == "" {
			best = d
		}
	}
	return best
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
func (d *driver) openHistory(ctx context.Context, wg *sync.WaitGroup, stopped <-chan struct{}) (*archiver, error) {
	dir := filepath.Join(d.cfg.DataDir, storeDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("folder history: %w", err)
	}
	st, err := folderstore.Open(filepath.Join(dir, "snapshots.db"), folderstore.NewDisk(filepath.Join(dir, "blocks")))
	if err != nil {
		return nil, fmt.Errorf("folder history: %w", err)
	}
	a := newArchiver(st, d.log.With("part", "history"), d.cfg.Now)
	fr := d.cfg.folders
	fr.historyMu.Lock()
	fr.history = st
	fr.historyMu.Unlock()
	wg.Go(func() {
		_ = a.Run(ctx)
		<-stopped
		a.drain()           // what the engine told it as it stopped
		fr.historyMu.Lock() // waits for every user of the store
		fr.history = nil
		fr.historyMu.Unlock()
		if err := st.Close(); err != nil {
			d.log.Error("folder history", "err", err)
		}
	})
	return a, nil
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
	f, ok := n.cfg.folders.access().Folder(id)
	if !ok || f.Server != n.ID().String() {
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
		out[i] = FolderVersion{Seq: v.Seq, Time: v.Time, Device: v.Device, Entry: v.Entry}
		if p, err := lpeer.Decode(v.Device); err == nil {
			out[i].User, _ = a.UserOf(p)
		}
	}
	return out, nil
}

// RestoreFolder restores a path of folder id (or all of it) as it was at
// req.Point, as a new change that syncs to every member; history is not
// rewritten (the restore is kept as a new version). On the hosting
// server it restores from its store; an agent asks the hosting server,
// which allows only the owner's and read-write members' devices.
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
	return n.restoreWith(ctx, st, id, req)
}

// restoreWith restores req in folder id, a folder this server hosts, from
// st.
func (n *Node) restoreWith(ctx context.Context, st *folderstore.Store, id string, req RestoreRequest) (foldersync.RestoreResult, error) {
	e := n.cfg.folders.running()
	if e == nil {
		return foldersync.RestoreResult{}, ErrStopped
	}
	then, p, err := restorePoint(st, id, req)
	if err != nil {
		return foldersync.RestoreResult{}, err
	}
	return e.RestoreTree(ctx, id, then, p, st.Blocks().Get)
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
