package foldersync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/syncfs"
)

// Timings of a folder's loop.
const (
	publishEvery = 100 * time.Millisecond // during a long apply: announce progress this often
	persistEvery = time.Second            // store the Local at most this often while busy
	setupRetry   = 10 * time.Second       // retry a folder that could not start
	unstableWait = 2 * time.Second        // rescan files that kept changing after this
	maxRetryWait = 30 * time.Second       // longest wait before retrying a failed apply
)

// folder is one synced folder. Its goroutine (run) owns the Local, the
// scanner, the applier and the remote indexes; stream handlers see only
// pub, the counters and, under mu, the status and the wake-up requests.
type folder struct {
	e        *Engine
	id       string
	root     string
	log      *slog.Logger
	session  uint64
	cancel   context.CancelFunc
	done     chan struct{}
	ctl      chan func(context.Context)
	wake     chan struct{}
	fetchSem chan struct{}

	pub                     atomic.Pointer[published]
	fetched, copied, served atomic.Int64

	mu          sync.Mutex
	notified    map[lpeer.ID]bool // peers whose index may have changed
	rescanAll   bool
	rescanPaths []string
	notifying   map[lpeer.ID]int // notifications being sent: 1, or 2 to send again
	st          FolderStatus
	bg          sync.WaitGroup // notifications being sent

	// Owned by the folder goroutine.
	local      syncfs.Local
	seq        uint64
	remotes    map[lpeer.ID]*remoteIndex
	scanner    *syncfs.Scanner
	applier    *syncfs.Applier
	ignoreText string
	ready      bool // scanned at least once
	dirty      bool // local not stored since it changed
	lastPut    time.Time
	lastPub    time.Time
	failures   int
	retryWait  time.Duration
	retry      *time.Timer
}

func newFolder(e *Engine, id, root string) *folder {
	return &folder{
		e: e, id: id, root: root,
		log:       e.log.With("folder", id),
		session:   newSession(),
		seq:       uint64(e.cfg.Now().UnixMicro()),
		done:      make(chan struct{}),
		ctl:       make(chan func(context.Context)),
		wake:      make(chan struct{}, 1),
		fetchSem:  make(chan struct{}, e.cfg.Fetches),
		notified:  map[lpeer.ID]bool{},
		notifying: map[lpeer.ID]int{},
		remotes:   map[lpeer.ID]*remoteIndex{},
		st:        FolderStatus{ID: id, Root: root, State: StateIdle},
	}
}

// notify asks the folder to look at p's index (p announced a change, or
// connected).
func (f *folder) notify(p lpeer.ID) {
	f.mu.Lock()
	f.notified[p] = true
	f.mu.Unlock()
	f.poke()
}

func (f *folder) requestRescan(paths ...string) {
	f.mu.Lock()
	if len(paths) == 0 {
		f.rescanAll = true
	} else {
		f.rescanPaths = append(f.rescanPaths, paths...)
	}
	f.mu.Unlock()
	f.poke()
}

func (f *folder) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// status returns the folder's status.
func (f *folder) status() FolderStatus {
	f.mu.Lock()
	st := f.st
	pending := len(f.notified) > 0 || f.rescanAll || len(f.rescanPaths) > 0
	f.mu.Unlock()
	if pending {
		st.InSync = false
	}
	st.Fetched, st.Copied, st.Served = f.fetched.Load(), f.copied.Load(), f.served.Load()
	return st
}

func (f *folder) setStatus(fn func(st *FolderStatus)) {
	f.mu.Lock()
	fn(&f.st)
	f.mu.Unlock()
}

func (f *folder) setState(state string) {
	f.setStatus(func(st *FolderStatus) { st.State = state })
}

