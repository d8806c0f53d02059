package foldersync

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/syncfs"
)

// Timings of a folder's loop.
const (
	publishEvery = 100 * time.Millisecond // during a long apply: announce progress this often
	persistEvery = 250 * time.Millisecond // store the Local at most this often while busy
	flushEvery   = time.Second            // store what was left unstored this often
	setupRetry   = 10 * time.Second       // retry a folder that could not start
	unstableWait = 2 * time.Second        // rescan files that kept changing after this
	maxRetryWait = 30 * time.Second       // longest wait before retrying a failed apply
	viewRetry    = 250 * time.Millisecond // look again for a folder not yet in the view
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

	pub                              atomic.Pointer[published]
	rounds                           atomic.Int64 // times the goroutine woke to work (tests)
	fetched, copied, resumed, served atomic.Int64
	// refusals: on a server hosting the folder, why the last changes of
	// each member device were not taken (ErrQuota), for the index handler
	// to tell the device. Written by the folder goroutine only, copied on
	// write.
	refusals atomic.Pointer[map[lpeer.ID]string]

	mu          sync.Mutex
	notified    map[lpeer.ID]bool // peers whose index may have changed
	rescanAll   bool
	rescanPaths []string
	notifying   map[lpeer.ID]int       // notifications being sent: 1, or 2 to send again
	acceptEmpty bool                   // the next full scan may find the directory emptied
	requested   map[lpeer.ID]time.Time // devices that asked for this host's index, when last
	st          FolderStatus
	bg          sync.WaitGroup // notifications being sent

	// Owned by the folder goroutine.
	local     syncfs.Local
	archiveBy Requester // who asked for the change being published (a restore)
	changed   nameSet   // entries of local changed since the last publish
	watched   nameSet   // entries an apply under way may change
	// replacing holds the names an apply under way deletes and creates
	// again (replaced): not published until it ends.
	replacing nameSet
	pubAll    bool // the next publish compares every entry
	// The count of local changes against the server's index (remote),
	// and the entries to look at again (all of them if statusAll).
	statusCount struct {
		syncfs.ChangeCount
		hub     lpeer.ID
		ignore  string
		remote  *remoteIndex // nil: nothing counted
		session uint64       // of the index counted
		seq     uint64
	}
	statusChanged nameSet
	statusAll     bool
	seq           uint64
	remotes       map[lpeer.ID]*remoteIndex
	// reached: the hosting servers whose index this device fetched at
	// its last request (those it syncs with now).
	reached    map[lpeer.ID]bool
	scopes     map[lpeer.ID]*planScope
	scanner    *syncfs.Scanner
	applier    *syncfs.Applier
	ignoreText string
	ready      bool // scanned at least once
	// When the last full scan ended and how long it took, for spacing
	// the periodic ones (rescanDue).
	fullScanAt      time.Time
	fullScanCost    time.Duration
	fullScanEntries int // the Local's entries after it
	// undurable: names whose change the applier recorded but could not
	// make durable (syncfs.ErrNotDurable); nothing is stored until a
	// syncfs.Barrier over them succeeds.
	undurable nameSet
	lastPut   time.Time
	lastPub   time.Time
	pubEvery  time.Duration // how often to announce progress during an apply
	putEvery  time.Duration // how often to store the Local while busy
	// failed holds, per peer whose index the folder takes changes from,
	// what failed at the last apply of that index; failures is their sum.
	// One peer's changes going through leaves another's failure standing.
	failed   map[lpeer.ID]applied
	failures int
	// skipped holds, per peer, what the last apply of its index skipped;
	// busy what it found held by another program.
	skipped   map[lpeer.ID][]SkippedEntry
	busy      map[lpeer.ID][]BusyEntry
	stuck     bool // a change failed Config.StuckAfter times in a row
	retryWait time.Duration
	retry     *time.Timer
	notMember int // consecutive looks that found this device not a member
	// noSymlinks says why symlinks cannot be made in the folder (probed
	// as it starts), "" if they can.
	noSymlinks string
}

