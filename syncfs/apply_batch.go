package syncfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/baton-sync/baton/internal/durable"
)

// DefaultBatchConcurrency is how many files of a batch ApplyBatch writes at
// once when Applier.BatchConcurrency is zero.
const DefaultBatchConcurrency = 8

// Batchable reports whether ApplyBatch applies a in a batch rather than
// alone: a fetch of a regular file or a removal of a file or symlink,
// without a rename source or a conflict copy. local is the Local the plan
// was made from.
func Batchable(a Action, local *Local) bool {
	if a.From != "" || a.ConflictName != "" {
		return false
	}
	switch a.Kind {
	case ActFetch:
		return a.File.Type == TypeFile && !a.File.Deleted
	case ActDelete:
		l, ok := local.Get(a.Name)
		return ok && l.Type != TypeDir && a.File.Type != TypeDir
	}
	return false
}

// ApplyBatch applies independent actions (distinct names, none inside
// another) like Apply, with the same guarantees, but shares the cost of
// durability among them: the files are written to temporary files by
// BatchConcurrency workers, made durable by one barrier (on Linux one
// syncfs of the folder's filesystem, elsewhere an fsync of each file),
// checked and renamed into place (or removed) one by one, and then the
// directories are made durable by a second barrier (syncfs, or one fsync
// per distinct directory). A result is returned only after the second
// barrier, so what it reports applied is durable: after a crash each name
// holds its old content or its new one. Actions that are not Batchable,
// or whose directory cannot be used, are applied alone, in order, before
// the batch. The results are in the order of actions Where Applier.FS
// is set, every action is applied alone, as Apply does.
func (ap *Applier) ApplyBatch(ctx context.Context, local *Local, actions []Action) []Result {
	if ap.FS != nil {
		return ap.Apply(ctx, local, actions)
	}
	results := make([]Result, len(actions))
	root, err := os.OpenRoot(ap.Root)
	if err != nil {
		for i, a := range actions {
			results[i] = Result{Action: a, Err: fmt.Errorf("%v: opening folder %s: %w", a, ap.Root, err)}
		}
		return results
	}
	defer root.Close()
	b := &batch{ap: ap, root: root, local: local, dirs: map[string]*batchDir{}}
	defer b.close()
	if !syncEachFile {
		// Opened before anything is written, so that syncfs reports any
		// write-back error of the batch's writes.
		if b.fsDir, err = root.Open("."); err != nil {
			for i, a := range actions {
				results[i] = Result{Action: a, Err: fmt.Errorf("%v: opening folder %s: %w", a, ap.Root, err)}
			}
			return results
		}
	}
	var items []*batchItem
	for i, a := range actions {
		results[i].Action = a
		x := &applyRun{ap: ap, root: rootFS{root}, local: local, res: &results[i]}
		if cerr := ctx.Err(); cerr != nil {
			results[i].Err = cerr
			continue
		}
		it := &batchItem{x: x, a: a}
		if Batchable(a, local) {
			it.dir, it.base, err = b.dir(a.Name)
		}
		if !Batchable(a, local) || err != nil {
			// Alone, as Apply would (which also says why a name cannot
			// be written, or removes a name whose directory is gone).
			if e := x.do(ctx, a); e != nil {
				results[i].Err = fmt.Errorf("%v: %w", a, e)
			}
			x.count()
			continue
		}
		items = append(items, it)
	}
	b.write(ctx, items)
	b.place(ctx, items)
	for _, it := range items {
		it.x.count()
	}
	return results
}

// batch is the state of one ApplyBatch.
type batch struct {
	ap    *Applier
	root  *os.Root
	local *Local
	dirs  map[string]*batchDir
	fsDir *os.File // the folder, for syncfs (nil where each file is fsynced)
}

// batchDir is a directory holding names of a batch, checked and opened
// once.
type batchDir struct {
	root *os.Root
	err  error // why names in it cannot be written
}

