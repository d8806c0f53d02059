package foldersync

import (
	"context"
	"errors"
	"sync"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/syncfs"
)

// applied sums up what applyActions did.
type applied struct {
	failed, skipped int
	first           error
}

func (r *applied) add(o applied) {
	r.failed += o.failed
	r.skipped += o.skipped
	if r.first == nil {
		r.first = o.first
	}
}

// applyActions applies actions (skips aside), fetching blocks from peers,
// and announces progress as it goes. Runs of small file fetches and of
// file removals are applied by several workers at once (each touches only
// its own name and entry); everything else in order. It returns how
// many actions failed and the first error.
func (f *folder) applyActions(ctx context.Context, peers []lpeer.ID, actions []syncfs.Action) applied {
	work := actions[:0:0]
	var (
		need progress
		res  applied
	)
	for _, a := range actions {
		if a.Kind == syncfs.ActSkip {
			f.log.Debug("not synced", "name", a.Name, "reason", a.Reason)
			res.skipped++
			continue
		}
		work = append(work, a)
		need.add(a, 1)
	}
	if len(work) == 0 {
		return res
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
		if r.Err != nil && !errors.Is(r.Err, syncfs.ErrNotDurable) {
			res.failed++
			if res.first == nil {
				res.first = r.Err
			}
			f.log.Debug("action failed", "action", r.Action.String(), "err", r.Err)
			if errors.Is(r.Err, syncfs.ErrChangedMeanwhile) {
				changed = append(changed, r.Action.Name)
			}
		} else {
			need.add(r.Action, -1)
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
		f.applyParallel(ctx, work[i:j], func(k int, r syncfs.Result) { result(i+k, r) })
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

// applyWorkers is how many independent actions are applied at once.
const applyWorkers = 8

// parallelMax is the largest file applied beside others: larger files go
// one at a time, each at full speed, so that they are announced (and
// fetched further by the next host) one by one, as early as possible.
const parallelMax = 4 << 20

// independent reports whether a touches only its own name, as one small
// file written or one non-directory removed, so it can be applied beside
// others like it.
func (f *folder) independent(a syncfs.Action) bool {
	if a.From != "" || a.ConflictName != "" {
		return false
	}
	switch a.Kind {
	case syncfs.ActFetch:
		return a.File.Type == syncfs.TypeFile && a.File.Size <= parallelMax
	case syncfs.ActDelete:
		l, ok := f.local.Files[a.Name]
		return ok && l.Type != syncfs.TypeDir && a.File.Type != syncfs.TypeDir
	}
	return false
}

// applyParallel applies independent actions (distinct names) with applyWorkers
// workers, each on a Local holding only its action's entry, and merges
// what they record into the folder's Local, calling result in completion
// order on this goroutine.
func (f *folder) applyParallel(ctx context.Context, acts []syncfs.Action, result func(int, syncfs.Result)) {
	type done struct {
		i     int
		local syncfs.Local
		res   syncfs.Result
	}
	jobs := make(chan int)
	out := make(chan done, len(acts)) // workers never wait for this goroutine
	var wg sync.WaitGroup
	for range min(applyWorkers, len(acts)) {
		wg.Go(func() {
			for i := range jobs {
				name := acts[i].Name
				mini := syncfs.NewLocal()
				f.mu.Lock() // f.local is not written while workers run; mu orders the reads for the race detector
				if fi, ok := f.local.Files[name]; ok {
					mini.Files[name] = fi
				}
				if st, ok := f.local.Disk[name]; ok {
					mini.Disk[name] = st
				}
				f.mu.Unlock()
				r := f.applier.Apply(ctx, &mini, acts[i:i+1])[0]
				out <- done{i, mini, r}
			}
		})
	}
	go func() {
		defer close(jobs)
		for i := range acts {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(out)
	}()
	for d := range out {
		name := acts[d.i].Name
		f.mu.Lock()
		if fi, ok := d.local.Files[name]; ok {
			f.local.Files[name] = fi
		}
		if st, ok := d.local.Disk[name]; ok {
			f.local.Disk[name] = st
		} else {
			delete(f.local.Disk, name)
		}
		f.mu.Unlock()
		result(d.i, d.res)
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