// run keeps the folder in sync until ctx ends, retrying while it cannot
// start (its directory is missing, its ignore file is malformed).
func (f *folder) run(ctx context.Context) {
	defer f.bg.Wait()
	for {
		err := f.serve(ctx)
		if ctx.Err() != nil {
			return
		}
		f.log.Warn("folder cannot be synced now", "err", err)
		f.setStatus(func(st *FolderStatus) { st.State, st.LastError, st.InSync = StateError, err.Error(), false })
		t := time.NewTimer(setupRetry)
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				waiting = false
			case fn := <-f.ctl:
				fn(ctx)
			case <-f.wake:
				f.mu.Lock()
				waiting = !f.rescanAll
				f.mu.Unlock()
			}
		}
		t.Stop()
	}
}

// serve sets the folder up and runs its loop.
func (f *folder) serve(ctx context.Context) error {
	fi, err := os.Stat(f.root)
	if err != nil {
		return fmt.Errorf("folder directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("folder directory %s is not a directory", f.root)
	}
	local, err := f.e.db.Local(f.id)
	if err != nil {
		return err
	}
	ignore, text, err := loadIgnore(f.root)
	if err != nil {
		return err
	}
	w, err := syncfs.NewWatcher(f.root, ignore, f.e.cfg.Aggregator, f.log)
	if err != nil {
		return err
	}
	f.local, f.ignoreText, f.ready = local, text, false
	f.scanner = &syncfs.Scanner{Root: f.root, Self: f.e.self.String(), Ignore: ignore, Chunking: f.e.cfg.Chunking, Now: f.e.cfg.Now}
	f.applier = &syncfs.Applier{Root: f.root, Expect: w.Expect}
	f.retry = time.NewTimer(time.Hour)
	f.retry.Stop()
	defer f.retry.Stop()

	wctx, wcancel := context.WithCancel(ctx)
	watchErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { watchErr <- w.Run(wctx) })
	defer func() {
		wcancel()
		wg.Wait()
		f.persist(true)
	}()

	if err := f.scan(ctx, ""); err != nil {
		return err
	}
	f.ready = true
	f.setStatus(func(st *FolderStatus) { st.LastError = "" })
	f.pullAll()

	rescan := time.NewTicker(f.e.cfg.RescanInterval)
	defer rescan.Stop()
	pull := time.NewTicker(f.e.cfg.PullInterval)
	defer pull.Stop()
	flush := time.NewTicker(persistEvery)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-watchErr:
			if err != nil && ctx.Err() == nil {
				f.log.Warn("folder not watched: changes are seen at the periodic rescan", "err", err)
			}
			watchErr = nil
		case paths := <-w.Batches():
			if err := f.scan(ctx, paths...); err != nil && ctx.Err() == nil {
				f.log.Warn("scan failed", "err", err)
			}
		case <-rescan.C:
			f.requestRescan()
		case <-pull.C:
			f.pullAll()
		case <-f.retry.C:
			f.pullAll()
		case <-flush.C:
			f.persist(false)
		case fn := <-f.ctl:
			fn(ctx)
		case <-f.wake:
		}
		f.work(ctx)
	}
}

// pullAll marks every peer whose index this folder applies: the hosting
// server (on a device), every connected member device (on the server).
func (f *folder) pullAll() {
	fo, ok := f.e.access().Folder(f.id)
	if !ok {
		return
	}
	if fo.Server != f.e.self.String() {
		if hub, err := lpeer.Decode(fo.Server); err == nil {
			f.notify(hub)
		}
		return
	}
	for _, p := range f.e.cfg.Host.Network().Peers() {
		f.notify(p)
	}
}

// work does what was asked: rescans, then pulls and applies the indexes
// of the peers that announced a change.
func (f *folder) work(ctx context.Context) {
	for ctx.Err() == nil {
		f.mu.Lock()
		all, paths, peers := f.rescanAll, f.rescanPaths, f.notified
		f.rescanAll, f.rescanPaths, f.notified = false, nil, map[lpeer.ID]bool{}
		f.mu.Unlock()
		if !all && len(paths) == 0 && len(peers) == 0 {
			return
		}
		if all {
			paths = []string{""}
		}
		if len(paths) > 0 {
			if err := f.scan(ctx, paths...); err != nil && ctx.Err() == nil {
				f.log.Warn("scan failed", "err", err)
			}
		}
		if len(peers) > 0 {
			f.syncPeers(ctx, peers)
		}
	}
}