// batchItem is one action of a batch.
type batchItem struct {
	x      *applyRun
	a      Action
	dir    *batchDir
	base   string // the name's last component
	tmp    string // the temporary file's name in dir, once created
	placed bool   // renamed into place or removed
	err    error
}

func (it *batchItem) fail(err error) {
	if it.err == nil {
		it.err = err
		it.x.res.Err = fmt.Errorf("%v: %w", it.a, err)
	}
}

// dir checks name as Apply does (SafeJoin, not a temporary file's name;
// no parent a symlink or not a directory, checked once per directory) and
// returns its directory, opened as a root, and its last component. A
// directory that does not exist is an error: a batch writes in existing
// directories only.
func (b *batch) dir(name string) (*batchDir, string, error) {
	if err := checkApplyName(b.ap.Root, name); err != nil {
		return nil, "", err
	}
	parent, base := parentDir(name), name[len(parentDir(name)):]
	if parent != "" {
		base = base[1:]
	}
	d, ok := b.dirs[parent]
	if !ok {
		d = &batchDir{root: b.root}
		if err := CheckNoSymlinkTraversal(b.ap.Root, name); err != nil {
			d.err = err
		} else if parent != "" {
			d.root, d.err = b.root.OpenRoot(filepath.FromSlash(parent))
		}
		b.dirs[parent] = d
	}
	if d.err != nil {
		return nil, "", d.err
	}
	return d, base, nil
}

func (b *batch) close() {
	if b.fsDir != nil {
		b.fsDir.Close()
	}
	for _, d := range b.dirs {
		if d.err == nil && d.root != b.root {
			d.root.Close()
		}
	}
}

// write writes every fetch's temporary file, BatchConcurrency at a time,
// then makes them durable.
func (b *batch) write(ctx context.Context, items []*batchItem) {
	n := b.ap.BatchConcurrency
	if n <= 0 {
		n = DefaultBatchConcurrency
	}
	jobs := make(chan *batchItem)
	var wg sync.WaitGroup
	for range min(n, len(items)) {
		wg.Go(func() {
			for it := range jobs {
				if err := b.writeTemp(ctx, it); err != nil {
					it.fail(err)
				}
			}
		})
	}
	var written []*batchItem
	for _, it := range items {
		if it.a.Kind == ActFetch && it.err == nil {
			jobs <- it
			written = append(written, it)
		}
	}
	close(jobs)
	wg.Wait()
	// The first barrier: the temporary files' content is durable before
	// any of them is renamed into place.
	var synced []*batchItem
	for _, it := range written {
		if it.err == nil {
			if err := it.x.step("fsync", it.a.Name); err != nil {
				it.fail(err)
				continue
			}
			synced = append(synced, it)
		}
	}
	if len(synced) > 0 && !syncEachFile {
		if err := durable.SyncFS(b.fsDir); err != nil {
			for _, it := range synced {
				it.fail(err)
			}
		}
	}
	for _, it := range written {
		if it.err != nil && it.tmp != "" {
			it.dir.root.Remove(it.tmp)
		}
	}
}

// writeTemp writes it's file to a new temporary file in its directory,
// from verified blocks, with its mode and mtime (and fsyncs it where the
// barrier is per file).
func (b *batch) writeTemp(ctx context.Context, it *batchItem) error {
	if err := it.x.step("create-temp", it.a.Name); err != nil {
		return err
	}
	tmp := tempName(it.base)
	out, err := it.dir.root.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating temporary file: %w", err)
	}
	it.tmp = tmp
	defer out.Close()
	f := it.a.File
	if err := it.x.fill(ctx, it.a, out, nil); err != nil {
		return err
	}
	if err := out.Chmod(localPerm(fs.FileMode(f.Mode & PermMask))); err != nil {
		return err
	}
	t := time.Unix(0, f.ModTime)
	if err := it.dir.root.Chtimes(tmp, t, t); err != nil {
		return err
	}
	if syncEachFile {
		if err := it.x.step("fsync", it.a.Name); err != nil {
			return err
		}
		if err := out.Sync(); err != nil {
			return fmt.Errorf("fsync: %w", err)
		}
	}
	return out.Close()
}

