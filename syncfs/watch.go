package syncfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// expectTTL is how long an expected own write suppresses matching events.
const expectTTL = 5 * time.Second

// Watcher watches a folder recursively (one watch per directory, as
// fsnotify is not recursive) and sends batches of names to rescan, debounced
// by an Aggregator. Events are hints; the scanner is the truth, so a missed
// or extra event costs at most a rescan, and a periodic full rescan by the
// caller remains the safety net.
//
// A directory that appears is watched and then walked, so entries created in
// it before its watch was added (mkdir -p a/b/c && touch a/b/c/f) are not
// missed: the batch names the new directory, and rescanning it covers
// everything inside. A directory renamed, moved out or removed stops being
// watched, with everything under it; under a new name in the folder it is
// a directory that appears. A lost event queue (inotify overflow) or a watch that
// cannot be added (the inotify limits) is logged once with what to do, and
// asks for a full rescan. Events on the applier's temporary files, on
// ignored names, and on names the applier announced with Expect are dropped.
//
// With DirsOnly, only directories are watched, never the files in them:
// on macOS, where fsnotify's kqueue backend holds a descriptor open for
// every file watched, a folder of tens of thousands of files would run
// out of descriptors. A change of a directory's entries lists it again
// and reports what appeared, went or was replaced (a file renamed over
// another, as editors save); a write to a file in place is not seen
// there, so the whole folder is sent for a rescan every Rescan.
type Watcher struct {
	// DirsOnly watches directories only (see above). NewWatcher sets it
	// on macOS, with a kqueue of directories in place of fsnotify;
	// elsewhere it may be set (for tests) and fsnotify's events on files
	// are then dropped, as a directory watch on kqueue would not have
	// them. Set before Run.
	DirsOnly bool
	// Rescan, with DirsOnly, is how often the whole folder is sent for a
	// rescan (NewWatcher: DefaultDirsRescan; zero: never, so writes to
	// files in place are not reported at all). Set before Run.
	Rescan time.Duration

	root   string
	ignore *Matcher
	conf   AggregatorConfig
	log    *slog.Logger
	out    chan []string

	mu      sync.Mutex
	expect  map[string]expected
	pruneAt int           // prune expired expectations when there are more
	noted   chan struct{} // Expect's note to Run: expectations wait to expire
	epoch   time.Time     // what expectations' times count from (see since)

	// addWatch adds a watch; a test seam for watch-limit errors.
	addWatch func(b dirBackend, path string) error
}

// dirBackend is what Run adds watches to: an *fsnotify.Watcher, or with
// DirsOnly on macOS a kqueue of directories.
type dirBackend interface {
	Add(path string) error
	Remove(path string) error
	Close() error
}

type expected struct {
	size, mtime int64
	until       time.Duration // since Watcher.epoch: a third less than a time.Time, in a map of every file an apply wrote
}

// NewWatcher returns a Watcher for the folder at root; it starts nothing.
// Names ignore matches are not watched or reported. log receives the
// warnings (slog.Default() if nil).
func NewWatcher(root string, ignore *Matcher, c AggregatorConfig, log *slog.Logger) (*Watcher, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", root, err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Watcher{
		root: abs, ignore: ignore, conf: c, log: log.With("folder", abs),
		out:      make(chan []string),
		expect:   map[string]expected{},
		pruneAt:  1024,
		noted:    make(chan struct{}, 1),
		addWatch: func(b dirBackend, p string) error { return b.Add(p) },
		DirsOnly: dirsOnlyDefault,
		Rescan:   DefaultDirsRescan,
	}, nil
}

// Batches returns the channel of names to rescan: slash-separated, relative
// to the root, sorted, none inside another; [""] means the whole folder.
// The first batch, [""], is sent once every directory is watched, so a
// scan made after receiving it misses nothing. Batches not yet received
// are merged, so a slow reader never blocks the watcher.
func (w *Watcher) Batches() <-chan []string { return w.out }

// Expect announces that the applier is about to make name have size and
// mtime (Unix nanoseconds), or, with size -1, disappear. For a few seconds,
// events on name are dropped while what is on disk matches.
func (w *Watcher) Expect(name string, size, modTime int64) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.expect) > w.pruneAt {
		for n, e := range w.expect {
			if w.since(now) > e.until {
				delete(w.expect, n)
			}
		}
		// Prune again only once the map has doubled, so applying many
		// files costs linear time, not quadratic.
		w.pruneAt = max(1024, 2*len(w.expect))
	}
	w.expect[name] = expected{size: size, mtime: modTime, until: w.since(now) + expectTTL}
	select {
	case w.noted <- struct{}{}:
	default:
	}
}