// syncPeers pulls and applies the indexes of peers this folder takes
// changes from.
func (f *folder) syncPeers(ctx context.Context, peers map[lpeer.ID]bool) {
	a := f.e.access()
	fo, ok := a.Folder(f.id)
	if !ok {
		f.setStatus(func(st *FolderStatus) {
			st.Role, st.InSync = "", false
			st.LastError = "the folder is not in the Catalog (yet)"
		})
		return
	}
	self := f.e.self
	if fo.Server == self.String() {
		f.setStatus(func(st *FolderStatus) { st.Role = roleServer.String() })
		ids := make([]lpeer.ID, 0, len(peers))
		for p := range peers {
			ids = append(ids, p)
		}
		slices.Sort(ids)
		for _, p := range ids {
			// Only owners' and read-write members' changes are taken.
			if p != self && roleOf(a, fo, p) == roleWriter {
				f.syncWith(ctx, a, fo, p)
			}
		}
		return
	}
	me := roleOf(a, fo, self)
	f.setStatus(func(st *FolderStatus) { st.Role = me.String() })
	if me != roleReader && me != roleWriter {
		f.setStatus(func(st *FolderStatus) {
			st.Role, st.InSync = "", false
			st.LastError = "this device is not a member of the folder"
		})
		return
	}
	hub, err := lpeer.Decode(fo.Server)
	if err != nil || !peers[hub] {
		return
	}
	if roleOf(a, fo, hub) != roleServer {
		f.setStatus(func(st *FolderStatus) { st.LastError = "the folder's server is not a server of the domain" })
		return
	}
	f.syncWith(ctx, a, fo, hub)
}

// syncWith fetches p's index and applies it.
func (f *folder) syncWith(ctx context.Context, a Access, fo collections.Folder, p lpeer.ID) {
	f.setState(StateSyncing)
	defer f.setState(StateIdle)
	held := f.remotes[p]
	ri, err := f.e.requestIndex(ctx, p, f.id, held)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Debug("index not fetched", "peer", p.String(), "err", err)
			if fo.Server == p.String() {
				f.setStatus(func(st *FolderStatus) { st.LastError = err.Error() })
				f.scheduleRetry()
			}
		}
		return
	}
	f.remotes[p] = ri
	if ri == held && f.failures == 0 {
		f.refreshStatus(a, fo)
		return
	}
	f.apply(ctx, a, fo, p, ri.snap)
	f.refreshStatus(a, fo)
}

// apply makes the folder take remote's changes (p's index).
func (f *folder) apply(ctx context.Context, a Access, fo collections.Folder, p lpeer.ID, remote syncfs.Snapshot) {
	self := f.e.self.String()
	remote = f.visible(remote)
	peers := f.sources(a, fo, p)
	failed := 0
	var firstErr error
	note := func(n int, err error) {
		failed += n
		if firstErr == nil {
			firstErr = err
		}
	}
	if fo.Server != self && roleOf(a, fo, f.e.self) == roleReader {
		// A read-only device follows the server: where the server changed
		// an entry this device also changed, the server's version wins and
		// the local one is kept as a conflict copy.
		pre, _ := overrides(f.local.Files, remote, self, false, f.e.cfg.Now())
		if n, err := f.applyActions(ctx, peers, pre); n > 0 {
			note(n, err)
		}
		remote = withoutConcurrent(f.local.Files, remote)
	}
	plan := syncfs.Plan(f.local.Files, remote, self)
	if n, err := f.applyActions(ctx, peers, plan); n > 0 {
		note(n, err)
	}
	f.failures = failed
	if failed > 0 {
		f.log.Info("some changes could not be applied; retrying later", "failed", failed, "first", firstErr)
		f.setStatus(func(st *FolderStatus) { st.LastError = fmt.Sprintf("%d changes not applied: %v", failed, firstErr) })
		f.scheduleRetry()
		return
	}
	f.retryWait = 0
	f.setStatus(func(st *FolderStatus) { st.LastError, st.LastSync = "", f.e.cfg.Now() })
}

