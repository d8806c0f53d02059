package syncfs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-sync/baton/internal/durable"
)

// Errors the applier reports, for callers to branch on.
var (
	// ErrChangedMeanwhile reports that an entry on disk no longer matches
	// the local record the plan was made from. The applier leaves it alone;
	// the next scan picks up the change and the next plan decides again.
	ErrChangedMeanwhile = errors.New("changed on disk since the plan was made")
	// ErrBlockUnavailable reports a block that could not be had, or did not
	// verify.
	ErrBlockUnavailable = errors.New("block unavailable")
	// ErrNotDurable reports that a change is in place and recorded but the
	// fsync of its directory failed, so a crash could still undo it.
	ErrNotDurable = errors.New("change not yet durable")
	// ErrDirNotEmpty reports a directory to delete that still holds
	// entries other than the applier's temporary files: none is removed.
	ErrDirNotEmpty = errors.New("directory not empty")
)

// BlockSource supplies blocks by hash, typically from peers over the
// network. It verifies each block it returns (VerifyBlock: a block that
// does not verify is to be asked elsewhere, or reported unavailable), and
// the applier checks that the block is the one asked for, so a source may
// be wrong but never makes the applier write wrong data. Block may be
// called from several goroutines at once.
type BlockSource interface {
	Block(ctx context.Context, hash Hash, size uint32) (VerifiedBlock, error)
}

// VerifiedBlock is a block's content checked against its hash. Only
// VerifyBlock makes one, so holding one proves the check was done, once;
// the applier writes nothing else. Its bytes must not change afterwards.
type VerifiedBlock struct {
	data    []byte
	hash    Hash
	release func()
}

// VerifyBlock returns data as the verified block of hash h, or
// ErrBlockUnavailable if data's BLAKE3 hash is not h.
func VerifyBlock(data []byte, h Hash) (VerifiedBlock, error) {
	if HashBytes(data) != h {
		return VerifiedBlock{}, fmt.Errorf("%w: %d bytes do not match hash %x", ErrBlockUnavailable, len(data), h[:8])
	}
	return VerifiedBlock{data: data, hash: h}, nil
}

// Data returns the block's content, which the caller must not modify.
func (b VerifiedBlock) Data() []byte { return b.data }

// Hash returns the hash the block was verified against.
func (b VerifiedBlock) Hash() Hash { return b.hash }

// OnRelease returns b with f to be called by Release: a source that lends
// its buffers learns when the applier is done with the bytes.
func (b VerifiedBlock) OnRelease(f func()) VerifiedBlock {
	b.release = f
	return b
}

// Release says the holder no longer uses the block's bytes. The applier
// calls it once for every block it gets from a BlockSource, whether it
// wrote the block or not.
func (b VerifiedBlock) Release() {
	if b.release != nil {
		b.release()
	}
}

// DefaultConcurrency is how many blocks of one file the applier gets at
// once when Applier.Concurrency is zero.
const DefaultConcurrency = 8