// since returns how long after w's epoch (the first time it asks) now
// is; w.mu is held.
func (w *Watcher) since(now time.Time) time.Duration {
	if w.epoch.IsZero() {
		w.epoch = now
	}
	return now.Sub(w.epoch)
}

// pruneExpired forgets the expectations expired at now and returns how
// many remain. A map emptied is made anew: a map keeps the room of the
// most entries it held (an apply of 100,000 files: 3 MB), and a folder at
// rest expects nothing.
func (w *Watcher) pruneExpired(now time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	for n, e := range w.expect {
		if w.since(now) > e.until {
			delete(w.expect, n)
		}
	}
	if len(w.expect) == 0 {
		w.expect, w.pruneAt = map[string]expected{}, 1024
	}
	return len(w.expect)
}

// own reports whether an event on name is the echo of an expected write.
func (w *Watcher) own(name string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.expect[name]
	if !ok {
		return false
	}
	if w.since(now) > e.until {
		delete(w.expect, name)
		return false
	}
	fi, err := os.Lstat(filepath.Join(w.root, filepath.FromSlash(name)))
	switch {
	case e.size < 0 && errors.Is(err, fs.ErrNotExist):
		return true
	case e.size >= 0 && err == nil && fi.Mode().IsRegular() && fi.Size() == e.size && fi.ModTime().UnixNano() == e.mtime:
		return true
	}
	delete(w.expect, name) // changed by someone else since
	return false
}

// Run watches until ctx is done, then stops the watches and returns nil
// after everything it started has exited. It fails if the folder cannot be
// watched at all.
func (w *Watcher) Run(ctx context.Context) error {
	var (
		b      dirBackend
		events <-chan fsnotify.Event
		dirs   <-chan string // with a kqueue of directories: those changed
		errs   <-chan error
	)
	if q, err := openDirQueue(w.DirsOnly); err == nil {
		b, dirs, errs = q, q.changed, q.errs
	} else if !errors.Is(err, errNoDirQueue) {
		return fmt.Errorf("watching %s: %w", w.root, err)
	} else {
		fw, err := fsnotify.NewBufferedWatcher(4096)
		if err != nil {
			return fmt.Errorf("watching %s: %w", w.root, err)
		}
		b, events, errs = fw, fw.Events, fw.Errors
	}
	defer b.Close()
	agg, err := NewAggregator(w.conf)
	if err != nil {
		return err
	}
	st := &watchState{w: w, fw: b, agg: agg, watched: map[string]bool{"": true}, listings: map[string]listing{}}
	if err := w.addWatch(b, w.root); err != nil {
		return fmt.Errorf("watching %s: %w", w.root, err)
	}
	st.addTree("", time.Now())
	st.send([]string{""})

	var rescan <-chan time.Time
	if w.DirsOnly && w.Rescan > 0 {
		t := time.NewTicker(w.Rescan)
		defer t.Stop()
		rescan = t.C
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// Expectations are forgotten once expired, while there are some.
	prune := time.NewTimer(time.Hour)
	prune.Stop()
	defer prune.Stop()
	pruning := false
	for {
		if next, ok := agg.Next(); ok {
			timer.Reset(time.Until(next))
		} else {
			timer.Stop()
		}
		var out chan []string
		if len(st.pending) > 0 {
			out = w.out
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			st.event(ev, time.Now())
		case d := <-dirs:
			if name, ok := st.rel(d); ok {
				st.dirChanged(name, time.Now())
			} else {
				// Only the root's parent is outside: the root itself
				// was removed or renamed.
				st.w.log.Warn("folder root was removed or moved; rescanning")
				st.agg.Overflow(time.Now())
			}
		case <-rescan:
			st.send([]string{""})
		case err, ok := <-errs:
			if !ok {
				return nil
			}
			st.error(err, time.Now())
		case <-timer.C:
			st.send(agg.Tick(time.Now()))
		case <-w.noted:
			if !pruning {
				prune.Reset(expectTTL + time.Second)
				pruning = true
			}
		case <-prune.C:
			pruning = false
			if w.pruneExpired(time.Now()) > 0 {
				prune.Reset(expectTTL)
				pruning = true
			}
		case out <- st.pending:
			st.pending = nil
		}
	}
}

// watchState is what Run's goroutine owns.
type watchState struct {
	w            *Watcher
	fw           dirBackend
	agg          *Aggregator
	pending      []string
	watched      map[string]bool    // directories watched, by name ("" the root)
	listings     map[string]listing // with DirsOnly: the last listing of each watched directory
	limitLogged  bool
	errorsLogged int
}

// send merges batch into the batches not yet received.
func (st *watchState) send(batch []string) {
	if len(batch) == 0 {
		return
	}
	st.pending = scopesOf(append(st.pending, batch...))
}

// rel returns the slash-separated name of the native path p under the
// root, false if p is not under it; the root itself is "".
func (st *watchState) rel(p string) (string, bool) {
	r, err := filepath.Rel(st.w.root, p)
	if err != nil || r == ".." || len(r) > 2 && r[:3] == ".."+string(filepath.Separator) {
		return "", false
	}
	if r == "." {
		return "", true
	}
	return filepath.ToSlash(r), true
}

func (st *watchState) event(ev fsnotify.Event, now time.Time) {
	name, ok := st.rel(ev.Name)
	if !ok {
		return
	}
	if name == "" {
		// The root itself was removed or renamed.
		st.w.log.Warn("folder root was removed or moved; rescanning")
		st.agg.Overflow(now)
		return
	}
	if st.w.DirsOnly {
		// As a directory watch on kqueue: only a change of a directory's
		// entries is seen, and which entries changed is found by
		// listing the directory again.
		if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			st.dirChanged(parentDir(name), now)
		}
		return
	}
	if ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove) {
		st.unwatch(name)
	}
	if IsTemp(name) {
		return
	}
	isDir := false
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			isDir = true
		}
	}
	if st.w.ignore.Match(name, isDir) {
		return
	}
	if isDir {
		// Watch it first, then walk it: whatever was created inside before
		// the watch existed is covered by rescanning the directory.
		st.addTree(name, now)
	} else if ev.Op != fsnotify.Chmod && st.w.own(name, now) {
		// A change of mode alone is never taken for an expected write:
		// Expect knows sizes and mtimes, not modes, so a chmod right after
		// the applier wrote a file would otherwise go unseen.
		return
	}
	var op Op
	for _, m := range []struct {
		f fsnotify.Op
		o Op
	}{{fsnotify.Create, OpCreate}, {fsnotify.Write, OpWrite}, {fsnotify.Remove, OpRemove}, {fsnotify.Rename, OpRename}, {fsnotify.Chmod, OpChmod}} {
		if ev.Has(m.f) {
			op |= m.o
		}
	}
	st.agg.Event(name, op, now)
}

