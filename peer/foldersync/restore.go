package foldersync

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/baton-sync/baton/syncfs"
)

// ErrRestoreBlock wraps a block Restore could not have or that did not
// hash to its name: nothing was written.
var ErrRestoreBlock = errors.New("a block of the version to restore is missing or damaged")

// restoreScanMax is how many entries a restore rescans by name before
// writing; more, and it rescans the whole folder.
const restoreScanMax = 1000

// RestoreResult says what a restore changed.
type RestoreResult struct {
	Changed   int      // entries written, deleted or recorded anew
	Unchanged int      // entries already as asked
	Failed    []string // entries whose change failed, with why
}

// Restore makes entries, versions of a folder's entries from its history,
// the folder's current ones on this host: each becomes a new local change,
// with a version vector that dominates the one it replaces, updated by
// this host, so that it syncs to every member as any change does. A
// tombstone among entries deletes what is at its name. Entries whose
// current version already holds the same content and metadata are left as
// they are.
//
// blocks gives the content of a block by hash. Before anything is
// written, every block the live files of entries reference is read with
// it and checked against its hash; one missing or wrong fails the whole
// restore with ErrRestoreBlock. The applier then writes only verified
// blocks.
//
// It runs on the folder's goroutine and returns when done: the folder is
// rescanned (the restored names, or all of it for many entries) first, so
// that the plan is made against what is on disk.
func (e *Engine) Restore(ctx context.Context, id string, entries []syncfs.FileInfo, blocks func(syncfs.Hash) ([]byte, error)) (RestoreResult, error) {
	var paths []string
	if len(entries) <= restoreScanMax {
		for _, fi := range entries {
			paths = append(paths, fi.Name)
		}
	}
	return e.restore(ctx, id, paths, func(syncfs.Entries) []syncfs.FileInfo { return entries }, blocks, Requester{})
}

// RestoreTree restores the path p of a folder ("" for all of it) to then,
// the folder's tree at an earlier time (tombstones included), as Restore
// does with RestoreEntries(then, current, p): the current tree being this
// host's index once p is rescanned, so that what was made since, even a
// moment ago, is deleted under p. by, who asked for the restore, is given
// to Config.Archive with the change the restore makes (and with nothing
// else: what the rescan found is published before).
func (e *Engine) RestoreTree(ctx context.Context, id string, then syncfs.Snapshot, p string, blocks func(syncfs.Hash) ([]byte, error), by Requester) (RestoreResult, error) {
	p = strings.Trim(path.Clean("/"+p), "/")
	return e.restore(ctx, id, []string{p}, func(now syncfs.Entries) []syncfs.FileInfo { return RestoreEntries(then, now, p) }, blocks, by)
}

// restore runs a restore on the folder's goroutine: paths are rescanned
// ("" or none: everything), then entries gives what to restore from the
// folder's current index.
func (e *Engine) restore(ctx context.Context, id string, paths []string, entries func(syncfs.Entries) []syncfs.FileInfo, blocks func(syncfs.Hash) ([]byte, error), by Requester) (RestoreResult, error) {
	f := e.folder(id)
	if f == nil {
		return RestoreResult{}, fmt.Errorf("%w: %s", ErrUnknownFolder, id)
	}
	type answer struct {
		res RestoreResult
		err error
	}
	done := make(chan answer, 1)
	select {
	case f.ctl <- func(ctx context.Context) {
		res, err := f.restore(ctx, paths, entries, blocks, by)
		done <- answer{res, err}
	}:
	case <-f.done:
		return RestoreResult{}, fmt.Errorf("%w: %s", ErrUnknownFolder, id)
	case <-ctx.Done():
		return RestoreResult{}, ctx.Err()
	}
	select {
	case a := <-done:
		return a.res, a.err
	case <-ctx.Done():
		return RestoreResult{}, ctx.Err()
	}
}

func (f *folder) restore(ctx context.Context, paths []string, entriesOf func(syncfs.Entries) []syncfs.FileInfo, blocks func(syncfs.Hash) ([]byte, error), by Requester) (RestoreResult, error) {
	if !f.ready {
		return RestoreResult{}, fmt.Errorf("restoring in folder %s: not scanned yet", f.id)
	}
	if err := f.scan(ctx, paths...); err != nil {
		return RestoreResult{}, fmt.Errorf("restoring in folder %s: %w", f.id, err)
	}
	entries := entriesOf(&f.local)
	for _, fi := range entries {
		if err := fi.Validate(); err != nil {
			return RestoreResult{}, fmt.Errorf("restoring in folder %s: entry %q: %w", f.id, fi.Name, err)
		}
	}
	if err := checkRestoreBlocks(entries, blocks); err != nil {
		return RestoreResult{}, fmt.Errorf("restoring in folder %s: %w", f.id, err)
	}
	self := f.e.self.String()
	want, unchanged := restoreTargets(&f.local, entries, self)
	res := RestoreResult{Unchanged: unchanged}
	if len(want) == 0 {
		return res, nil
	}
	// What the rescan found (and changes not published yet) is published
	// now, so that the restore's own publish below holds only its changes,
	// given to Config.Archive as asked by by.
	f.publish(ctx)
	acts := syncfs.PlanWith(&f.local, want, self, f.planOptions())
	f.setState(StateSyncing)
	defer f.setState(StateIdle)
	f.applier.Source = restoreSource(blocks)
	results := f.applier.Apply(ctx, &f.local, acts)
	f.applier.Source = nil
	var names []string
	for _, r := range results {
		a := r.Action
		names = append(names, a.Name)
		if a.From != "" {
			names = append(names, a.From)
		}
		if a.ConflictName != "" {
			names = append(names, a.ConflictName)
		}
		switch {
		case a.Kind == syncfs.ActSkip:
			res.Failed = append(res.Failed, fmt.Sprintf("%s: %s", a.Name, a.Reason))
		case r.Err != nil && errors.Is(r.Err, syncfs.ErrNotDurable):
			f.undurable.add(a.Name)
			res.Changed++
		case r.Err != nil:
			res.Failed = append(res.Failed, r.Err.Error())
		default:
			res.Changed++
		}
	}
	f.touch(names...)
	f.archiveBy = by
	f.publish(ctx)
	f.archiveBy = Requester{}
	f.persist(true)
	if len(res.Failed) > 0 {
		return res, fmt.Errorf("restoring in folder %s: %d changes failed, the first: %s", f.id, len(res.Failed), res.Failed[0])
	}
	return res, nil
}

