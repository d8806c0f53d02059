package syncfs

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultStaleTemp is how old an applier temporary file must be before Scan
// removes it, when Scanner.StaleTemp is zero: a day, so that the partial
// file of a fetch interrupted by a restart or a long disconnection is
// still there to resume (see Applier), while one whose version is no
// longer wanted does not stay for ever.
const DefaultStaleTemp = 24 * time.Hour

// racyWindow is how close to the scan a file's last change may be before
// its stat is not trusted on the next scan: filesystems keep timestamps at
// a granularity (a kernel tick, a second on some), so a second change in
// the same tick could leave size and times equal.
const racyWindow = time.Second

// hashAttempts bounds how often a file that changes while being hashed is
// hashed again within one scan.
const hashAttempts = 3

// Scanner walks a folder on disk and records what changed since the last
// scan. The zero value is not usable: set Root and Self.
type Scanner struct {
	// Root is the folder's directory.
	Root string
	// Self is this device's ID, the one whose counter changed entries get.
	Self string
	// Ignore says which names are not synced (nil: none). Ignored entries
	// are neither recorded nor deleted: what the previous Local said about
	// them stays.
	Ignore *Matcher
	// Chunking sets the blocks (DefaultChunking if zero). Every device of a
	// folder must use the same.
	Chunking Chunking
	// Workers bounds how many files are hashed at once (GOMAXPROCS if
	// zero).
	Workers int
	// StaleTemp is how old (by change time) an applier temporary file must
	// be before Scan removes it (DefaultStaleTemp if zero; negative: at
	// once). A younger one is left alone: it may be the partial file of
	// an interrupted fetch that the next attempt resumes.
	StaleTemp time.Duration
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Progress, if set, is called by Update on the caller's goroutine with
	// the names of the entries it just recorded with a new version, as
	// files are hashed and once more before it returns (also with an
	// error): a caller may publish what a long scan found so far. Until
	// Update returns, entries are only added or changed, never deleted.
	Progress func(names []string)
	// IgnorePerms keeps the permission bits recorded for an entry, or
	// gives a new one 0644 (0755 for a directory), instead of reading
	// them from the disk: for file systems without POSIX modes, where the
	// executable bit that travels in the index could not be kept and a
	// mode read back would look like a change. Always so on Windows.
	IgnorePerms bool
	// FS, if set, is read instead of the directory Root (a simulated file
	// system, for tests); Root must still be set.
	FS FS

	// afterHash, if set, is called after hashing a file and before
	// checking that it did not change meanwhile (a test seam).
	afterHash func(name string)
}

// ScanStats says what a scan found and did.
type ScanStats struct {
	Files, Dirs, Symlinks int // live entries found
	Reused                int // files whose unchanged stat let their hash be reused
	Hashed                int // files hashed (each attempt counts)
	HashedBytes           int64
	Changed               int      // entries given a new version: new, changed or deleted
	Names                 []string // the names of the entries changed, in the order recorded
	Deleted               int      // of which deletions (tombstones)
	Unstable              []string // files still changing after several attempts: left as they were, rescan them
	Skipped               []string // entries not synced, with why: bad names, special files, read errors
	TempRemoved           int      // stale temporary files removed
	// Restated names the entries whose disk stat the scan changed, set
	// or removed without a new version (a file found unchanged under a
	// new stat, or no longer racy), for a store of the Local to write.
	Restated []string
}

// Scan walks the folder and returns the new Local: prev with the entries
// that changed given a new version (prev's version updated by Self), files
// whose disk stat is unchanged (size, mtime, change time, inode, mode)
// keeping their hashes without being read, and entries that disappeared
// turned into tombstones. prev is not modified. Files are hashed in
// parallel; a file that changes while being hashed is hashed again, and if
// it keeps changing it is left as it was and listed in ScanStats.Unstable.
// An entry that cannot be read is left as it was (never deleted) and listed
// in ScanStats.Skipped.
//
// With paths (slash-separated names relative to Root), only those entries
// and everything under them are scanned, as the Watcher reports them; ""
// or no paths at all means the whole folder. Scan must not run at the same
// time as an Applier on the same folder.
func (s *Scanner) Scan(ctx context.Context, prev Local, paths ...string) (Local, ScanStats, error) {
	next := prev.Clone()
	stats, err := s.Update(ctx, &next, paths...)
	if err != nil {
		return Local{}, stats, err
	}
	return next, stats, nil
}