// scheduleRetry arms the retry timer with a growing wait.
func (f *folder) scheduleRetry() {
	f.retryWait = min(max(2*f.retryWait, time.Second), maxRetryWait)
	f.retry.Reset(f.retryWait)
}

// sources lists the peers to ask for blocks: p first, then the folder's
// server and its other members that are connected.
func (f *folder) sources(a Access, fo collections.Folder, p lpeer.ID) []lpeer.ID {
	out := []lpeer.ID{p}
	var others []lpeer.ID
	for _, q := range f.e.cfg.Host.Network().Peers() {
		if q == p || q == f.e.self {
			continue
		}
		switch roleOf(a, fo, q) {
		case roleServer:
			out = append(out, q)
		case roleWriter, roleReader:
			others = append(others, q)
		}
	}
	slices.Sort(others)
	return append(out, others...)
}

// applyActions applies actions (skips aside), fetching blocks from peers, and
// announces progress as it goes. It returns how many actions failed and
// the first error.
func (f *folder) applyActions(ctx context.Context, peers []lpeer.ID, actions []syncfs.Action) (int, error) {
	work := actions[:0:0]
	needFiles, needBytes := 0, int64(0)
	for _, a := range actions {
		if a.Kind == syncfs.ActSkip {
			f.log.Debug("not synced", "name", a.Name, "reason", a.Reason)
			continue
		}
		work = append(work, a)
		n, b := needOf(a)
		needFiles += n
		needBytes += b
	}
	if len(work) == 0 {
		return 0, nil
	}
	f.setStatus(func(st *FolderStatus) { st.NeedFiles, st.NeedBytes = needFiles, needBytes })
	src := f.newSource(ctx, peers, work)
	f.applier.Source = src
	defer func() {
		src.close()
		f.applier.Source = nil
	}()
	failed := 0
	var firstErr error
	var changed []string
	for i := range work {
		if ctx.Err() != nil {
			break
		}
		a := work[i]
		r := f.applier.Apply(ctx, &f.local, work[i:i+1])[0]
		src.done(i)
		f.copied.Add(r.Copied)
		if r.Err != nil && !errors.Is(r.Err, syncfs.ErrNotDurable) {
			failed++
			if firstErr == nil {
				firstErr = r.Err
			}
			f.log.Debug("action failed", "action", a.String(), "err", r.Err)
			if errors.Is(r.Err, syncfs.ErrChangedMeanwhile) {
				changed = append(changed, a.Name)
			}
		} else {
			n, b := needOf(a)
			needFiles -= n
			needBytes -= b
		}
		if time.Since(f.lastPub) >= publishEvery {
			f.setStatus(func(st *FolderStatus) { st.NeedFiles, st.NeedBytes = needFiles, needBytes })
			f.publish(ctx)
			f.persist(false)
		}
	}
	f.setStatus(func(st *FolderStatus) { st.NeedFiles, st.NeedBytes = needFiles, needBytes })
	f.publish(ctx)
	if len(changed) > 0 {
		f.requestRescan(changed...)
	}
	return failed, firstErr
}

// needOf is what an action counts for in NeedFiles and NeedBytes.
func needOf(a syncfs.Action) (int, int64) {
	if a.Kind == syncfs.ActRecord || a.Kind == syncfs.ActSkip {
		return 0, 0
	}
	var b int64
	for _, blk := range a.Need {
		b += int64(blk.Size)
	}
	return 1, b
}

