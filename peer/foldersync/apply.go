package foldersync

import (
	"context"
	"errors"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/syncfs"
)

// applied sums up what applyActions did.
type applied struct {
	failed, skipped int
	first           error
	// errs: why each name whose change failed did; attempts (kept by
	// noteFailures): how many applies in a row it failed in.
	errs     map[string]error
	attempts map[string]int
	// skips: the actions skipped, with why.
	skips []SkippedEntry
	// busy: why each name whose change found its file held by another
	// program (syncfs.ErrBusy) was not applied; not counted in failed.
	busy map[string]error
}

func (r *applied) add(o applied) {
	r.failed += o.failed
	r.skipped += o.skipped
	r.skips = append(r.skips, o.skips...)
	if r.first == nil {
		r.first = o.first
	}
	for n, err := range o.errs {
		r.fail(n, err)
	}
	for n, err := range o.busy {
		r.held(n, err)
	}
}

// held notes that the change of name found its file held by another
// program.
func (r *applied) held(name string, err error) {
	if r.busy == nil {
		r.busy = map[string]error{}
	}
	if _, ok := r.busy[name]; !ok {
		r.busy[name] = err
	}
}

// fail notes that the change of name failed with err (the first error
// of a name is kept).
func (r *applied) fail(name string, err error) {
	if r.errs == nil {
		r.errs = map[string]error{}
	}
	if _, ok := r.errs[name]; !ok {
		r.errs[name] = err
	}
}

// applyActions applies actions (skips aside), fetching blocks from peers,
// and announces progress as it goes. Runs of small file fetches and of
// file removals are applied in batches (each touches only its own name
// and entry), written by several workers at once and made durable
// together; everything else in order. It returns how
// many actions failed and the first error. It takes actions over: the
// skips are dropped in place, so a plan of a large folder is not held
// twice while it is applied.
func (f *folder) applyActions(ctx context.Context, peers []lpeer.ID, actions []syncfs.Action) applied {
	work := actions[:0]
	var (
		need progress
		res  applied
	)
	for _, a := range actions {
		if a.Kind == syncfs.ActSkip {
			f.log.Debug("not synced", "name", a.Name, "reason", a.Reason)
			res.skipped++
			res.skips = append(res.skips, SkippedEntry{Path: a.Name, Reason: a.Reason})
			continue
		}
		work = append(work, a)
	}
	if len(work) == 0 {
		return res
	}
	if n := f.resume(ctx, work); n > 0 {
		f.log.Debug("resuming interrupted fetches", "bytes", n)
	}
	for _, a := range work {
		need.add(a, 1)
	}
	f.setStatus(func(st *FolderStatus) { st.NeedFiles, st.NeedBytes = need.files, need.bytes })
	began := time.Now()
	src := f.newSource(ctx, peers, work)
	f.applier.Source = src
	defer func() {
		src.close()
		f.applier.Source = nil
	}()
	var changed []string
	result := func(i int, r syncfs.Result) {
		src.done(i)
		f.copied.Add(r.Copied)
		f.resumed.Add(r.Resumed)
		if errors.Is(r.Err, syncfs.ErrBusy) {
			// Nothing changed: the file stays as it was until the
			// program holding it lets go.
			res.held(r.Action.Name, r.Err)
			f.log.Info("file in use by another program; retrying later", "name", r.Action.Name, "err", r.Err)
		} else if r.Err != nil && !errors.Is(r.Err, syncfs.ErrNotDurable) {
			res.failed++
			if res.first == nil {
				res.first = r.Err
			}
			res.fail(r.Action.Name, r.Err)
			f.log.Debug("action failed", "action", r.Action.String(), "err", r.Err)
			if errors.Is(r.Err, syncfs.ErrChangedMeanwhile) {
				changed = append(changed, r.Action.Name)
			}
		} else {
			if r.Err != nil { // ErrNotDurable: in place, recorded, not yet durable
				f.log.Warn("a change may not survive a crash yet", "err", r.Err)
				for _, n := range []string{r.Action.Name, r.Action.From, r.Action.ConflictName} {
					if n != "" {
						f.undurable.add(n)
					}
				}
			}
			need.add(r.Action, -1)
			if r.Conflict != "" {
				f.log.Warn("change applied as a conflict", "name", r.Action.Name, "action", r.Action.String(), "why", r.Conflict)
			}
			if r.Action.Name == syncfs.IgnoreFile {
				f.requestRescan() // the patterns changed: look again at everything
			}
		}
		if time.Since(f.lastPub) >= f.pubEvery {
			f.setStatus(func(st *FolderStatus) { st.NeedFiles, st.NeedBytes = need.files, need.bytes })
			f.publish(ctx)
			f.persist(false)
		}
	}
	for i := 0; i < len(work) && ctx.Err() == nil; {
		j := i
		for j < len(work) && f.independent(work[j]) {
			j++
		}
		if j-i < 2 {
			result(i, f.applier.Apply(ctx, &f.local, work[i:i+1])[0])
			i++
			continue
		}
		f.applyBatched(ctx, work[i:j], func(k int, r syncfs.Result) { result(i+k, r) })
		i = j
	}
	f.setStatus(func(st *FolderStatus) { st.NeedFiles, st.NeedBytes = need.files, need.bytes })
	f.log.Debug("applied", "actions", len(work), "failed", res.failed, "took", time.Since(began), "fetched", f.fetched.Load())
	f.publish(ctx)
	if len(changed) > 0 {
		f.requestRescan(changed...)
	}
	return res
}