// Applier carries out a Plan's actions in a folder on disk. Every name goes
// through SafeJoin and CheckNoSymlinkTraversal, and every operation through
// an os.Root (or the WriteFS in FS), so nothing is written outside Root or
// through a symbolic link;
// a name that is (or is inside) a temporary file's (TempPrefix) is refused.
// File content is assembled in a temporary file in the target's directory
// from verified blocks only, which verifies the file (see FileHashOf);
// mode and mtime are set, the file is fsynced, the target is checked
// against the local record once more and the temporary file renamed over
// it, then the directory is fsynced (or, for many small files at once, see
// ApplyBatch). After a crash the target is either the old file or the new
// one.
//
// The temporary file is named after the target and the version
// (TempPrefix and a hash of both): an attempt that fails keeps it if it
// holds verified blocks, and the next attempt at the same version, in this
// process or after a restart, reads and hashes the blocks at their offsets
// and gets only those that do not verify (see Resume). A kept partial
// file goes as soon as its version is superseded: when a new attempt at
// the target begins, when the Local records a later version of the target
// (written, deleted, moved away), or when DropSuperseded sees one in
// another device's index (a file changed or deleted before it arrived).
// The deletion of a directory removes the applier's temporary files in
// it, and only those: a directory that holds anything else the Local does
// not record is kept, as a conflict (see Result.Conflict). One an earlier
// process left elsewhere is removed by Scan once stale
// (Scanner.StaleTemp). So none of the applier's own files blocks a change.
//
// The zero value is not usable: set Root and Source.
type Applier struct {
	// Root is the folder's directory.
	Root string
	// Source supplies the blocks no local file holds.
	Source BlockSource
	// Expect, if set, is told about each name the applier is about to
	// create, replace or remove, with the size and mtime (Unix nanoseconds)
	// it will have, size -1 for a removal, so a watcher can drop the
	// events it causes (see Watcher.Expect).
	Expect func(name string, size, modTime int64)
	// Concurrency bounds the blocks of one file fetched at once
	// (DefaultConcurrency if zero).
	Concurrency int
	// BatchConcurrency bounds the files of a batch written at once
	// (DefaultBatchConcurrency if zero; see ApplyBatch).
	BatchConcurrency int
	// FS, if set, is written instead of the directory Root (a simulated
	// file system, as for Scanner.FS): Apply, Resume and DropSuperseded
	// go through it for every operation, and ApplyBatch applies each
	// action alone as Apply does. Root still names the folder in errors.
	FS WriteFS

	// hook, if set, is called at named steps of writing a file and may
	// fail them (a test seam for crash safety).
	hook func(step, name string) error
	// busy, if set, says which errors mean another program holds a file
	// (else busyErrnos do), and sleep, if set, waits between attempts
	// (test seams for retryBusy).
	busy  func(error) bool
	sleep func(context.Context, time.Duration) error

	mu       sync.Mutex
	partials map[string]*partial    // found by Resume, by temporary file path
	kept     map[string]keptPartial // partial file kept after a failed attempt, by target name
}

// Result is the outcome of one action.
type Result struct {
	Action Action
	// Err is nil when the action's effect is on disk and recorded in the
	// Local; otherwise nothing was recorded, except that an error wrapping
	// ErrNotDurable means the change is in place and recorded.
	Err error
	// Conflict, if set, says why the action was carried out as a conflict
	// instead: a directory to delete that held entries the folder does
	// not record was kept, and the Action's Also recorded for it.
	Conflict string
	// Fetched is how many bytes came from the BlockSource, Copied how
	// many from local files, Resumed how many were found in place in the
	// temporary file of an interrupted attempt (see Resume).
	Fetched, Copied, Resumed int64
}

// Apply runs actions in order against the folder described by local, the
// Local the plan was made from, and records in it the entries of each
// action that succeeds (the Action's File, and Also under ConflictName or
// From), with their new disk stats. An action that fails is reported and
// the rest still run; a failure leaves the entry as it was. Apply must not
// run at the same time as Scan on the same folder.
func (ap *Applier) Apply(ctx context.Context, local *Local, actions []Action) []Result {
	results := make([]Result, len(actions))
	fsys, done, err := ap.open()
	for i, a := range actions {
		results[i].Action = a
		if err != nil {
			results[i].Err = err
			continue
		}
		if cerr := ctx.Err(); cerr != nil {
			results[i].Err = cerr
			continue
		}
		x := &applyRun{ap: ap, root: fsys, local: local, res: &results[i]}
		if e := x.do(ctx, a); e != nil {
			results[i].Err = fmt.Errorf("%v: %w", a, e)
		}
		x.count()
	}
	if err == nil {
		done()
	}
	return results
}

// open returns the file system the folder is written through (FS, or an
// os.Root on Root) and what closes it.
func (ap *Applier) open() (WriteFS, func(), error) {
	if ap.FS != nil {
		return ap.FS, func() {}, nil
	}
	r, err := os.OpenRoot(ap.Root)
	if err != nil {
		return nil, nil, fmt.Errorf("opening folder %s: %w", ap.Root, err)
	}
	return rootFS{r}, func() { r.Close() }, nil
}

// applyRun is one action being applied.
type applyRun struct {
	ap    *Applier
	root  WriteFS // the folder
	local *Local
	res   *Result

	fetched, copied, resumed atomic.Int64 // bytes written or found, added to res when done

	tempState int          // what is known of the temporary file (tempNone...)
	inTemp    atomic.Int64 // verified blocks in the temporary file
}