// Update is Scan recording the changes in l itself, so that a scan of a
// few paths costs what it looks at, not the size of l. Entries are
// recorded as they are found (see Progress); deletions, last, only if the
// walk and the hashing went through. On an error, l holds the changes
// reported to Progress and no others.
func (s *Scanner) Update(ctx context.Context, l *Local, paths ...string) (ScanStats, error) {
	var stats ScanStats
	if s.Root == "" || s.Self == "" {
		return stats, errors.New("scanner: Root and Self must be set")
	}
	c := s.Chunking
	if c == (Chunking{}) {
		c = DefaultChunking
	}
	if err := c.Validate(); err != nil {
		return stats, err
	}
	fsys := s.FS
	if fsys == nil {
		root, err := os.OpenRoot(s.Root)
		if err != nil {
			return stats, fmt.Errorf("scanning: %w", err)
		}
		defer root.Close()
		fsys = rootFS{root}
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	sc := &scan{s: s, root: fsys, l: l, start: now(), now: now, stats: &stats, seen: newSeenSet(), gone: map[string]bool{}, keep: map[string]bool{}}

	scopes := scopesOf(paths)
	// Only scopes that were directories (or the whole folder) may hold
	// deleted entries under them: asked before anything is recorded.
	walk := false
	for _, p := range scopes {
		if e, ok := l.Get(p); p == "" || ok && e.Type == TypeDir {
			walk = true
		}
	}
	sc.chunking = c
	for _, p := range scopes {
		err := ctx.Err()
		if err == nil {
			err = sc.walkScope(ctx, p)
		}
		if err != nil {
			sc.report()
			return stats, err
		}
	}
	err := sc.flush(ctx)
	if err == nil {
		sc.deletions(scopes, walk)
	}
	sc.report()
	slices.Sort(stats.Unstable)
	slices.Sort(stats.Skipped)
	return stats, err
}

// scopesOf returns the valid paths to scan, none under another, sorted; a
// single "" for the whole folder.
func scopesOf(paths []string) []string {
	if len(paths) == 0 || slices.Contains(paths, "") {
		return []string{""}
	}
	var out []string
	for _, p := range slices.Sorted(slices.Values(paths)) {
		if CheckName(p) != nil {
			continue
		}
		if n := len(out); n > 0 && (out[n-1] == p || strings.HasPrefix(p, out[n-1]+"/")) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// under reports whether name is scope or inside it.
func under(name, scope string) bool {
	return scope == "" || name == scope || strings.HasPrefix(name, scope+"/")
}

type found struct {
	info     FileInfo // without version
	st       DiskStat
	hash     bool // to be hashed
	reused   bool // info is the recorded entry, unchanged
	unstable bool
	gone     bool // disappeared before it could be hashed
	err      error
}

type scan struct {
	s        *Scanner
	root     FS
	l        *Local // the previous entries, updated in place
	fresh    int    // stats.Names[fresh:] are not reported to Progress yet
	start    time.Time
	now      func() time.Time
	stats    *ScanStats
	found    []*found // entries found and not recorded yet, at most about scanBatch
	chunking Chunking
	seen     seenSet         // names present on disk (found, or kept as they were)
	gone     map[string]bool // names found that disappeared before they were hashed
	keep     map[string]bool // names whose prev entries stay (unreadable, unstable, ignored)
}

// seenSet is the set of names a scan found: a 64-bit hash of each, with a
// seed drawn for the scan, not the names themselves (a rescan of a million
// files held 80 MB of them; the hashes take about 16). Two names whose
// hashes collide (in about one scan in 40 million, at a million names)
// are taken for one: the second found is skipped (its change waits for the next
// scan), or a deleted one is taken for present (its deletion waits for
// the next scan, whose seed differs). Never the other way: a name found
// is never taken for deleted.
type seenSet struct {
	seed maphash.Seed
	m    map[uint64]struct{}
}

func newSeenSet() seenSet { return seenSet{seed: maphash.MakeSeed(), m: map[uint64]struct{}{}} }

func (s seenSet) add(name string) { s.m[maphash.String(s.seed, name)] = struct{}{} }

func (s seenSet) has(name string) bool {
	_, ok := s.m[maphash.String(s.seed, name)]
	return ok
}

func (sc *scan) skip(name, why string) {
	sc.stats.Skipped = append(sc.stats.Skipped, name+": "+why)
}

// walkScope scans the entry scope (and its parent directories) and, if it
// is a directory, everything under it.
func (sc *scan) walkScope(ctx context.Context, scope string) error {
	if scope == "" {
		return sc.walkDir(ctx, "")
	}
	// A scope under a symlink or a non-directory is not in the folder: its
	// entries are gone, which the parent's scan will see.
	if underLink(sc.root, scope) {
		return nil
	}
	for p := parentDir(scope); p != ""; p = parentDir(p) {
		if fi, err := sc.root.Lstat(filepath.FromSlash(p)); err == nil {
			sc.entry(p, fi)
		}
	}
	fi, err := sc.root.Lstat(filepath.FromSlash(scope))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		sc.keep[scope] = true
		sc.skip(scope, err.Error())
		return nil
	}
	if sc.entry(scope, fi) && fi.IsDir() {
		return sc.walkDir(ctx, scope)
	}
	return nil
}

// walkDir records the entries under dir, recursively.
func (sc *scan) walkDir(ctx context.Context, dir string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := "."
	if dir != "" {
		d = filepath.FromSlash(dir)
	}
	ents, err := sc.root.ReadDir(d)
	if err != nil {
		sc.keep[dir] = true
		sc.skip(dir, err.Error())
		return nil
	}
	for _, e := range ents {
		name := e.Name()
		if dir != "" {
			name = dir + "/" + name
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			sc.keep[name] = true
			sc.skip(name, err.Error())
			continue
		}
		name = recordedName(sc.root, sc.l, name, fi)
		if sc.entry(name, fi) && fi.IsDir() {
			if err := sc.walkDir(ctx, name); err != nil {
				return err
			}
		}
		if len(sc.found) >= scanBatch {
			if err := sc.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanBatch is how many entries found a walk holds before it records and
// hashes them: a scan of a million new files held them all (about 220 MB)
// until the walk ended.
const scanBatch = 4096

// flush records the entries found so far: what needs no hashing first
// (directories, before the files in them, which the walk finds after
// them), then files as they are hashed.
func (sc *scan) flush(ctx context.Context) error {
	for _, f := range sc.found {
		if !f.hash {
			sc.record(f)
		}
	}
	return sc.hashAll(ctx, sc.chunking)
}

// entry records name, described by fi; it reports whether name is part of
// the folder (for a directory: whether to walk it).
func (sc *scan) entry(name string, fi fs.FileInfo) bool {
	if IsTemp(name) {
		sc.removeIfStale(name, fi)
		return false
	}
	if err := CheckName(name); err != nil {
		sc.skip(name, err.Error())
		return false
	}
	if sc.s.Ignore.Match(name, fi.IsDir()) {
		sc.keep[name] = true
		return false
	}
	t, ok := typeOf(fi)
	if !ok {
		sc.skip(name, "not a regular file, directory or symlink")
		return false
	}
	if sc.seen.has(name) {
		return false
	}
	st := statOf(fi)
	f := &found{info: FileInfo{Name: name, Type: t}, st: st}
	switch t {
	case TypeDir:
		sc.stats.Dirs++
		f.info.Mode = uint32(fi.Mode() & PermMask)
	case TypeSymlink:
		sc.stats.Symlinks++
		target, err := sc.root.Readlink(filepath.FromSlash(name))
		if err != nil {
			sc.keep[name] = true
			sc.skip(name, err.Error())
			return false
		}
		if target == "" || len(target) > MaxSymlinkTarget {
			sc.skip(name, "symlink target empty or too long")
			return false
		}
		f.info.SymlinkTarget = target
	case TypeFile:
		sc.stats.Files++
		f.info.Mode = uint32(fi.Mode() & PermMask)
		p, okP := sc.l.Get(name)
		d, okD := sc.l.Stat(name)
		if okP && okD && !p.Deleted && p.Type == TypeFile && !d.Racy && d.same(st) && sc.sameFile(name, fi, d, &st) {
			sc.stats.Reused++
			f.info, f.reused = p, true
			f.st = d
			if st.id().Known() {
				f.st = d.withID(st.id()) // d's, or d had none
			}
		} else {
			f.hash = true
		}
	}
	sc.seen.add(name)
	if t == TypeFile && !f.hash {
		// An unchanged file is recorded as it is found, so that a rescan
		// of a large folder does not hold an entry of every file until
		// the walk ends (22 MB for 100,000 files). Recording it changes
		// at most its disk stat: its parent directory's place in the
		// order of what is recorded does not matter.
		sc.record(f)
		return true
	}
	sc.found = append(sc.found, f)
	return true
}

// sameFile reports whether the file name, whose stat fi gives as st
// (the same as d, recorded before, in size, times and mode), is still the
// file d was recorded of, by their FileIDs. Where fi did not carry the
// FileID (Windows), it is read from the file system now, and only now: a
// file whose stat differs anyway is hashed without it. st gets the FileID
// read; a FileID unknown on either side is not a change (sameID).
func (sc *scan) sameFile(name string, fi fs.FileInfo, d DiskStat, st *DiskStat) bool {
	*st = withFileID(sc.root, filepath.FromSlash(name), fi, *st)
	return sameID(d.id(), st.id())
}

// removeIfStale removes the applier temporary file name if it is older
// than StaleTemp.
func (sc *scan) removeIfStale(name string, fi fs.FileInfo) {
	age := sc.s.StaleTemp
	if age == 0 {
		age = DefaultStaleTemp
	}
	st := statOf(fi)
	changed := max(st.ModTime, st.Ctime)
	if age > 0 && sc.now().Sub(time.Unix(0, changed)) < age {
		return
	}
	if sc.root.Remove(filepath.FromSlash(name)) == nil {
		sc.stats.TempRemoved++
	}
}

// hashAll hashes the files found to be hashed, with a pool of workers,
// and records each as it is done.
func (sc *scan) hashAll(ctx context.Context, c Chunking) error {
	var todo []*found
	for _, f := range sc.found {
		if f.hash {
			todo = append(todo, f)
		}
	}
	// Each file is forgotten once recorded (a scan of 100,000 new
	// files held 25 MB of them until the last was hashed).
	sc.found = nil
	if len(todo) == 0 {
		return ctx.Err()
	}
	n := sc.s.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	n = min(n, len(todo))
	jobs := make(chan *found)
	type result struct {
		f     *found
		count int
		bytes int64
	}
	results := make(chan result, n) // workers never wait for this goroutine
	var wg sync.WaitGroup
	for range n {
		hs, err := NewHasher(c)
		if err != nil {
			close(jobs)
			wg.Wait()
			return err
		}
		// With a CPU to spare, a large file is hashed on two.
		hs.Parallel = n < runtime.GOMAXPROCS(0)
		wg.Go(func() {
			for f := range jobs {
				k, b := sc.hashOne(ctx, hs, f)
				results <- result{f, k, b}
			}
		})
	}
	sent, busy := 0, 0
	for sent < len(todo) || busy > 0 {
		var (
			out  chan *found
			next *found
		)
		if sent < len(todo) && ctx.Err() == nil {
			out, next = jobs, todo[sent]
		} else if busy == 0 {
			break
		}
		select {
		case out <- next:
			todo[sent] = nil // the worker's now
			sent++
			busy++
		case r := <-results:
			busy--
			sc.stats.Hashed += r.count
			sc.stats.HashedBytes += r.bytes
			sc.record(r.f)
			if sc.s.Progress != nil && len(sc.stats.Names) > sc.fresh {
				sc.report()
			}
		case <-ctx.Done():
			sent = len(todo) // send nothing more; wait for the busy workers
		}
	}
	close(jobs)
	wg.Wait()
	return ctx.Err()
}

// report hands the names recorded since the last report to Progress.
func (sc *scan) report() {
	if sc.s.Progress != nil && len(sc.stats.Names) > sc.fresh {
		sc.s.Progress(sc.stats.Names[sc.fresh:len(sc.stats.Names):len(sc.stats.Names)])
	}
	sc.fresh = len(sc.stats.Names)
}

// hashOne hashes f's file until its stat is the same after hashing as
// before, at most hashAttempts times. It returns the attempts and bytes.
func (sc *scan) hashOne(ctx context.Context, hs *Hasher, f *found) (int, int64) {
	name := f.info.Name
	p := filepath.FromSlash(name)
	var bytes int64
	for attempt := 1; attempt <= hashAttempts; attempt++ {
		if ctx.Err() != nil {
			f.err = ctx.Err()
			return attempt - 1, bytes
		}
		file, err := sc.root.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			f.gone = true
			return attempt - 1, bytes
		}
		if err != nil {
			f.err = err
			return attempt - 1, bytes
		}
		fi, err := file.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			file.Close()
			f.unstable = true // replaced by something else meanwhile
			continue
		}
		before := statOf(fi)
		if !before.id().Known() {
			before = before.withID(openedID(sc.root, p, file, fi))
		}
		blocks, sum, err := hs.HashFile(file)
		file.Close()
		if err != nil {
			f.err = err
			return attempt, bytes
		}
		bytes += before.Size
		if sc.s.afterHash != nil {
			sc.s.afterHash(name)
		}
		after, err := sc.root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			f.gone = true
			return attempt, bytes
		}
		var covered int64
		for _, b := range blocks {
			covered += int64(b.Size)
		}
		if err != nil || !withFileID(sc.root, p, after, statOf(after)).same(before) || covered != before.Size {
			f.unstable = true
			continue
		}
		f.unstable = false
		f.st = before
		f.st.Racy = sc.racy(before)
		f.info.Size, f.info.ModTime, f.info.Mode = before.Size, before.ModTime, before.Mode&PermMask
		f.info.Blocks, f.info.FileHash = blocks, sum
		return attempt, bytes
	}
	return hashAttempts, bytes
}

// racy reports whether st was changed so close to the scan that a change in
// the same timestamp tick could go unseen.
func (sc *scan) racy(st DiskStat) bool {
	changed := max(st.ModTime, st.Ctime)
	return changed >= sc.start.Add(-racyWindow).UnixNano()
}

// record records what the scan found about f in the Local.
func (sc *scan) record(f *found) {
	next := sc.l
	name := f.info.Name
	switch {
	case f.err != nil:
		sc.skip(name, f.err.Error())
		sc.keep[name] = true
		return
	case f.unstable:
		sc.stats.Unstable = append(sc.stats.Unstable, name)
		sc.keep[name] = true
		if _, ok := next.Stat(name); ok {
			next.DropStat(name) // not trusted: hash it next time
			sc.stats.Restated = append(sc.stats.Restated, name)
		}
		return
	case f.gone:
		sc.gone[name] = true
		return
	}
	if f.info.Type != TypeFile && !f.hash {
		f.st.Racy = false
	}
	if d, ok := next.Stat(name); !ok || d != f.st {
		next.SetStat(name, f.st)
		sc.stats.Restated = append(sc.stats.Restated, name)
	}
	// A reused file's info is its entry: no need to decode it again.
	p, ok := f.info, f.reused
	if !f.reused {
		p, ok = next.Get(name)
	}
	if f.info.Type != TypeSymlink {
		f.info.Mode = recordedPerm(sc.s.IgnorePerms || onWindows, p, f.info.Type, fs.FileMode(f.info.Mode))
	}
	if ok && !p.Deleted && p.SameContent(f.info) && p.SameMetadata(f.info) {
		return
	}
	f.info.Version = p.Version.Update(sc.s.Self)
	next.Set(f.info)
	sc.stats.Changed++
	sc.stats.Names = append(sc.stats.Names, name)
}

// deletions turns the entries of the scopes that were there and are not
// any more, unless kept, into tombstones; unless walk, the scopes hold no
// entries under them, so only they are looked at.
func (sc *scan) deletions(scopes []string, walk bool) {
	next := sc.l
	present := func(name string) bool { return sc.seen.has(name) && !sc.gone[name] }
	gone := func(name string, p FileInfo) {
		if p.Deleted || present(name) || sc.kept(name) || sc.s.Ignore.Match(name, p.Type == TypeDir) {
			return
		}
		next.Set(tombstone(p, p.Version.Update(sc.s.Self)))
		if _, ok := next.Stat(name); ok {
			next.DropStat(name)
			sc.stats.Restated = append(sc.stats.Restated, name)
		}
		sc.stats.Changed++
		sc.stats.Deleted++
		sc.stats.Names = append(sc.stats.Names, name)
	}
	if !walk {
		for _, s := range scopes {
			if p, ok := next.Get(s); ok {
				gone(s, p)
			}
		}
		return
	}
	// Only the names not found are held (those of deleted entries and of
	// tombstones), not every name of the Local.
	var names []string
	for name := range next.Names() {
		if !present(name) && inScopes(name, scopes) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		p, _ := next.Get(name)
		gone(name, p)
	}
}

func inScopes(name string, scopes []string) bool {
	for _, s := range scopes {
		if under(name, s) {
			return true
		}
	}
	return false
}

// kept reports whether name or a directory holding it could not be read,
// so its previous entry stays.
func (sc *scan) kept(name string) bool {
	if sc.keep[""] {
		return true
	}
	for p := name; p != ""; p = parentDir(p) {
		if sc.keep[p] {
			return true
		}
	}
	return false
}

// recordedPerm returns the permission bits to record for an entry of type
// t whose previous record is prev (zero if none) and which the disk gives
// as disk: disk's, or if ignore, prev's if it was a live entry of that
// type, else 0644 for a file and 0755 for a directory.
func recordedPerm(ignore bool, prev FileInfo, t FileType, disk fs.FileMode) uint32 {
	if !ignore {
		return uint32(disk & PermMask)
	}
	if prev.Name != "" && !prev.Deleted && prev.Type == t {
		return prev.Mode & PermMask
	}
	if t == TypeDir {
		return 0o755
	}
	return 0o644
}