// resume drops from the Need of work's fetches the blocks that the partial
// files of interrupted attempts at them already hold (syncfs.Applier.Resume),
// so that the source does not fetch them again. Only the fetches applied
// one at a time are looked at (one Lstat each): small files, applied in
// batches, start over. It returns the bytes found.
func (f *folder) resume(ctx context.Context, work []syncfs.Action) int64 {
	var n int64
	for i, a := range work {
		if len(a.Need) > 0 && !f.independent(a) {
			n += f.applier.Resume(ctx, work[i:i+1])
		}
	}
	return n
}

// Batches of independent actions: each costs two filesystem barriers
// (see syncfs.Applier.ApplyBatch) and its results are reported when it is
// whole, so a batch is large enough to share the barriers among many small
// files and small enough that the next host hears of them soon.
const (
	batchFiles = 256
	batchBytes = 32 << 20
)

// parallelMax is the largest file applied in a batch: larger files go
// one at a time, each at full speed, so that they are announced (and
// fetched further by the next host) one by one, as early as possible.
const parallelMax = 4 << 20

// independent reports whether a touches only its own name, as one small
// file written or one non-directory removed, so it can be applied in a
// batch with others like it.
func (f *folder) independent(a syncfs.Action) bool {
	if !syncfs.Batchable(a, &f.local) {
		return false
	}
	return a.Kind != syncfs.ActFetch || a.File.Size <= parallelMax
}

// applyBatched applies independent actions (distinct names) in batches
// (syncfs.Applier.ApplyBatch), calling result for each in order on this
// goroutine.
func (f *folder) applyBatched(ctx context.Context, acts []syncfs.Action, result func(int, syncfs.Result)) {
	for i := 0; i < len(acts) && ctx.Err() == nil; {
		j, bytes := i, int64(0)
		for j < len(acts) && j-i < batchFiles && (j == i || bytes+acts[j].File.Size <= batchBytes) {
			bytes += acts[j].File.Size
			j++
		}
		for k, r := range f.applier.ApplyBatch(ctx, &f.local, acts[i:j]) {
			result(i+k, r)
		}
		i = j
	}
}

// progress counts what is still needed.
type progress struct {
	files int
	bytes int64
}

func (p *progress) add(a syncfs.Action, sign int) {
	n, b := needOf(a)
	p.files += sign * n
	p.bytes += int64(sign) * b
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