// place checks each name once more and renames its temporary file over it
// (or removes it), in order, recording each, then makes the directories
// durable.
func (b *batch) place(ctx context.Context, items []*batchItem) {
	var placed []*batchItem
	for _, it := range items {
		if it.err != nil {
			continue
		}
		var err error
		if it.a.Kind == ActFetch {
			err = b.rename(ctx, it)
		} else {
			err = b.remove(ctx, it)
		}
		if err != nil {
			it.fail(err)
			if it.a.Kind == ActFetch && !it.placed {
				it.dir.root.Remove(it.tmp)
			}
		}
		if it.placed {
			placed = append(placed, it)
		}
	}
	// The second barrier: the renames and removals are durable before
	// any is reported.
	var dirs []*batchItem
	for _, it := range placed {
		if err := it.x.step("dir-fsync", it.a.Name); err != nil {
			it.fail(notDurable(it.a.Name, err))
			continue
		}
		dirs = append(dirs, it)
	}
	if len(dirs) == 0 {
		return
	}
	if !syncEachFile {
		if err := durable.SyncFS(b.fsDir); err != nil {
			for _, it := range dirs {
				it.fail(notDurable(it.a.Name, err))
			}
		}
		return
	}
	synced := map[*batchDir]error{}
	for _, it := range dirs {
		err, done := synced[it.dir]
		if !done {
			err = syncDirRoot(it.dir.root)
			synced[it.dir] = err
		}
		if err != nil {
			it.fail(notDurable(it.a.Name, err))
		}
	}
}

// rename puts it's temporary file in place, if the name is still as
// recorded.
func (b *batch) rename(ctx context.Context, it *batchItem) error {
	if err := it.x.step("check", it.a.Name); err != nil {
		return err
	}
	if err := b.unchanged(it); err != nil {
		return err
	}
	if err := it.x.step("rename", it.a.Name); err != nil {
		return err
	}
	it.x.expect(it.a.Name, it.a.File.Size, it.a.File.ModTime)
	if err := b.ap.retryBusy(ctx, it.a.Name, func() error { return it.dir.root.Rename(it.tmp, it.base) }); err != nil {
		return err
	}
	it.placed = true
	it.x.dropOtherPartial(it.a.Name, "")
	return b.record(it)
}

// remove removes it's name if it is still as recorded (or already gone).
func (b *batch) remove(ctx context.Context, it *batchItem) error {
	if err := b.unchanged(it); err != nil {
		if _, serr := it.dir.root.Lstat(it.base); !errors.Is(serr, fs.ErrNotExist) {
			return err
		}
		// Already gone: nothing to lose.
	} else {
		it.x.expect(it.a.Name, -1, 0)
		if err := b.ap.retryBusy(ctx, it.a.Name, func() error { return it.dir.root.Remove(it.base) }); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	it.placed = true
	return b.record(it)
}

// unchanged is applyRun.unchanged through the item's directory.
func (b *batch) unchanged(it *batchItem) error {
	fi, err := it.dir.root.Lstat(it.base)
	return checkUnchanged(b.local, it.a.Name, fi, err, func() (string, error) { return it.dir.root.Readlink(it.base) })
}

// record notes that it's name now holds its action's File, as on disk.
func (b *batch) record(it *batchItem) error {
	name, f := it.a.Name, it.a.File
	b.local.Set(f)
	it.x.recorded(name, f)
	if f.Deleted {
		b.local.DropStat(name)
		return nil
	}
	fi, err := it.dir.root.Lstat(it.base)
	if err != nil {
		b.local.DropStat(name)
		return fmt.Errorf("checking %s after writing: %w", name, err)
	}
	b.local.SetStat(name, statOf(fi))
	return nil
}

// syncDirRoot fsyncs the directory r is opened on.
func syncDirRoot(r *os.Root) error {
	d, err := r.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", r.Name(), err)
	}
	return nil
}