func (st *watchState) error(err error, now time.Time) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		st.w.log.Warn("filesystem event queue overflowed, events were lost; rescanning the whole folder (raise fs.inotify.max_queued_events if this recurs)")
	} else if st.errorsLogged < 10 {
		st.errorsLogged++
		st.w.log.Warn("file watcher error; rescanning the whole folder", "err", err)
	}
	st.agg.Overflow(now)
}

// addTree watches the directory name and every directory under it that is
// not ignored.
func (st *watchState) addTree(name string, now time.Time) {
	top := filepath.Join(st.w.root, filepath.FromSlash(name))
	filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil // vanished meanwhile, or not a directory: nothing to watch
		}
		rel, ok := st.rel(p)
		if !ok {
			return filepath.SkipDir
		}
		if rel != "" && (IsTemp(rel) || st.w.ignore.Match(rel, true)) {
			return filepath.SkipDir
		}
		if rel == "" && name == "" {
			st.list(rel, p)
			return nil // the root is watched by Run
		}
		if err := st.w.addWatch(st.fw, p); err != nil {
			if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EMFILE) {
				if !st.limitLogged {
					st.limitLogged = true
					st.w.log.Error("cannot watch more directories: "+watchLimitHint+". Changes in unwatched directories are found by full rescans", "dir", p, "err", err)
				}
				st.agg.Overflow(now)
				return filepath.SkipAll
			}
			if !errors.Is(err, fs.ErrNotExist) {
				st.w.log.Warn("cannot watch directory; rescanning it", "dir", p, "err", err)
				st.agg.Event(rel, OpCreate, now)
			}
			return filepath.SkipDir
		}
		st.watched[rel] = true
		st.list(rel, p)
		return nil
	})
}

// list keeps, with DirsOnly, the listing of the directory name (at the
// native path p) that dirChanged compares the next one with.
func (st *watchState) list(name, p string) {
	if !st.w.DirsOnly {
		return
	}
	if l, err := listDir(p); err == nil {
		st.listings[name] = l
	}
}

// unwatch stops watching the directory name, moved away or removed, and
// every directory under it. A watch stays on its directory wherever it
// moves and keeps the name it was added under: kept, it would report a
// renamed directory's changes under its old name, and one moved out of
// the folder would stay watched. The directory's new name, if in the
// folder, is watched anew when its creation is seen.
func (st *watchState) unwatch(name string) {
	if !st.watched[name] {
		return
	}
	for n := range st.watched {
		if under(n, name) {
			// A watch the kernel already dropped (a removed directory)
			// is not known any more: nothing to do.
			_ = st.fw.Remove(filepath.Join(st.w.root, filepath.FromSlash(n)))
			delete(st.watched, n)
			delete(st.listings, n)
		}
	}
}