// count adds the bytes written to the result.
func (x *applyRun) count() {
	x.res.Fetched += x.fetched.Load()
	x.res.Copied += x.copied.Load()
	x.res.Resumed += x.resumed.Load()
}

func (x *applyRun) step(step, name string) error {
	if x.ap.hook == nil {
		return nil
	}
	return x.ap.hook(step, name)
}

func (x *applyRun) expect(name string, size, mtime int64) {
	if x.ap.Expect != nil {
		x.ap.Expect(name, size, mtime)
	}
}

// check returns name's path for the Root: name must pass SafeJoin, must
// not be (or be inside) a temporary file's name, and no existing parent
// may be a symbolic link or not a directory.
func (x *applyRun) check(name string) (string, error) {
	if err := checkApplyName(x.ap.Root, name); err != nil {
		return "", err
	}
	if err := checkNoLinkTraversal(x.root, name); err != nil {
		return "", err
	}
	return filepath.FromSlash(name), nil
}

func (x *applyRun) do(ctx context.Context, a Action) error {
	switch a.Kind {
	case ActSkip:
		return nil
	case ActRecord:
		if _, err := x.check(a.Name); err != nil {
			return err
		}
		x.local.Set(a.File)
		if a.File.Deleted {
			x.local.DropStat(a.Name)
		}
		x.recorded(a.Name, a.File)
		return nil
	case ActDelete:
		return x.remove(ctx, a)
	case ActMkDir:
		return x.mkdir(ctx, a, false)
	case ActFetch:
		return x.write(ctx, a, false)
	case ActSymlink:
		return x.write(ctx, a, false)
	case ActRename:
		return x.rename(ctx, a)
	case ActMeta:
		return x.meta(a)
	case ActConflict:
		if _, err := x.check(a.ConflictName); err != nil {
			return err
		}
		if a.File.Type == TypeDir {
			return x.mkdir(ctx, a, true)
		}
		return x.write(ctx, a, true)
	}
	return fmt.Errorf("unknown action kind %v", a.Kind)
}

// typeOf returns the type of entry fi describes, false for what a folder
// does not sync (devices, pipes, sockets).
func typeOf(fi fs.FileInfo) (FileType, bool) {
	switch m := fi.Mode(); {
	case m&fs.ModeSymlink != 0:
		return TypeSymlink, true
	case m.IsDir():
		return TypeDir, true
	case m.IsRegular():
		return TypeFile, true
	}
	return 0, false
}

// unchanged checks that name on disk is what the local record says: absent
// if the record has no live entry, else the same type and, for a file, the
// same disk stat (size and mtime where no stat was recorded), for a
// symlink the same target.
func (x *applyRun) unchanged(name string) error {
	p, err := x.check(name)
	if err != nil {
		return err
	}
	fi, err := x.root.Lstat(p)
	return checkUnchanged(x.local, name, fi, err, func() (string, error) { return x.root.Readlink(p) })
}