// scan rescans paths ("" or none: everything) and announces the changes.
func (f *folder) scan(ctx context.Context, paths ...string) error {
	full := len(paths) == 0 || slices.Contains(paths, "")
	if full {
		if m, text, err := loadIgnore(f.root); err != nil {
			f.log.Warn("ignore file not reloaded", "err", err)
		} else if text != f.ignoreText {
			f.log.Info("ignore patterns changed (the watcher keeps the old ones until the folder restarts)")
			f.scanner.Ignore, f.ignoreText = m, text
		}
	}
	f.setState(StateScanning)
	defer f.setState(StateIdle)
	next, stats, err := f.scanner.Scan(ctx, f.local, paths...)
	if err != nil {
		f.setStatus(func(st *FolderStatus) { st.LastError = "scanning: " + err.Error() })
		return err
	}
	f.local = next
	if len(stats.Unstable) > 0 {
		unstable := stats.Unstable
		time.AfterFunc(unstableWait, func() { f.requestRescan(unstable...) })
	}
	for _, s := range stats.Skipped {
		f.log.Debug("not synced", "entry", s)
	}
	f.setStatus(func(st *FolderStatus) { st.LastScan = f.e.cfg.Now() })
	if stats.Changed > 0 {
		f.log.Debug("scanned", "changed", stats.Changed, "hashed", stats.Hashed, "bytes", stats.HashedBytes)
	}
	f.publish(ctx)
	a := f.e.access()
	if fo, ok := a.Folder(f.id); ok {
		f.refreshStatus(a, fo)
	}
	return nil
}

// publish makes the current Local the published index if it changed, and
// tells the peers that apply it.
func (f *folder) publish(ctx context.Context) {
	f.lastPub = time.Now()
	old := f.pub.Load()
	if old != nil && !old.differs(f.local.Files) {
		return
	}
	f.seq++
	p := newPublished(old, f.id, f.e.self.String(), f.session, f.seq, f.local.Files)
	f.pub.Store(p)
	f.dirty = true
	files, dirs, bytes := 0, 0, int64(0)
	for _, e := range p.entries {
		switch {
		case e.fi.Deleted:
		case e.fi.Type == syncfs.TypeDir:
			dirs++
		default:
			files++
			bytes += e.fi.Size
		}
	}
	f.setStatus(func(st *FolderStatus) {
		st.Sequence, st.LocalFiles, st.LocalDirs, st.LocalBytes = p.seq, files, dirs, bytes
	})
	f.announce(ctx, p)
}

// announce tells the peers that take this host's changes that its index
// changed: the server (from a read-write device), or every connected
// member device (from the server).
func (f *folder) announce(ctx context.Context, p *published) {
	a := f.e.access()
	fo, ok := a.Folder(f.id)
	if !ok {
		return
	}
	self := f.e.self
	if fo.Server == self.String() {
		for _, q := range f.e.cfg.Host.Network().Peers() {
			if q != self && roleOf(a, fo, q) != roleNone {
				f.sendNotify(ctx, q)
			}
		}
		return
	}
	if roleOf(a, fo, self) != roleWriter {
		return // nobody takes a read-only member's changes
	}
	if hub, err := lpeer.Decode(fo.Server); err == nil {
		f.sendNotify(ctx, hub)
	}
}

// sendNotify sends a notification to q in the background; one at a time
// per peer, the latest sequence.
func (f *folder) sendNotify(ctx context.Context, q lpeer.ID) {
	f.mu.Lock()
	if f.notifying[q] > 0 {
		f.notifying[q] = 2
		f.mu.Unlock()
		return
	}
	f.notifying[q] = 1
	f.mu.Unlock()
	f.bg.Go(func() {
		for {
			p := f.pub.Load()
			if err := f.e.sendNotify(ctx, q, notifyMsg{Folder: f.id, Session: p.session, Sequence: p.seq}); err != nil && ctx.Err() == nil {
				f.log.Debug("notification not sent", "peer", q.String(), "err", err)
			}
			f.mu.Lock()
			if f.notifying[q] == 2 && ctx.Err() == nil {
				f.notifying[q] = 1
				f.mu.Unlock()
				continue
			}
			delete(f.notifying, q)
			f.mu.Unlock()
			return
		}
	})
}