func newFolder(e *Engine, id, root string) *folder {
	return &folder{
		e: e, id: id, root: root,
		log:           e.log.With("folder", id),
		session:       newSession(),
		seq:           uint64(e.cfg.Now().UnixMicro()),
		done:          make(chan struct{}),
		ctl:           make(chan func(context.Context)),
		wake:          make(chan struct{}, 1),
		fetchSem:      make(chan struct{}, e.cfg.Fetches),
		pubEvery:      publishEvery,
		putEvery:      persistEvery,
		notified:      map[lpeer.ID]bool{},
		notifying:     map[lpeer.ID]int{},
		remotes:       map[lpeer.ID]*remoteIndex{},
		reached:       map[lpeer.ID]bool{},
		failed:        map[lpeer.ID]applied{},
		skipped:       map[lpeer.ID][]SkippedEntry{},
		busy:          map[lpeer.ID][]BusyEntry{},
		scopes:        map[lpeer.ID]*planScope{},
		changed:       nameSet{},
		watched:       nameSet{},
		statusChanged: nameSet{},
		undurable:     nameSet{},
		st:            FolderStatus{ID: id, Root: root, State: StateIdle},
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
	st.Fetched, st.Copied, st.Resumed, st.Served = f.fetched.Load(), f.copied.Load(), f.resumed.Load(), f.served.Load()
	if len(st.Servers) > 0 {
		// Only those still connected: a server that went down since the
		// last sync is not one the device syncs with.
		connected := f.e.cfg.Transport.Peers()
		st.Servers = slices.DeleteFunc(slices.Clone(st.Servers), func(s string) bool {
			return !slices.ContainsFunc(connected, func(p lpeer.ID) bool { return p.String() == s })
		})
	}
	st.Devices = f.devices()
	return st
}

// noteRequest records that the device p asked for this host's index.
func (f *folder) noteRequest(p lpeer.ID) {
	now := f.e.cfg.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.requested == nil {
		f.requested = map[lpeer.ID]time.Time{}
	}
	f.requested[p] = now
}

// devices is FolderStatus.Devices: the devices that asked for this host's
// index and are connected now, by ID. Those no longer connected are
// forgotten.
func (f *folder) devices() []DeviceSync {
	f.mu.Lock()
	if len(f.requested) == 0 {
		f.mu.Unlock()
		return nil
	}
	connected := f.e.cfg.Transport.Peers()
	var out []DeviceSync
	for p, at := range f.requested {
		if !slices.Contains(connected, p) {
			delete(f.requested, p)
			continue
		}
		out = append(out, DeviceSync{ID: p.String(), LastRequest: at})
	}
	f.mu.Unlock()
	a := f.e.cfg.Access()
	for i := range out {
		if p, err := lpeer.Decode(out[i].ID); err == nil {
			out[i].User, _ = a.UserOf(p)
		}
	}
	slices.SortFunc(out, func(a, b DeviceSync) int { return strings.Compare(a.ID, b.ID) })
	return out
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
	defer f.dropRemotes()
	defer func() {
		if p := f.pub.Load(); p != nil {
			p.close()
		}
	}()
	for {
		err := f.serve(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errCopyLost) {
			f.log.Warn("starting the folder again", "err", err)
			continue
		}
		f.log.Warn("folder cannot be synced now", "err", err)
		f.setStatus(func(st *FolderStatus) {
			st.State, st.LastError, st.InSync = StateError, err.Error(), false
			st.Emptied = errors.Is(err, ErrEmptied)
		})
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
	if err := f.remakeRoot(); err != nil {
		return err
	}
	fi, err := os.Stat(f.root)
	if err != nil {
		return fmt.Errorf("folder directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("folder directory %s is not a directory", f.root)
	}
	local, err := f.e.db.OpenLocal(f.dbKey(), f.e.cfg.localWhole)
	if err != nil {
		return err
	}
	if local, err = f.lostCopy(local); err != nil {
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
	// The folder rescans in full every RescanInterval already: a watcher
	// of directories only (macOS) needs no rescan of its own beside it.
	w.Rescan = 0
	f.local, f.ignoreText, f.ready = local, text, false
	f.touchAll()
	f.scanner = &syncfs.Scanner{Root: f.root, Self: f.e.self.String(), Ignore: ignore, Chunking: f.e.cfg.Chunking, Now: f.e.cfg.Now}
	f.applier = &syncfs.Applier{Root: f.root, Expect: w.Expect}
	if f.noSymlinks = syncfs.SymlinkProblem(f.root); f.noSymlinks != "" {
		f.log.Info("other hosts' symlinks are skipped here", "why", f.noSymlinks)
	}
	if f.e.cfg.wrapFS != nil {
		r, err := os.OpenRoot(f.root)
		if err != nil {
			return fmt.Errorf("opening folder directory: %w", err)
		}
		defer r.Close()
		f.applier.FS = f.e.cfg.wrapFS(syncfs.DirFS(r))
	}
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
	// The flush timer runs only while a store is held back (see persist):
	// a folder at rest is not woken every flushEvery for nothing.
	flush := time.NewTimer(flushEvery)
	flush.Stop()
	defer flush.Stop()
	flushing := false
	var quiet *published // the index seen at the last pull tick
	for {
		switch held := f.heldBack(); {
		case held && !flushing:
			flush.Reset(flushEvery)
		case !held && flushing:
			flush.Stop() // stored meanwhile
		}
		flushing = f.heldBack()
		select {
		case <-ctx.Done():
			return nil
		case err := <-watchErr:
			if err != nil && ctx.Err() == nil {
				f.log.Warn("folder not watched: changes are seen at the periodic rescan", "err", err)
			}
			watchErr = nil // no longer watched
		case paths := <-w.Batches():
			f.requestRescan(paths...)
		case <-rescan.C:
			// A watcher of directories only (macOS) does not see writes
			// in place: the rescan is how they are found, not a safety net.
			if rescanDue(time.Since(f.fullScanAt), f.rescanCost(), watchErr != nil && !w.DirsOnly) {
				f.requestRescan()
			}
		case <-pull.C:
			f.pullAll()
			// An index that stayed the same since the last pull has been
			// fetched by whoever was told of it: its pages can go.
			if p := f.pub.Load(); p != nil && p == quiet {
				p.dropPages()
			} else {
				quiet = p
			}
		case <-f.retry.C:
			f.pullAll()
		case <-flush.C:
			// What a store held back (see persist) is stored below.
			flushing = false
		case fn := <-f.ctl:
			fn(ctx)
		case <-f.wake:
		}
		f.rounds.Add(1)
		if err := f.work(ctx); err != nil {
			return err
		}
		f.persist(false)
	}
}

// Periodic full rescans take at most this share of the time: one in
// rescanShareWatched while the watcher reports changes (the rescan is only
// its safety net), one in rescanShareUnwatched when it does not.
const (
	rescanShareWatched   = 1000
	rescanShareUnwatched = 100
)

// rescanDue reports whether the periodic full rescan, due at each
// Config.RescanInterval, runs now: since the last full scan ended, and its
// cost (how long it took). A large folder is rescanned less often than
// the interval says, so that rescans of a folder at rest cost little
// whatever its size; a small one at every interval.
func rescanDue(since, cost time.Duration, watched bool) bool {
	share := time.Duration(rescanShareUnwatched)
	if watched {
		share = rescanShareWatched
	}
	return since >= min(share*cost, maxRescanSpacing)
}

// rescanCost estimates what a full rescan costs now: the last one's cost,
// grown with the entries added since (a folder that was empty when it was
// last scanned in full may hold many files now).
func (f *folder) rescanCost() time.Duration {
	return f.fullScanCost * time.Duration(f.local.Len()+1) / time.Duration(f.fullScanEntries+1)
}

// maxRescanSpacing is the longest rescanDue waits (a first scan that hashed
// every file costs more than the rescans after it).
const maxRescanSpacing = time.Hour

// pullAll marks every peer whose index this folder applies: the hosting
// servers and the connected devices of writers (on a device), every
// connected peer (on a hosting server: syncPeers keeps the writers' devices
// and the other hosting servers).
func (f *folder) pullAll() {
	fo, ok := f.e.access().Folder(f.id)
	if !ok {
		// Not in this host's view of the Catalog yet (a folder accepted
		// or created a moment ago): look again soon, not at the next
		// periodic pull.
		f.retry.Reset(viewRetry)
		return
	}
	a := f.e.access()
	if !hosting(a, fo, f.e.self) {
		for _, h := range a.Hosts(fo) {
			f.notify(h)
		}
		for _, p := range f.e.cfg.Transport.Peers() {
			if roleOf(a, fo, p) == roleWriter && p != f.e.self {
				f.notify(p)
			}
		}
		return
	}
	for _, p := range f.e.cfg.Transport.Peers() {
		f.notify(p)
	}
}

// work does what was asked: rescans, then pulls and applies the indexes
// of the peers that announced a change. It fails only when the folder
// must stop (its directory was emptied).
func (f *folder) work(ctx context.Context) error {
	for ctx.Err() == nil {
		f.mu.Lock()
		all, paths, peers := f.rescanAll, f.rescanPaths, f.notified
		f.rescanAll, f.rescanPaths, f.notified = false, nil, map[lpeer.ID]bool{}
		f.mu.Unlock()
		if !all && len(paths) == 0 && len(peers) == 0 {
			return nil
		}
		if all {
			paths = []string{""}
		}
		if len(paths) > 0 {
			if err := f.scan(ctx, paths...); errors.Is(err, ErrEmptied) || errors.Is(err, errCopyLost) {
				return err
			} else if err != nil && ctx.Err() == nil {
				f.log.Warn("scan failed", "err", err)
			}
		}
		if len(peers) > 0 {
			f.syncPeers(ctx, peers)
		}
	}
	return nil
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
	if hosting(a, fo, self) {
		f.setStatus(func(st *FolderStatus) { st.Role = roleServer.String() })
		if f.forgetFailures(func(q lpeer.ID) bool { return takesFrom(a, fo, self, q) }) {
			f.refreshStatus(a, fo)
		}
		ids := make([]lpeer.ID, 0, len(peers))
		for p := range peers {
			ids = append(ids, p)
		}
		slices.Sort(ids)
		for _, p := range ids {
			// Only owners' and read-write members' changes are taken,
			// and those of the other servers hosting the folder.
			if takesFrom(a, fo, self, p) {
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
		// Often the share is only a moment away from this host's view
		// (accepted right after it was made): look again soon, then
		// less and less often.
		f.retry.Reset(min(viewRetry<<min(f.notMember, 6), f.e.cfg.PullInterval))
		f.notMember++
		return
	}
	f.notMember = 0
	// The hosting servers' indexes first (the connected ones first), then
	// the other writers' devices' (direct.go).
	hubs := f.hubs(a, fo)
	if f.forgetFailures(func(q lpeer.ID) bool { return takesFrom(a, fo, self, q) }) {
		f.refreshStatus(a, fo)
	}
	for _, p := range pullOrder(peers, hubs) {
		if slices.Contains(hubs, p) && roleOf(a, fo, p) != roleServer {
			f.setStatus(func(st *FolderStatus) { st.LastError = "the folder's server is not a server of the domain" })
			continue
		}
		if takesFrom(a, fo, self, p) {
			f.syncWith(ctx, a, fo, p)
		}
	}
}

// syncWith fetches p's index and applies it.
func (f *folder) syncWith(ctx context.Context, a Access, fo collections.Folder, p lpeer.ID) {
	f.setState(StateSyncing)
	defer f.setState(StateIdle)
	held := f.remotes[p]
	ri, note, err := f.e.requestIndexNote(ctx, p, f.id, held)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Debug("index not fetched", "peer", p.String(), "err", err)
			if hosting(a, fo, p) {
				delete(f.reached, p)
				if !hosting(a, fo, f.e.self) && !f.reachedAny(a, fo) {
					// No hosting server answers: say why the first failed.
					f.setStatus(func(st *FolderStatus) { st.LastError = err.Error() })
				}
				f.refreshStatus(a, fo)
				f.scheduleRetry()
			} else if !errors.Is(err, errRefused) {
				// A device that answered it has no index will announce one.
				f.scheduleRetry()
			}
		}
		return
	}
	f.remotes[p] = ri
	if hosting(a, fo, p) {
		f.reached[p] = true
		// Each hosting server enforces the owner's quota: the last one
		// asked says how it stands.
		f.setStatus(func(st *FolderStatus) {
			st.Quota, st.QuotaRefused = nil, note.Refused
			if note.QuotaLimit > 0 {
				st.Quota = &QuotaStatus{User: fo.Owner, Used: note.QuotaUsed, Limit: note.QuotaLimit}
			}
		})
	}
	if ri != held {
		// A partial file of a version this index supersedes (a file
		// changed or deleted before it arrived) is not resumed: it goes
		// now, not when a plan happens to touch its name.
		if n := f.applier.DropSupersededBy(func(n string) (syncfs.Vector, bool) { return f.e.remoteVersion(ri, n) }); n > 0 {
			f.log.Debug("partial files of superseded versions removed", "peer", p.String(), "files", n)
		}
	}
	sc := f.scopes[p]
	if sc == nil {
		sc = &planScope{all: true}
		f.scopes[p] = sc
	}
	if ri != held {
		sc.add(ri, f.e.cfg.scopeNames)
	}
	if !sc.all && len(sc.names) == 0 {
		f.refreshStatus(a, fo)
		return
	}
	// Only the entries at another version than the local ones are
	// loaded: Plan does nothing with the others, and the local entry
	// stands for them where it looks a name up.
	// A read-only device, and a server taking a device's changes under
	// the owner's quota, plan them all at once (see planWindow); others
	// a window at a time when they are many.
	_, quota := f.e.quotaOf(a, fo, p)
	window := f.e.cfg.planWindow
	if f.readOnly(a, fo) || quota {
		window = 0
	}
	var (
		names []string
		more  bool
		next  func(after string) ([]string, bool, error)
	)
	if sc.all {
		next = func(after string) ([]string, bool, error) { return f.e.differingAfter(ri, &f.local, after, window) }
		names, more, err = next("")
	} else if names, err = f.e.differing(ri, &f.local, sc.names); err == nil && window > 0 && len(names) > window {
		all := names
		next = func(after string) ([]string, bool, error) {
			i, found := slices.BinarySearch(all, after)
			if found {
				i++
			}
			w := all[i:min(i+window, len(all))]
			return w, i+len(w) < len(all), nil
		}
		names, more, err = next("")
	}
	if err != nil {
		f.log.Warn("index not read", "peer", p.String(), "err", err)
		f.scheduleRetry()
		return
	}
	var ok bool
	if more {
		ok = f.applyWindows(ctx, a, fo, p, ri, names, next)
	} else {
		remote, err := f.loadRemote(ri, names)
		if err != nil {
			f.log.Warn("index not loaded", "peer", p.String(), "err", err)
			f.scheduleRetry()
			return
		}
		ok = f.apply(ctx, a, fo, p, ri, remote)
	}
	if ok {
		sc.all, sc.names = false, nil
	} else {
		sc.all = true
	}
	f.refreshStatus(a, fo)
}

// planWindow is the most entries of a peer's index that one plan takes
// (a device that only reads the folder, and a server taking a device's
// changes under the owner's quota, plan them all at once: additions and
// the deletions that make room for them are weighed together): a larger
// change is loaded, planned and applied a window at a time, so that a sync
// of 100,000 entries holds a window of entries and actions, not all of
// them (a plan holds about 600 bytes an entry, twice while it is ordered).
const planWindow = 8192

// applyWindows applies the differing entries of p's index ri in windows
// of planWindow entries (Config.planWindow), first the window first, then
// each that next returns after the last name of the one before, until one
// says no more follow: first, by name, the entries that
// add or change something (a directory comes before what it holds, in its
// window or an earlier one), then, by name from the last, the deletions
// and the entries that replace a directory (what a directory holds is
// deleted before it is). A directory whose deletion was planned with the
// entries it holds still live would be kept, and recorded as changed
// here: in this order a deletion of a tree, in any number of windows,
// deletes it, and a window of deletions in which some failed ends the
// pass, to be planned again, rather than keep their directories. What
// the windows came to is shown once, as for one plan.
//
// Windows cost what a plan of the whole change does not: a moved file is
// fetched, copying its blocks from the old one, and then the old one is
// deleted, rather than renamed; names that clash on a case-insensitive
// filesystem are skipped only where they meet in a window (a directory
// renamed in case only is fetched again at the replan that follows at
// once). It reports, as apply does, whether everything was applied and
// nothing skipped.
func (f *folder) applyWindows(ctx context.Context, a Access, fo collections.Folder, p lpeer.ID, ri *remoteIndex, first []string, next func(after string) ([]string, bool, error)) bool {
	load := func(w []string) (syncfs.Snapshot, bool) {
		if ctx.Err() != nil {
			return nil, false
		}
		remote, err := f.loadRemote(ri, w)
		if err != nil {
			f.log.Warn("index not loaded", "peer", p.String(), "err", err)
			f.scheduleRetry()
			return nil, false
		}
		return remote, true
	}
	var out outcome
	var late []string
	for w, more := first, true; len(w) > 0; {
		remote, loaded := load(w)
		if !loaded {
			return false
		}
		for n, r := range remote {
			if removes(&f.local, r) {
				late = append(late, n)
				delete(remote, n)
			}
		}
		if len(remote) > 0 && !f.applyPart(ctx, a, fo, p, ri, remote, &out) {
			return false
		}
		if !more {
			break
		}
		var err error
		if w, more, err = next(w[len(w)-1]); err != nil {
			f.log.Warn("index not read", "peer", p.String(), "err", err)
			f.scheduleRetry()
			return false
		}
	}
	skipped := out.res.skipped
	slices.SortFunc(late, func(x, y string) int { return strings.Compare(y, x) })
	for w := range slices.Chunk(late, f.e.cfg.planWindow) {
		remote, loaded := load(w)
		if !loaded {
			return false
		}
		if !f.applyPart(ctx, a, fo, p, ri, remote, &out) {
			return false
		}
		if out.res.failed > 0 || len(out.res.busy) > 0 {
			break
		}
	}
	ok := f.noteOutcome(p, out)
	if skipped > 0 && len(late) > 0 {
		// What was skipped for a name the deletions freed is taken now.
		f.scheduleRetry()
	}
	return ok
}

// removes reports whether taking r may remove a local entry that others
// depend on: r deletes its name, or puts something other than a directory
// where a directory is.
func removes(local syncfs.Entries, r syncfs.FileInfo) bool {
	if r.Deleted {
		return true
	}
	l, ok := local.Get(r.Name)
	return ok && !l.Deleted && l.Type == syncfs.TypeDir && r.Type != syncfs.TypeDir
}

// readOnly reports whether this host is a read-only member's device of fo.
func (f *folder) readOnly(a Access, fo collections.Folder) bool {
	return !hosting(a, fo, f.e.self) && roleOf(a, fo, f.e.self) == roleReader
}

// dropRemotes forgets the peers' indexes the folder holds, as it stops.
func (f *folder) dropRemotes() {
	for p, ri := range f.remotes {
		if err := f.e.peers.Drop(ri.key); err != nil {
			f.log.Debug("peer index not dropped", "peer", p.String(), "err", err)
		}
		delete(f.remotes, p)
	}
}

// loadRemote returns ri's entries of names (strings that ri's summaries
// hold as keys: the entries' names are those, and so are the keys of the
// Local's entries the planned ones become).
func (f *folder) loadRemote(ri *remoteIndex, names []string) (syncfs.Snapshot, error) {
	return f.e.loadRemote(ri, names)
}

// planScope is which entries of a peer's index the next plan looks at:
// those that changed since the last plan that went through cleanly, or
// all of them. Plan leaves alone what is not newer than the local entry,
// so an entry planned and applied needs no second look until it changes.
type planScope struct {
	all   bool
	names nameSet
}

// stagedInMemory is the most entries of a peer's index delta held in
// memory until all its pages are verified (about 1 MB); a larger delta is
// staged in the peer store and moved into place (readIndex). A sync of
// many small changes then writes each entry once, not three times.
const stagedInMemory = 4096

// maxScopeNames is the most names a plan's scope, or an index's delta,
// notes one by one. Past it, the next plan looks at every entry of the
// peer's index, a window at a time: a walk of its summaries on disk,
// where a set of the names of a large change (a million files arriving)
// would take tens of MB.
const maxScopeNames = 1 << 16

// add widens the scope by what changed in ri, to every entry if that is
// more than limit names.
func (sc *planScope) add(ri *remoteIndex, limit int) {
	if ri.delta == nil || len(sc.names)+len(ri.delta) > limit {
		sc.all, sc.names = true, nil
		return
	}
	if sc.all {
		return
	}
	if sc.names == nil {
		sc.names = nameSet{}
	}
	for _, n := range ri.delta {
		sc.names.add(n)
	}
}

// replanAll makes the next plan with every peer look at every entry (after
// a full rescan, or when the ignore patterns changed).
func (f *folder) replanAll() {
	for _, sc := range f.scopes {
		sc.all = true
	}
}

// apply makes the folder take the changes of remote, entries of p's index
// full (those that differ from the local ones, or some of them). It
// reports whether everything planned was applied and nothing skipped.
func (f *folder) apply(ctx context.Context, a Access, fo collections.Folder, p lpeer.ID, full *remoteIndex, remote syncfs.Snapshot) bool {
	var out outcome
	if !f.applyPart(ctx, a, fo, p, full, remote, &out) {
		return false
	}
	return f.noteOutcome(p, out)
}

// outcome is what the applies of a peer's change (one, or a window's
// each) came to.
type outcome struct {
	res     applied
	held    bool   // the quota held changes back
	refusal string // why, for p (the last window's that held some)
	quota   bool   // a refusal is to be noted (p is a device, or a quota applies)
}

// applyPart plans and applies remote, entries of p's index full, adding
// what came of it to out. It reports false if the plan could not be made
// (full could not be read; a retry is scheduled).
func (f *folder) applyPart(ctx context.Context, a Access, fo collections.Folder, p lpeer.ID, full *remoteIndex, remote syncfs.Snapshot, out *outcome) bool {
	self := f.e.self.String()
	remote = f.visible(remote)
	peers := f.sources(a, fo, p)
	if f.readOnly(a, fo) {
		// A read-only device follows the server: where the server changed
		// an entry this device also changed, the server's version wins and
		// the local one is kept as a conflict copy. ReadOnlyOverrides
		// leaves alone the entries at the local version and, here, the
		// names the server lacks: it needs only the entries that differ.
		names, _, err := f.e.differingAfter(full, &f.local, "", 0)
		var server syncfs.Snapshot
		if err == nil {
			server, err = f.loadRemote(full, names)
		}
		if err != nil {
			f.log.Warn("index not loaded", "peer", p.String(), "err", err)
			f.scheduleRetry()
			return false
		}
		pre, _ := syncfs.ReadOnlyOverrides(&f.local, f.visible(server), self, false, f.e.cfg.Now())
		out.res.add(f.applyTracked(ctx, peers, f.safeActions(pre)))
		remote = syncfs.WithoutConcurrent(&f.local, remote)
	}
	actions := syncfs.PlanWith(&f.local, remote, self, f.planOptions())
	if limit, ok := f.e.quotaOf(a, fo, p); ok {
		used := f.e.usage(a, fo.Owner)
		var ref quotaRefusal
		actions, ref = quotaAdmit(actions, &f.local, used, limit)
		out.quota = true
		if ref.changes > 0 {
			out.held = true
			out.refusal = quotaMessage(fo.Owner, used, limit, ref)
		}
	} else if !a.Server(p) {
		out.quota = true // no quota (any more)
	}
	out.res.add(f.applyTracked(ctx, peers, actions))
	return true
}

// noteOutcome shows what the applies of p's change came to (refusals,
// failures, skips), schedules a retry if some change waits, and reports
// whether everything planned was applied and nothing skipped.
func (f *folder) noteOutcome(p lpeer.ID, out outcome) bool {
	res := out.res
	if out.quota {
		f.noteRefusal(p, out.refusal)
	}
	f.noteFailures(p, res)
	if res.failed > 0 {
		if f.stuck {
			f.log.Debug("some changes could not be applied; the folder is stuck; retrying later", "failed", res.failed, "first", res.first)
		} else {
			f.log.Info("some changes could not be applied; retrying later", "failed", res.failed, "first", res.first)
		}
		f.scheduleRetry()
		return false
	}
	f.setStatus(func(st *FolderStatus) {
		if f.failures == 0 {
			st.LastError = ""
		}
		st.LastSync = f.e.cfg.Now()
	})
	if len(res.busy) > 0 {
		f.scheduleRetry()
		return false
	}
	// Changes held back by the quota are planned again at the device's
	// next index or the next pull, which take them once there is room.
	return res.skipped == 0 && !out.held
}

// noteRefusal records why p's last changes were not taken ("" if they
// were), for the index handler to tell p.
func (f *folder) noteRefusal(p lpeer.ID, msg string) {
	cur := f.refusals.Load()
	if cur == nil && msg == "" || cur != nil && (*cur)[p] == msg {
		return
	}
	next := map[lpeer.ID]string{}
	if cur != nil {
		maps.Copy(next, *cur)
	}
	if msg == "" {
		delete(next, p)
		f.log.Info("a device's changes are taken again: the owner's quota has room", "peer", p.String())
	} else {
		next[p] = msg
		f.log.Info("a device's changes not taken: the owner's quota is full", "peer", p.String(), "why", msg)
	}
	f.refusals.Store(&next)
}

// refusal is why p's last changes were not taken, "" if they were.
func (f *folder) refusal(p lpeer.ID) string {
	if m := f.refusals.Load(); m != nil {
		return (*m)[p]
	}
	return ""
}

// planOptions returns how the folder plans to take other hosts' changes.
func (f *folder) planOptions() syncfs.PlanOptions {
	return syncfs.PlanOptions{
		OutsideSymlinks: f.e.cfg.OutsideSymlinks != nil && f.e.cfg.OutsideSymlinks(f.id),
		Names:           syncfs.NativeNameRules(f.root, f.e.cfg.WindowsNames != nil && f.e.cfg.WindowsNames(f.id)),
		NoSymlinks:      f.noSymlinks,
	}
}

// safeActions returns actions not made by syncfs.Plan with the symlinks
// and the names Plan would skip skipped.
func (f *folder) safeActions(actions []syncfs.Action) []syncfs.Action {
	opts := f.planOptions()
	if !opts.OutsideSymlinks || opts.NoSymlinks != "" {
		actions = syncfs.SkipSymlinks(actions, opts.NoSymlinks)
	}
	return syncfs.SkipUnportableNames(actions, opts.Names)
}

// noteFailures records what failed and what was skipped at the last apply
// of p's index and shows the folder's failures and skips in its status:
// LastError names the first failure of the first peer (by ID) that has
// some, and is cleared once no peer has any.
func (f *folder) noteFailures(p lpeer.ID, res applied) {
	if len(res.skips) > 0 {
		f.skipped[p] = res.skips
	} else {
		delete(f.skipped, p)
	}
	f.showSkipped()
	if len(res.busy) > 0 {
		var list []BusyEntry
		for _, n := range slices.Sorted(maps.Keys(res.busy)) {
			list = append(list, BusyEntry{Path: n, Reason: res.busy[n].Error()})
		}
		f.busy[p] = list
	} else {
		delete(f.busy, p)
	}
	f.showBusy()
	if res.failed > 0 {
		prev := f.failed[p].attempts
		res.attempts = make(map[string]int, len(res.errs))
		for n := range res.errs {
			res.attempts[n] = prev[n] + 1
		}
		f.failed[p] = res
	} else {
		delete(f.failed, p)
	}
	f.showFailures()
}

// forgetFailures drops the failures and skips of peers whose changes the
// folder no longer takes (keep says which it does), and reports whether it
// dropped failures: the caller then refreshes InSync, which no apply may
// do soon.
func (f *folder) forgetFailures(keep func(lpeer.ID) bool) bool {
	if k := len(f.skipped); k > 0 {
		maps.DeleteFunc(f.skipped, func(p lpeer.ID, _ []SkippedEntry) bool { return !keep(p) })
		if len(f.skipped) != k {
			f.showSkipped()
		}
	}
	if k := len(f.busy); k > 0 {
		maps.DeleteFunc(f.busy, func(p lpeer.ID, _ []BusyEntry) bool { return !keep(p) })
		if len(f.busy) != k {
			f.showBusy()
		}
	}
	n := len(f.failed)
	maps.DeleteFunc(f.failed, func(p lpeer.ID, _ applied) bool { return !keep(p) })
	if len(f.failed) == n {
		return false
	}
	f.showFailures()
	return true
}

// showFailures sets failures from failed, and LastError, Failed and Stuck
// if there are some; with none, it clears a LastError that spoke of failed
// changes, and NeedFiles and NeedBytes: what an apply leaves needed is
// what failed in it, which (the peer's failures forgotten) no longer is.
func (f *folder) showFailures() {
	f.failures = 0
	var first lpeer.ID
	for q, r := range f.failed {
		f.failures += r.failed
		if first == "" || q < first {
			first = q
		}
	}
	if f.failures == 0 {
		f.retryWait = 0
		if f.stuck {
			f.log.Info("no change fails any more: the folder is no longer stuck")
		}
		f.stuck = false
		f.setStatus(func(st *FolderStatus) {
			if strings.Contains(st.LastError, errNotApplied) {
				st.LastError = ""
			}
			if len(st.Busy) == 0 {
				st.NeedFiles, st.NeedBytes = 0, 0
			}
			st.Failed, st.Stuck = nil, false
		})
		return
	}
	list, stuck := failedChanges(f.failed, f.e.cfg.StuckAfter)
	if stuck && !f.stuck {
		f.log.Warn("a change keeps failing: the folder is stuck; retrying less often",
			"path", list[0].Path, "reason", list[0].Reason, "attempts", list[0].Attempts, "failed", f.failures)
	}
	f.stuck = stuck
	msg := fmt.Sprintf("%d changes %s: %v", f.failures, errNotApplied, f.failed[first].first)
	if stuck {
		msg = fmt.Sprintf("stuck after %d attempts: %s", list[0].Attempts, msg)
	}
	f.setStatus(func(st *FolderStatus) { st.LastError, st.Failed, st.Stuck = msg, list, stuck })
}

// showSkipped sets Skipped and SkippedCount from skipped: each path once
// (the reason of the first peer by ID that skipped it), by path.
func (f *folder) showSkipped() {
	reasons := map[string]string{}
	for _, p := range slices.Sorted(maps.Keys(f.skipped)) {
		for _, s := range f.skipped[p] {
			if _, ok := reasons[s.Path]; !ok {
				reasons[s.Path] = s.Reason
			}
		}
	}
	var list []SkippedEntry
	for _, n := range slices.Sorted(maps.Keys(reasons)) {
		if len(list) == MaxSkippedShown {
			break
		}
		list = append(list, SkippedEntry{Path: n, Reason: reasons[n]})
	}
	f.setStatus(func(st *FolderStatus) { st.Skipped, st.SkippedCount = list, len(reasons) })
}

// showBusy sets Busy from busy: each path once (the reason of the first
// peer by ID), by path, at most MaxFailedShown of them.
func (f *folder) showBusy() {
	reasons := map[string]string{}
	for _, p := range slices.Sorted(maps.Keys(f.busy)) {
		for _, b := range f.busy[p] {
			if _, ok := reasons[b.Path]; !ok {
				reasons[b.Path] = b.Reason
			}
		}
	}
	var list []BusyEntry
	for _, n := range slices.Sorted(maps.Keys(reasons)) {
		if len(list) == MaxFailedShown {
			break
		}
		list = append(list, BusyEntry{Path: n, Reason: reasons[n]})
	}
	f.setStatus(func(st *FolderStatus) { st.Busy = list })
}

// failedChanges lists the changes that failed at the last apply of each
// peer's index, those tried most often first (then by path), at most
// MaxFailedShown, and reports whether one of them failed stuckAfter times
// or more.
func failedChanges(failed map[lpeer.ID]applied, stuckAfter int) ([]FailedChange, bool) {
	byPath := map[string]FailedChange{}
	for _, r := range failed {
		for n, err := range r.errs {
			c := FailedChange{Path: n, Reason: err.Error(), Attempts: r.attempts[n]}
			if old, ok := byPath[n]; !ok || c.Attempts > old.Attempts {
				byPath[n] = c
			}
		}
	}
	list := slices.SortedFunc(maps.Values(byPath), func(a, b FailedChange) int {
		if a.Attempts != b.Attempts {
			return b.Attempts - a.Attempts
		}
		return strings.Compare(a.Path, b.Path)
	})
	stuck := len(list) > 0 && list[0].Attempts >= stuckAfter
	return list[:min(len(list), MaxFailedShown)], stuck
}

// errNotApplied is what LastError says of changes that failed.
const errNotApplied = "not applied"

// scheduleRetry arms the retry timer with a growing wait, the longest
// once the folder is stuck.
func (f *folder) scheduleRetry() {
	f.retryWait = min(max(2*f.retryWait, time.Second), maxRetryWait)
	if f.stuck {
		f.retryWait = maxRetryWait
	}
	f.retry.Reset(f.retryWait)
}

// sources lists the peers to ask for blocks: p first, then the folder's
// server and its other members that are connected.
func (f *folder) sources(a Access, fo collections.Folder, p lpeer.ID) []lpeer.ID {
	out := []lpeer.ID{p}
	var others []lpeer.ID
	for _, q := range f.e.cfg.Transport.Peers() {
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

// scan rescans paths ("" or none: everything) and announces the changes.
func (f *folder) scan(ctx context.Context, paths ...string) error {
	// A changed ignore file changes what the whole folder holds.
	full := len(paths) == 0 || slices.Contains(paths, "") || slices.Contains(paths, syncfs.IgnoreFile)
	if full {
		paths = nil
	}
	if full {
		if m, text, err := loadIgnore(f.root); err != nil {
			f.log.Warn("ignore file not reloaded", "err", err)
		} else if text != f.ignoreText {
			f.log.Info("ignore patterns changed (the watcher keeps the old ones until the folder restarts)")
			f.scanner.Ignore, f.ignoreText = m, text
		}
		// A full rescan is also the safety net of delta planning.
		f.replanAll()
		if err := f.checkMarker(); err != nil {
			f.setStatus(func(st *FolderStatus) {
				st.State, st.LastError, st.InSync = StateError, err.Error(), false
				st.Emptied = errors.Is(err, ErrEmptied)
			})
			return err
		}
		// Not (or no longer) emptied: the marker file is there, the
		// directory is not empty, or Rescan confirmed the emptying.
		f.setStatus(func(st *FolderStatus) { st.Emptied = false })
	}
	f.setState(StateScanning)
	defer f.setState(StateIdle)
	if full {
		began := time.Now()
		defer func() {
			f.fullScanAt, f.fullScanCost, f.fullScanEntries = time.Now(), time.Since(began), f.local.Len()
		}()
	}
	// What is hashed is recorded and published as the scan goes, so that
	// peers start fetching the first files of a long scan at once, and
	// stored, so that the Local need not hold a long scan's entries.
	f.scanner.Progress = func(names []string) {
		f.touch(names...)
		if time.Since(f.lastPub) >= f.pubEvery {
			f.publish(ctx)
			f.persist(false)
		}
	}
	stats, err := f.scanner.Update(ctx, &f.local, paths...)
	f.scanner.Progress = nil
	if err != nil {
		f.setStatus(func(st *FolderStatus) { st.LastError = "scanning: " + err.Error() })
		f.publish(ctx)
		return err
	}
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
// tells the peers that apply it. Only the entries noted as changed (or
// watched) are compared, unless everything is to be.
func (f *folder) publish(ctx context.Context) {
	began := time.Now()
	defer func() {
		// Publishing costs what changed: still, in a busy folder, announce
		// progress less often, so that it stays a small part of the work.
		f.lastPub = time.Now()
		f.pubEvery = max(publishEvery, 10*f.lastPub.Sub(began))
	}()
	old := f.pub.Load()
	names := make([]string, 0, len(f.changed)+len(f.watched))
	for n := range f.changed {
		names = append(names, n)
	}
	for n := range f.watched {
		if !f.changed.has(n) {
			names = append(names, n)
		}
	}
	all := f.pubAll
	f.changed, f.pubAll = nameSet{}, false
	var files syncfs.Entries = &f.local
	if len(f.replacing) > 0 {
		files = withheld{&f.local, f.replacing}
	}
	p, changed := newPublished(old, f.id, f.e.self.String(), f.session, f.seq+1, files, names, all, f.e.chunks)
	if p == nil {
		return
	}
	for _, n := range changed {
		delete(f.watched, n)
	}
	f.seq++
	p.cache.dir = f.e.pages
	f.pub.Store(p)
	if old != nil {
		old.close() // its page files go
	}
	f.archive(p)
	f.setStatus(func(st *FolderStatus) {
		st.Sequence, st.LocalFiles, st.LocalDirs, st.LocalBytes = p.seq, p.files, p.dirs, p.bytes
	})
	f.announce(ctx, p)
}

// touch notes that the Local's entries names changed: the next publish,
// status refresh and store look at them.
//
// A set of more than Config.scopeNames names gives way to looking at
// every entry (to publish, to count): a large change (a million files
// arriving) would hold every name of it, for a comparison that then costs
// about what a whole one does. The entries to store are stored instead.
func (f *folder) touch(names ...string) {
	for _, n := range names {
		if !f.pubAll {
			f.changed.add(n)
		}
		if !f.statusAll {
			f.statusChanged.add(n)
		}
	}
	limit := f.e.cfg.scopeNames
	if len(f.changed) > limit {
		f.changed, f.pubAll = nameSet{}, true
	}
	if len(f.statusChanged) > limit {
		f.statusChanged, f.statusAll = nameSet{}, true
	}
}

// emptied returns m emptied: cleared if it is small, else a new map, since
// a cleared map keeps the memory it grew to (a sync of many files would
// hold it for good).
func emptied(m nameSet) nameSet {
	if len(m) > 1024 {
		return nameSet{}
	}
	clear(m)
	return m
}

// nameSet is a set of names: a third smaller than a map[string]bool, in
// the sets that note every name a sync of many files changed.
type nameSet map[string]struct{}

func (s nameSet) add(n string)      { s[n] = struct{}{} }
func (s nameSet) has(n string) bool { _, ok := s[n]; return ok }

// touchAll notes that any entry of the Local may have changed.
func (f *folder) touchAll() {
	f.pubAll, f.statusAll = true, true
}

// applyTracked applies actions as applyActions does (taking them over),
// with every name they may change watched, so that the progress published
// while they run includes them.
func (f *folder) applyTracked(ctx context.Context, peers []lpeer.ID, actions []syncfs.Action) applied {
	var names []string
	for _, a := range actions {
		if a.Kind == syncfs.ActSkip {
			continue
		}
		names = append(names, a.Name)
		if a.From != "" {
			names = append(names, a.From)
		}
		if a.ConflictName != "" {
			names = append(names, a.ConflictName)
		}
	}
	for _, n := range names {
		f.watched.add(n)
	}
	f.replacing = replaced(actions)
	res := f.applyActions(ctx, peers, actions)
	f.replacing = nil
	// A name changed twice (by two actions) may have left the watch
	// after the first: look at all of them once more.
	f.watched = emptied(f.watched)
	f.touch(names...)
	f.publish(ctx)
	return res
}

// replaced returns the names that actions delete and then create again:
// an entry replaced by one of another type (a file by a directory, a
// directory by a file). The deletion records a tombstone at the version
// of the entry that replaces it; published on its own, by a publication
// while the apply goes on, a peer would take the deletion at that
// version, and then take the entry that replaces it, at the same
// version, for one it holds already.
func replaced(actions []syncfs.Action) nameSet {
	var deleted, out nameSet
	for _, a := range actions {
		switch a.Kind {
		case syncfs.ActSkip:
		case syncfs.ActDelete:
			if deleted == nil {
				deleted = nameSet{}
			}
			deleted.add(a.Name)
		default:
			if deleted.has(a.Name) {
				if out == nil {
					out = nameSet{}
				}
				out.add(a.Name)
			}
		}
	}
	return out
}

// withheld is the Local as a publication sees it while an apply goes on:
// without the names being replaced (folder.replacing), which stay as
// published until the apply ends.
type withheld struct {
	*syncfs.Local
	names nameSet
}

func (w withheld) Get(name string) (syncfs.FileInfo, bool) {
	if w.names.has(name) {
		return syncfs.FileInfo{}, false
	}
	return w.Local.Get(name)
}

func (w withheld) All() iter.Seq2[string, syncfs.FileInfo] {
	return func(yield func(string, syncfs.FileInfo) bool) {
		for n, fi := range w.Local.All() {
			if !w.names.has(n) && !yield(n, fi) {
				return
			}
		}
	}
}

// dbKey is where the folder's Local is stored: by folder and directory,
// so a folder synced in another directory starts afresh instead of taking
// every file the old directory held for deleted.
func (f *folder) dbKey() string { return f.id + "|" + f.root }

// heldBack reports whether entries of the Local wait to be stored: a
// store persist held back, or one that failed. The folder's goroutine then
// calls persist again within flushEvery.
func (f *folder) heldBack() bool { return f.local.Unflushed() > 0 }

// persist stores the entries of the Local changed since the last store
// (syncfs.Local.Flush), at most every putEvery unless forced (every
// flushEvery at most once they are more than a plan's window: past its
// limit, the Local holds in memory only what it has not stored); those
// not stored (the store failed) stay to be stored, and the next try waits
// at least flushEvery.
//
// The Local records only what the applier wrote (or the scanner found)
// on disk, so the stored Local lags the disk but never runs ahead of it;
// the first scan after a restart hashes what changed since it was stored.
// Storing a few entries costs a small transaction whatever the folder's
// size, so it is done soon after each change (at most every
// persistEvery): little is left to rehash after a crash. While busy,
// stores are spaced to ten times their cost.
func (f *folder) persist(force bool) {
	wait := f.putEvery
	if f.local.Unflushed() > f.e.cfg.planWindow {
		// Past its limit, the Local holds what it has not stored.
		wait = min(wait, flushEvery)
	}
	if !f.heldBack() || !force && time.Since(f.lastPut) < wait || len(f.replacing) > 0 {
		// An apply replacing entries by entries of another type stores
		// nothing until it ends: a crash between a deletion and the
		// creation after it would leave a stored tombstone at the
		// version of the entry that replaces it.
		return
	}
	if len(f.undurable) > 0 {
		// A change whose directory fsync failed is in the Local but may
		// not survive a crash: stored, it would make the old content
		// found after one look like a newer local edit.
		if err := syncfs.Barrier(f.root, slices.Collect(maps.Keys(f.undurable))); err != nil {
			f.log.Error("not storing the folder's index: changes are not durable yet", "err", err)
			f.lastPut, f.putEvery = time.Now(), max(f.putEvery, flushEvery)
			return
		}
		f.undurable = emptied(f.undurable)
	}
	began := time.Now()
	// The Local stores the entries changed since it last did.
	if err := f.local.Flush(); err != nil {
		// Try again, with what changes meanwhile, a while later.
		f.log.Error("storing the folder's index", "err", err)
		f.lastPut, f.putEvery = time.Now(), max(f.putEvery, flushEvery)
		return
	}
	f.lastPut = time.Now()
	f.putEvery = max(persistEvery, 10*f.lastPut.Sub(began))
}

// visible drops from a remote snapshot the names this folder ignores (at
// least the marker file).
func (f *folder) visible(remote syncfs.Snapshot) syncfs.Snapshot {
	if _, ok := remote[MarkerFile]; !ok && f.ignoreText == "" {
		return remote
	}
	m := f.scanner.Ignore
	out := make(syncfs.Snapshot, len(remote))
	for n, fi := range remote {
		if !m.Match(n, fi.Type == syncfs.TypeDir) {
			out[n] = fi
		}
	}
	return out
}

// refreshStatus recomputes LocalChanges and InSync against the index of
// the hosting server the device syncs with (hub), looking again only at the
// entries changed since the last time (locally or in the server's index)
// unless the server's index came whole.
func (f *folder) refreshStatus(a Access, fo collections.Folder) {
	self := f.e.self
	if hosting(a, fo, self) {
		f.statusChanged = emptied(f.statusChanged) // nothing is counted on the server
		f.statusAll = true
		var quota *QuotaStatus
		if fo.Owner != "" && f.e.cfg.Quota != nil {
			if limit := f.e.cfg.Quota(fo.Owner); limit > 0 {
				quota = &QuotaStatus{User: fo.Owner, Used: f.e.usage(a, fo.Owner), Limit: limit}
			}
		}
		f.setStatus(func(st *FolderStatus) {
			st.Role = roleServer.String()
			st.InSync = st.NeedFiles == 0 && f.failures == 0
			st.LocalChanges = 0
			st.Quota = quota
		})
		return
	}
	me := roleOf(a, fo, self)
	hub := f.hub(a, fo)
	ri := f.remotes[hub]
	var servers []string
	for _, h := range a.Hosts(fo) {
		if f.reached[h] {
			servers = append(servers, h.String())
		}
	}
	changes := 0
	if ri != nil {
		changes = f.countChanges(hub, ri)
	} else {
		f.statusChanged = emptied(f.statusChanged) // all counted again when the index comes
		f.statusAll = true
	}
	f.setStatus(func(st *FolderStatus) {
		st.Role = me.String()
		if me == roleNone {
			st.Role = ""
		}
		st.Servers = servers
		if ri == nil {
			st.InSync, st.LocalChanges = false, 0
			return
		}
		st.ServerSequence = ri.seq
		st.LocalChanges = changes
		st.InSync = st.NeedFiles == 0 && f.failures == 0 && (me == roleReader || changes == 0)
	})
}

// hubs lists the servers hosting fo other than this host: the connected
// ones first, each group in Access.Hosts' order (the home server first).
func (f *folder) hubs(a Access, fo collections.Folder) []lpeer.ID {
	connected := f.e.cfg.Transport.Peers()
	var up, down []lpeer.ID
	for _, h := range a.Hosts(fo) {
		switch {
		case h == f.e.self:
		case slices.Contains(connected, h):
			up = append(up, h)
		default:
			down = append(down, h)
		}
	}
	return append(up, down...)
}

// hub is the hosting server whose index a device's status speaks of: the
// first of Access.Hosts whose index the device fetched at its last request,
// or the home server if none answered.
func (f *folder) hub(a Access, fo collections.Folder) lpeer.ID {
	hosts := a.Hosts(fo)
	for _, h := range hosts {
		if f.reached[h] && f.remotes[h] != nil {
			return h
		}
	}
	if len(hosts) == 0 {
		return ""
	}
	return hosts[0]
}

// reachedAny reports whether a server hosting fo answered this device's
// last request for its index.
func (f *folder) reachedAny(a Access, fo collections.Folder) bool {
	return slices.ContainsFunc(a.Hosts(fo), func(h lpeer.ID) bool { return f.reached[h] })
}

// countChanges returns len(syncfs.LocalChanges(local, visible server index)),
// hub's index being ri.
func (f *folder) countChanges(hub lpeer.ID, ri *remoteIndex) int {
	// Of the server's entries, only those at another version than the
	// local ones are loaded (their summaries tell which). The others are
	// at the local version, and the local entry stands for them: counting
	// needs of them only that they are there and no local change; nor
	// does it look at the server's entries of names the Local lacks, but
	// that they are there.
	visible := func(n string, s syncfs.FileInfo, ok bool) (syncfs.FileInfo, bool) {
		if !ok || f.scanner.Ignore.Match(n, s.Type == syncfs.TypeDir) {
			return syncfs.FileInfo{}, false
		}
		return s, true
	}
	st := &f.statusCount
	// recount counts names again, reading their summaries in one pass.
	recount := func(names []string) {
		var need []string
		err := f.e.peers.Summaries(ri.key, names, func(n string, sum syncfs.PeerSummary, ok bool) {
			l, okL := f.local.Get(n)
			switch {
			case ok && okL && syncfs.SummaryOf(l) != sum:
				need = append(need, n)
			case ok && okL:
				s, okS := visible(n, l, true)
				st.Update(n, l, okL, s, okS)
			default:
				s, okS := visible(n, syncfs.FileInfo{Name: n}, ok)
				st.Update(n, l, okL, s, okS)
			}
		})
		var loaded syncfs.Snapshot
		if err == nil && len(need) > 0 {
			loaded, err = f.loadRemote(ri, need)
		}
		if err != nil {
			// Counted from what was read, and again in full next time.
			f.log.Debug("index not loaded for the status", "err", err)
			f.statusAll = true
		}
		for _, n := range need {
			l, okL := f.local.Get(n)
			s, okS := loaded[n]
			s, okS = visible(n, s, okS)
			st.Update(n, l, okL, s, okS)
		}
	}
	counted := st.remote != nil && st.hub == hub && st.ignore == f.ignoreText
	// An index that came as a delta over the one counted: its names are
	// the server's side of what changed.
	delta := ri.delta != nil && ri.session == st.session && ri.base == st.seq
	moved := st.session != ri.session || st.seq != ri.seq
	if f.statusAll || !counted || moved && !delta {
		f.statusAll, st.hub, st.ignore = false, hub, f.ignoreText
		st.Reset()
		recount(slices.Collect(f.local.Names()))
	} else if moved {
		for _, n := range ri.delta {
			f.statusChanged.add(n)
		}
	}
	st.remote, st.session, st.seq = ri, ri.session, ri.seq
	recount(slices.Collect(maps.Keys(f.statusChanged)))
	f.statusChanged = emptied(f.statusChanged)
	// Count looks up the few directories that hold conflict copies.
	server := func(n string) (syncfs.FileInfo, bool) {
		got, err := f.loadRemote(ri, []string{n})
		if err != nil {
			f.log.Debug("index not loaded for the status", "err", err)
			f.statusAll = true
		}
		s, ok := got[n]
		return visible(n, s, ok)
	}
	return st.Count(f.local.Get, server)
}