// checkUnchanged is unchanged given what Lstat said of name (fi, err),
// with readlink reading it as a symlink.
func checkUnchanged(local *Local, name string, fi fs.FileInfo, err error, readlink func() (string, error)) error {
	f, ok := local.Get(name)
	live := ok && !f.Deleted
	if errors.Is(err, fs.ErrNotExist) {
		if live {
			return fmt.Errorf("%w: %s is gone", ErrChangedMeanwhile, name)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if !live {
		return fmt.Errorf("%w: %s appeared", ErrChangedMeanwhile, name)
	}
	if t, ok := typeOf(fi); !ok || t != f.Type {
		return fmt.Errorf("%w: %s is now %v", ErrChangedMeanwhile, name, fi.Mode().Type())
	}
	switch f.Type {
	case TypeSymlink:
		if t, err := readlink(); err != nil || t != f.SymlinkTarget {
			return fmt.Errorf("%w: symlink %s now points elsewhere", ErrChangedMeanwhile, name)
		}
	case TypeFile:
		st := statOf(fi)
		if d, ok := local.Stat(name); ok {
			if !d.same(st) {
				return fmt.Errorf("%w: %s", ErrChangedMeanwhile, name)
			}
		} else if st.Size != f.Size || st.ModTime != f.ModTime {
			return fmt.Errorf("%w: %s", ErrChangedMeanwhile, name)
		}
	}
	return nil
}

// checkApplyName checks that name may be written in the folder at root:
// it passes SafeJoin and no component of it is a temporary file's name,
// which only the applier itself makes.
func checkApplyName(root, name string) error {
	if _, err := SafeJoin(root, name); err != nil {
		return err
	}
	if inTemp(name) {
		return fmt.Errorf("%w: %q is a temporary file's name", ErrBadName, name)
	}
	return nil
}

// absent checks that nothing exists at name.
func (x *applyRun) absent(name string) error {
	p, err := x.check(name)
	if err != nil {
		return err
	}
	if _, err := x.root.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: %s exists", ErrChangedMeanwhile, name)
	}
	return nil
}

// record notes that name now holds f, as on disk.
func (x *applyRun) record(name string, f FileInfo) error {
	x.local.Set(f)
	x.recorded(name, f)
	if f.Deleted {
		x.local.DropStat(name)
		return nil
	}
	fi, err := x.root.Lstat(filepath.FromSlash(name))
	if err != nil {
		x.local.DropStat(name)
		return fmt.Errorf("checking %s after writing: %w", name, err)
	}
	x.local.SetStat(name, statOf(fi))
	return nil
}

// syncDir fsyncs the directory holding name.
func (x *applyRun) syncDir(name string) error {
	if err := x.step("dir-fsync", name); err != nil {
		return err
	}
	dir := filepath.FromSlash(parentDir(name))
	if dir == "" {
		dir = "."
	}
	return x.root.SyncDir(dir)
}

// Barrier makes durable what was done to names (slash-separated, relative
// to root) in root: their creations, renames and removals. On Linux it is
// one syncfs(2) of root's filesystem; elsewhere an fsync of each distinct
// directory holding a name. After an action reported ErrNotDurable, a
// caller that stores what the applier recorded calls Barrier first, and
// stores nothing while it fails: a crash could still undo the change.
func Barrier(root string, names []string) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("making changes in %s durable: %w", root, err)
	}
	defer r.Close()
	dirs := map[string]bool{".": true}
	if syncEachFile {
		for _, n := range names {
			if d := parentDir(n); d != "" {
				dirs[filepath.FromSlash(d)] = true
			}
		}
	}
	for dir := range dirs {
		d, err := r.Open(dir)
		if err != nil {
			return fmt.Errorf("making changes in %s durable: %w", root, err)
		}
		if syncEachFile {
			err = d.Sync()
		} else {
			err = durable.SyncFS(d)
		}
		d.Close()
		if err != nil {
			return fmt.Errorf("making changes in %s durable: %w", root, err)
		}
	}
	return nil
}

func notDurable(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %s: %w", ErrNotDurable, name, err)
}