// sendNotify sends m to q over an existing connection.
func (e *Engine) sendNotify(ctx context.Context, q lpeer.ID, m notifyMsg) error {
	ctx, cancel := context.WithTimeout(network.WithNoDial(ctx, "folder notification"), dialTimeout)
	defer cancel()
	s, err := e.cfg.Host.NewStream(ctx, q, ProtoNotify)
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(ioTimeout))
	if err := writeMsg(s, m); err != nil {
		_ = s.Reset()
		return err
	}
	return s.CloseWrite()
}

// handleNotify serves ProtoNotify: the folder looks at the sender's index
// if it takes changes from it.
func (e *Engine) handleNotify(s network.Stream) {
	p := s.Conn().RemotePeer()
	_ = s.SetDeadline(time.Now().Add(ioTimeout))
	var m notifyMsg
	err := readMsg(bufio.NewReader(s), maxRequest, &m)
	if err != nil || e.peerRoleIn(m.Folder, p) == roleNone {
		_ = s.Reset()
		return
	}
	_ = s.Close()
	if f := e.folder(m.Folder); f != nil {
		f.notify(p)
	}
}

// persist stores the Local if it changed, at most every persistEvery
// unless forced.
func (f *folder) persist(force bool) {
	if !f.dirty || !force && time.Since(f.lastPut) < persistEvery {
		return
	}
	if err := f.e.db.PutLocal(f.id, f.local); err != nil {
		f.log.Error("storing the folder's index", "err", err)
		return
	}
	f.dirty, f.lastPut = false, time.Now()
}

// visible drops from a remote snapshot the names this folder ignores.
func (f *folder) visible(remote syncfs.Snapshot) syncfs.Snapshot {
	m := f.scanner.Ignore
	if m == nil {
		return remote
	}
	out := make(syncfs.Snapshot, len(remote))
	for n, fi := range remote {
		if !m.Match(n, fi.Type == syncfs.TypeDir) {
			out[n] = fi
		}
	}
	return out
}

// refreshStatus recomputes LocalChanges and InSync against the server's
// index.
func (f *folder) refreshStatus(a Access, fo collections.Folder) {
	self := f.e.self
	if fo.Server == self.String() {
		f.setStatus(func(st *FolderStatus) {
			st.Role = roleServer.String()
			st.InSync = st.NeedFiles == 0 && f.failures == 0
			st.LocalChanges = 0
		})
		return
	}
	me := roleOf(a, fo, self)
	hub, _ := lpeer.Decode(fo.Server)
	ri := f.remotes[hub]
	f.setStatus(func(st *FolderStatus) {
		st.Role = me.String()
		if me == roleNone {
			st.Role = ""
		}
		if ri == nil {
			st.InSync, st.LocalChanges = false, 0
			return
		}
		st.ServerSequence = ri.seq
		changes := localChanges(f.local.Files, f.visible(ri.snap))
		st.LocalChanges = len(changes)
		st.InSync = st.NeedFiles == 0 && f.failures == 0 && (me == roleReader || len(changes) == 0)
	})
}

// loadIgnore reads the folder's ignore file, if any.
func loadIgnore(root string) (*syncfs.Matcher, string, error) {
	p := filepath.Join(root, syncfs.IgnoreFile)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	if !fi.Mode().IsRegular() {
		return nil, "", fmt.Errorf("%s is not a regular file", syncfs.IgnoreFile)
	}
	if fi.Size() > syncfs.MaxIgnoreSize {
		return nil, "", fmt.Errorf("%s is larger than %d bytes", syncfs.IgnoreFile, syncfs.MaxIgnoreSize)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, "", err
	}
	m, err := syncfs.ParseIgnoreString(string(b))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", syncfs.IgnoreFile, err)
	}
	return m, string(b), nil
}