// restoreTargets returns the entries of the restore that change the
// folder, each with a version that dominates the local one, updated by
// self, and how many entries were already as asked.
func restoreTargets(local syncfs.Entries, entries []syncfs.FileInfo, self string) (syncfs.Snapshot, int) {
	want := syncfs.Snapshot{}
	unchanged := 0
	for _, e := range entries {
		l, ok := local.Get(e.Name)
		switch {
		case e.Deleted && (!ok || l.Deleted):
			unchanged++
			continue
		case !e.Deleted && ok && !l.Deleted && l.SameContent(e) && l.SameMetadata(e):
			unchanged++
			continue
		}
		t := e
		if e.Deleted {
			t = syncfs.FileInfo{Name: e.Name, Type: l.Type, Deleted: true, ModTime: l.ModTime}
		}
		t.Blocks = slices.Clone(e.Blocks)
		t.Version = l.Version.Merge(e.Version).Update(self)
		want[e.Name] = t
	}
	return want, unchanged
}

// checkRestoreBlocks reads every block of the live files of entries with
// blocks and checks its hash, each once.
func checkRestoreBlocks(entries []syncfs.FileInfo, blocks func(syncfs.Hash) ([]byte, error)) error {
	seen := map[syncfs.Hash]bool{}
	for _, fi := range entries {
		if fi.Deleted || fi.Type != syncfs.TypeFile {
			continue
		}
		for _, b := range fi.Blocks {
			if seen[b.Hash] {
				continue
			}
			seen[b.Hash] = true
			data, err := blocks(b.Hash)
			if err != nil {
				return fmt.Errorf("%s: block %x: %w: %v", fi.Name, b.Hash[:8], ErrRestoreBlock, err)
			}
			if uint32(len(data)) != b.Size || syncfs.HashBytes(data) != b.Hash {
				return fmt.Errorf("%s: block %x: %w", fi.Name, b.Hash[:8], ErrRestoreBlock)
			}
		}
	}
	return nil
}

// restoreSource gives the applier the blocks of a restore, verified.
type restoreSource func(syncfs.Hash) ([]byte, error)

func (s restoreSource) Block(_ context.Context, h syncfs.Hash, size uint32) (syncfs.VerifiedBlock, error) {
	data, err := s(h)
	if err != nil {
		return syncfs.VerifiedBlock{}, fmt.Errorf("%w: %v", syncfs.ErrBlockUnavailable, err)
	}
	if uint32(len(data)) != size {
		return syncfs.VerifiedBlock{}, fmt.Errorf("%w: block %x is %d bytes, want %d", syncfs.ErrBlockUnavailable, h[:8], len(data), size)
	}
	return syncfs.VerifyBlock(data, h)
}

// RestoreEntries returns what restoring the path p ("" for the whole
// folder) of a folder to the tree then does to the tree now (both with
// tombstones): every entry of then at or under p, and a tombstone for
// every live entry of now there that then does not hold live. It is
// Restore's entries for a file, a directory or the whole folder.
func RestoreEntries(then syncfs.Snapshot, now syncfs.Entries, p string) []syncfs.FileInfo {
	var out []syncfs.FileInfo
	for _, fi := range then.Sorted() {
		if under(fi.Name, p) {
			out = append(out, fi)
		}
	}
	var gone []syncfs.FileInfo
	for _, fi := range now.All() {
		if fi.Deleted || !under(fi.Name, p) {
			continue
		}
		if _, ok := then[fi.Name]; ok {
			continue // listed above, live or a tombstone
		}
		gone = append(gone, syncfs.FileInfo{Name: fi.Name, Type: fi.Type, Deleted: true, ModTime: fi.ModTime, Version: fi.Version})
	}
	slices.SortFunc(gone, func(a, b syncfs.FileInfo) int { return strings.Compare(a.Name, b.Name) })
	return append(out, gone...)
}

// under reports whether name is p or inside the directory p ("" holds
// everything).
func under(name, p string) bool {
	p = strings.Trim(path.Clean("/"+p), "/")
	return p == "" || name == p || strings.HasPrefix(name, p+"/")
}