func (x *applyRun) remove(ctx context.Context, a Action) error {
	p, err := x.check(a.Name)
	if err != nil {
		return err
	}
	if err := x.unchanged(a.Name); err != nil {
		if _, serr := x.root.Lstat(p); !errors.Is(serr, fs.ErrNotExist) {
			return err
		}
		// Already gone: nothing to lose.
	} else {
		if l, _ := x.local.Get(a.Name); l.Type == TypeDir && !l.Deleted {
			kept, err := x.emptyDir(a, p)
			if err != nil || kept {
				return err
			}
		}
		x.expect(a.Name, -1, 0)
		if err := x.ap.retryBusy(ctx, a.Name, func() error { return x.root.Remove(p) }); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	x.record(a.Name, a.File)
	return notDurable(a.Name, x.syncDir(a.Name))
}

// emptyDir readies the directory a.Name (p), which a deletes, for its
// removal: the applier's own temporary files in it (partial files of
// fetches its deletion supersedes, files a crash left) are removed. If it
// holds anything else the folder does not record (a file not scanned yet,
// an ignored one), nothing else is removed: the directory is kept, and
// a.Also, the directory's entry for that case, recorded (kept reports it,
// and the result's Conflict says why); without an Also it fails with
// ErrDirNotEmpty. An entry in it the folder records as live (whose own
// deletion failed) fails it too, leaving every file in place.
func (x *applyRun) emptyDir(a Action, p string) (kept bool, err error) {
	ents, err := x.root.ReadDir(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // gone meanwhile: nothing to lose
	}
	if err != nil {
		return false, fmt.Errorf("listing %s: %w", a.Name, err)
	}
	var temps, live, foreign []string
	for _, e := range ents {
		child := a.Name + "/" + e.Name()
		switch l, ok := x.local.Get(child); {
		case IsTemp(e.Name()) && (e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0):
			temps = append(temps, e.Name())
		case ok && !l.Deleted:
			live = append(live, e.Name())
		default:
			foreign = append(foreign, e.Name())
		}
	}
	if len(live) > 0 {
		return false, fmt.Errorf("%w: %s still holds %s", ErrDirNotEmpty, a.Name, fewNames(live))
	}
	for _, n := range temps {
		if err := x.root.Remove(filepath.Join(p, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("removing temporary file %s in %s: %w", n, a.Name, err)
		}
	}
	x.ap.forgetKeptIn(p)
	if len(foreign) == 0 {
		return false, nil
	}
	why := fmt.Sprintf("directory not deleted: it holds %s, not synced here", fewNames(foreign))
	if a.Also == nil || a.Also.Name != a.Name || a.Also.Type != TypeDir || a.Also.Deleted {
		return false, fmt.Errorf("%w: %s", ErrDirNotEmpty, why)
	}
	if err := x.record(a.Name, *a.Also); err != nil {
		return false, err
	}
	x.res.Conflict = why
	return true, nil
}

// fewNames lists names, sorted, at most three of them.
func fewNames(names []string) string {
	slices.Sort(names)
	if len(names) > 3 {
		return fmt.Sprintf("%q and %d more", names[:3], len(names)-3)
	}
	return fmt.Sprintf("%q", names)
}

// keepConflict moves the local entry at a.Name to a.ConflictName.
func (x *applyRun) keepConflict(ctx context.Context, a Action) error {
	if err := x.absent(a.ConflictName); err != nil {
		return err
	}
	st, _ := x.local.Stat(a.Name)
	x.expect(a.ConflictName, st.Size, st.ModTime)
	x.expect(a.Name, -1, 0)
	if err := x.ap.retryBusy(ctx, a.Name, func() error {
		return x.root.Rename(filepath.FromSlash(a.Name), filepath.FromSlash(a.ConflictName))
	}); err != nil {
		return fmt.Errorf("keeping conflict copy: %w", err)
	}
	x.local.DropStat(a.Name)
	also, err := alsoOf(a, a.ConflictName)
	if err != nil {
		return err
	}
	if err := x.record(a.ConflictName, also); err != nil {
		return err
	}
	return nil
}

// undoConflict moves the conflict copy kept by keepConflict back to
// a.Name after the new entry could not be put there.
func (x *applyRun) undoConflict(a Action) {
	if x.absent(a.Name) != nil {
		return // the copy stays, recorded; nothing is lost
	}
	st, _ := x.local.Stat(a.ConflictName)
	x.expect(a.Name, st.Size, st.ModTime)
	if x.root.Rename(filepath.FromSlash(a.ConflictName), filepath.FromSlash(a.Name)) != nil {
		return
	}
	x.local.Delete(a.ConflictName)
	if fi, err := x.root.Lstat(filepath.FromSlash(a.Name)); err == nil {
		x.local.SetStat(a.Name, statOf(fi))
	}
}

func (x *applyRun) mkdir(ctx context.Context, a Action, conflict bool) error {
	p, err := x.check(a.Name)
	if err != nil {
		return err
	}
	if err := x.unchanged(a.Name); err != nil {
		return err
	}
	if conflict {
		if err := x.keepConflict(ctx, a); err != nil {
			return err
		}
	}
	mode := fs.FileMode(a.File.Mode & PermMask)
	if err := x.root.Mkdir(p, mode|0o700); err != nil {
		fi, serr := x.root.Lstat(p)
		if !errors.Is(err, fs.ErrExist) || serr != nil || !fi.IsDir() {
			return err
		}
		// Made meanwhile by someone else: it is a directory, take it.
	}
	if err := x.root.Chmod(p, localPerm(mode)); err != nil {
		return err
	}
	if err := x.record(a.Name, a.File); err != nil {
		return err
	}
	return notDurable(a.Name, x.syncDir(a.Name))
}

func (x *applyRun) meta(a Action) error {
	p, err := x.check(a.Name)
	if err != nil {
		return err
	}
	if err := x.unchanged(a.Name); err != nil {
		return err
	}
	if a.File.Type == TypeSymlink {
		return x.record(a.Name, a.File)
	}
	x.expect(a.Name, a.File.Size, a.File.ModTime)
	if err := x.root.Chmod(p, localPerm(fs.FileMode(a.File.Mode&PermMask))); err != nil {
		return err
	}
	if a.File.Type == TypeFile {
		t := time.Unix(0, a.File.ModTime)
		if err := x.root.Chtimes(p, t, t); err != nil {
			return err
		}
	}
	return x.record(a.Name, a.File)
}

func (x *applyRun) rename(ctx context.Context, a Action) error {
	gone, err := alsoOf(a, a.From)
	if err != nil {
		return err
	}
	from, err := x.check(a.From)
	if err != nil {
		return err
	}
	to, err := x.check(a.Name)
	if err != nil {
		return err
	}
	if f, _ := x.local.Get(a.From); f.Deleted || f.Type != TypeFile || !f.SameContent(a.File) {
		return fmt.Errorf("%w: rename source %s is not the file recorded", ErrChangedMeanwhile, a.From)
	}
	if err := x.unchanged(a.From); err != nil {
		return err
	}
	// On a case-insensitive or normalizing file system, a move to another
	// case or form of the same name finds the source at the target: that
	// is no clash, the move gives the file its new name.
	if !Clashes(a.From, a.Name) || !x.sameEntry(from, to) {
		if err := x.unchanged(a.Name); err != nil {
			return err
		}
		if err := x.absent(a.Name); err != nil {
			return err
		}
	}
	x.expect(a.From, -1, 0)
	x.expect(a.Name, a.File.Size, a.File.ModTime)
	if err := x.ap.retryBusy(ctx, a.From, func() error { return x.root.Rename(from, to) }); err != nil {
		return err
	}
	x.local.DropStat(a.From)
	x.local.Set(gone)
	x.recorded(a.From, gone)
	if err := x.root.Chmod(to, localPerm(fs.FileMode(a.File.Mode&PermMask))); err != nil {
		return err
	}
	t := time.Unix(0, a.File.ModTime)
	if err := x.root.Chtimes(to, t, t); err != nil {
		return err
	}
	if err := x.record(a.Name, a.File); err != nil {
		return err
	}
	return notDurable(a.Name, x.syncDir(a.Name))
}

// sameEntry reports whether the paths a and b (for the Root) find one
// entry: different names of one file where the file system folds case or
// normalizes names.
func (x *applyRun) sameEntry(a, b string) bool {
	fa, err := x.root.Lstat(a)
	if err != nil {
		return false
	}
	fb, err := x.root.Lstat(b)
	return err == nil && x.root.SameFile(fa, fb)
}

// write puts a.File (a file or a symlink) at a.Name through a temporary
// file, keeping the local entry as a.ConflictName first if conflict.
func (x *applyRun) write(ctx context.Context, a Action, conflict bool) error {
	p, err := x.check(a.Name)
	if err != nil {
		return err
	}
	if err := x.unchanged(a.Name); err != nil {
		return err
	}
	symlink := a.File.Type == TypeSymlink
	var tp string
	if symlink {
		tp = filepath.FromSlash(tempName(a.Name))
	} else {
		tp = filepath.FromSlash(partialName(a.Name, a.File.FileHash))
	}
	x.dropOtherPartial(a.Name, tp)
	if err := x.step("create-temp", a.Name); err != nil {
		return err
	}
	placed := false
	defer func() {
		switch {
		case placed:
		case !symlink && x.keepTemp():
			x.keepPartial(a.Name, a.File.Version, tp)
		case symlink || x.tempState != tempNone:
			x.root.Remove(tp)
		}
	}()
	if symlink {
		if err := x.root.Symlink(a.File.SymlinkTarget, tp); err != nil {
			return fmt.Errorf("creating symlink: %w", err)
		}
	} else if err := x.assemble(ctx, a, tp); err != nil {
		return err
	}
	if err := x.step("check", a.Name); err != nil {
		return err
	}
	if err := x.unchanged(a.Name); err != nil {
		return err
	}
	if err := x.step("rename", a.Name); err != nil {
		return err
	}
	if conflict {
		if err := x.keepConflict(ctx, a); err != nil {
			return err
		}
	}
	x.expect(a.Name, a.File.Size, a.File.ModTime)
	if err := x.ap.retryBusy(ctx, a.Name, func() error { return x.root.Rename(tp, p) }); err != nil {
		if conflict {
			x.undoConflict(a)
		}
		return err
	}
	placed = true
	if err := x.record(a.Name, a.File); err != nil {
		return err
	}
	return notDurable(a.Name, x.syncDir(a.Name))
}

// assemble writes a.File's content to the temporary file tp from verified
// blocks, taking those an interrupted attempt left there that verify, sets
// its mode and mtime and fsyncs it.
func (x *applyRun) assemble(ctx context.Context, a Action, tp string) error {
	f := a.File
	out, have, err := x.openTemp(ctx, a, tp)
	if err != nil {
		return err
	}
	defer out.Close()
	// Every block written or kept was verified and the blocks cover the
	// file (FileInfo.Validate), whose hash is derived from them
	// (FileHashOf): the file is verified without reading it back.
	if err := x.fill(ctx, a, out, have); err != nil {
		return err
	}
	if err := out.Chmod(localPerm(fs.FileMode(f.Mode & PermMask))); err != nil {
		return err
	}
	t := time.Unix(0, f.ModTime)
	if err := x.root.Chtimes(tp, t, t); err != nil {
		return err
	}
	if err := x.step("fsync", a.Name); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	return out.Close()
}

// fill writes every block of a.File into out but those at the offsets in
// have (already there): from local files where the plan says one holds it
// and it still verifies, else from the Source, with up to Concurrency
// blocks in flight.
func (x *applyRun) fill(ctx context.Context, a Action, out RWFile, have map[int64]bool) error {
	local := make(map[int64]BlockCopy, len(a.Copy))
	for _, c := range a.Copy {
		local[c.Block.Offset] = c
	}
	srcs := &sourceFiles{x: x, open: map[string]*sourceFile{}}
	defer srcs.close()
	if len(a.File.Blocks) <= 1 {
		// A small file: no goroutine for one block.
		for _, b := range a.File.Blocks {
			if have[b.Offset] {
				continue
			}
			if err := x.fillBlock(ctx, a.Name, b, local, srcs, out); err != nil {
				return err
			}
		}
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := x.ap.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	var (
		wg       sync.WaitGroup
		sem      = make(chan struct{}, n)
		mu       sync.Mutex
		firstErr error
		unsynced atomic.Int64 // bytes written since writeback was last started
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	for _, b := range a.File.Blocks {
		if ctx.Err() != nil {
			break
		}
		if have[b.Offset] {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := x.fillBlock(ctx, a.Name, b, local, srcs, out); err != nil {
				fail(err)
				return
			}
			if unsynced.Add(int64(b.Size)) >= writebackEvery {
				unsynced.Store(0)
				if f, ok := out.(*os.File); ok {
					startWriteback(f)
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// writebackEvery is how many bytes of a large file are written before the
// kernel is asked to start writing them to disk (startWriteback), so that
// the disk works while the rest arrives instead of all at the fsync.
const writebackEvery = 8 << 20

// fillBlock writes block b of name into out: from a local file if local
// says one holds it and it still verifies, else from the Source. It counts
// the bytes in x.fetched or x.copied and may run beside other blocks.
func (x *applyRun) fillBlock(ctx context.Context, name string, b Block, local map[int64]BlockCopy, srcs *sourceFiles, out RWFile) error {
	var (
		vb VerifiedBlock
		ok bool
	)
	if c, isLocal := local[b.Offset]; isLocal && c.Block.Hash == b.Hash && c.Block.Size == b.Size {
		vb, ok = srcs.read(c)
	}
	if ok {
		x.copied.Add(int64(b.Size))
	} else {
		if x.ap.Source == nil {
			return fmt.Errorf("%w: no source for block at %d", ErrBlockUnavailable, b.Offset)
		}
		var err error
		vb, err = x.ap.Source.Block(ctx, b.Hash, b.Size)
		if err != nil {
			return fmt.Errorf("%w: block at %d: %v", ErrBlockUnavailable, b.Offset, err)
		}
		// The source verified it: check it is the block asked for.
		if vb.hash != b.Hash || len(vb.data) != int(b.Size) {
			vb.Release()
			return fmt.Errorf("%w: block at %d: the source returned another block", ErrBlockUnavailable, b.Offset)
		}
		x.fetched.Add(int64(b.Size))
	}
	defer vb.Release()
	if err := x.step("write", name); err != nil {
		return err
	}
	if _, err := out.WriteAt(vb.data, b.Offset); err != nil {
		return fmt.Errorf("writing temporary file: %w", err)
	}
	x.inTemp.Add(1)
	return nil
}

// sourceFiles reads blocks from local files, opening each once.
type sourceFiles struct {
	x    *applyRun
	mu   sync.Mutex
	open map[string]*sourceFile
}

// sourceFile is a local file blocks are copied from. unchanged says its
// stat was, when it was opened, st, the one the Local records for it, not
// taken racily (see DiskStat.Racy): the scanner would not hash it again,
// and a block read from it while its stat is still st is taken to be the
// one its entry lists without hashing it either.
type sourceFile struct {
	f         RWFile
	unchanged bool
	st        DiskStat
}

// still reports whether the file's stat is still st: checked after a
// read, it shows that no write came before the bytes read (a write
// changes the stat first).
func (src *sourceFile) still() bool {
	fi, err := src.f.Stat()
	return err == nil && src.st.same(statOf(fi))
}

// read returns the block c describes, verified, if its local file still
// holds it: hashed, unless the file is unchanged since it was scanned.
func (s *sourceFiles) read(c BlockCopy) (VerifiedBlock, bool) {
	s.mu.Lock()
	src, ok := s.open[c.From]
	if !ok {
		src = s.openSource(c.From)
		s.open[c.From] = src
	}
	s.mu.Unlock()
	if src == nil {
		return VerifiedBlock{}, false
	}
	buf := BlockBuffer(int(c.Block.Size))
	if _, err := src.f.ReadAt(buf, c.FromOffset); err != nil {
		FreeBlockBuffer(buf)
		return VerifiedBlock{}, false
	}
	vb := VerifiedBlock{data: buf, hash: c.Block.Hash}
	if !src.unchanged || !s.listed(c) || !src.still() {
		var err error
		if vb, err = VerifyBlock(buf, c.Block.Hash); err != nil {
			FreeBlockBuffer(buf)
			return VerifiedBlock{}, false
		}
	}
	return vb.OnRelease(func() { FreeBlockBuffer(buf) }), true
}

// openSource opens the local file name to copy blocks from, nil if it is
// not a regular file in the folder.
func (s *sourceFiles) openSource(name string) *sourceFile {
	p, err := s.x.check(name)
	if err != nil {
		return nil
	}
	if fi, err := s.x.root.Lstat(p); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	f, err := s.x.root.OpenFile(p, os.O_RDONLY, 0)
	if err != nil {
		return nil
	}
	src := &sourceFile{f: f}
	if fi, err := f.Stat(); err == nil {
		d, ok := s.x.local.Stat(name)
		// Only where the stat has a ctime: no write can keep that,
		// while size and mtime can be put back.
		src.unchanged = ok && !d.Racy && d.Ctime != 0 && fi.Mode().IsRegular() && d.same(statOf(fi))
		src.st = d
	}
	return src
}

// listed reports whether the Local's entry for c.From lists c's block at
// c.FromOffset, as the plan found it.
func (s *sourceFiles) listed(c BlockCopy) bool {
	e, ok := s.x.local.Get(c.From)
	if !ok || e.Deleted || e.Type != TypeFile {
		return false
	}
	i, found := slices.BinarySearchFunc(e.Blocks, c.FromOffset, func(b Block, off int64) int { return cmp.Compare(b.Offset, off) })
	return found && e.Blocks[i].Hash == c.Block.Hash && e.Blocks[i].Size == c.Block.Size
}

func (s *sourceFiles) close() {
	for _, src := range s.open {
		if src != nil {
			src.f.Close()
		}
	}
}
