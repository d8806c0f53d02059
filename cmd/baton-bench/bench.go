package main

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/baton-sync/baton/internal/sandbox"
	"github.com/baton-sync/baton/peer/foldersync"
)

// bench runs the datasets on one domain.
type bench struct {
	o      options
	d      domain
	stage  string // where datasets are written before they are moved in
	rng    *rand.ChaCha8
	stderr io.Writer
	// afterRun, if set, runs once a run of runMoved arrived and verified.
	afterRun func(run int) error
}

// probe is a file whose arrival is checked on the target: same size and
// modification time as the source's (the applier sets the source's).
type probe struct {
	name  string // relative, slash-separated
	size  int64
	mtime time.Time
}

// expect is what the target's status and disk show once a run arrived.
type expect struct {
	files  int   // the target's LocalFiles
	bytes  int64 // the target's LocalBytes
	probes []probe
}

// benchmark starts a domain in a fresh temporary directory, runs the
// selected datasets and removes everything. A failed dataset is reported
// in its result and the others still run; the error is then non-nil.
func benchmark(ctx context.Context, o options, stderr io.Writer) (*results, error) {
	base, err := os.MkdirTemp(o.dir, "baton-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(base)
	// A signal must not leave gigabytes behind: RemoveAll runs as the
	// deferred calls unwind, since ctx only makes the waits return.

	var logger *slog.Logger
	if o.log {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	fmt.Fprintf(stderr, "starting the domain in %s\n", base)
	d, err := startDomain(ctx, o.domain, domainOptions{Dir: base, Logger: logger, Transport: o.transport}, stderr)
	if err != nil {
		return nil, fmt.Errorf("starting the domain: %w", err)
	}
	defer d.Close()
	b := &bench{o: o, d: d, stage: filepath.Join(base, "stage"), stderr: stderr}
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, err
	}
	b.rng = rand.NewChaCha8(seed)
	if err := os.MkdirAll(b.stage, 0o755); err != nil {
		return nil, err
	}
	res := &results{
		Domain:     d.Describe(),
		Dir:        base,
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Scale:      o.scale,
	}
	if _, err := b.waitQuiet(ctx, -1); err != nil {
		return res, fmt.Errorf("the domain did not settle: %w", err)
	}
	var errs []error
	for _, name := range o.datasets {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		r, err := b.runDataset(ctx, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			fmt.Fprintf(stderr, "%s: FAILED: %v\n", name, err)
		}
		res.Datasets = append(res.Datasets, r)
	}
	res.PeakRSS = peakRSSSinceStart()
	if err := d.Close(); err != nil {
		errs = append(errs, fmt.Errorf("stopping the domain: %w", err))
	}
	if o.floor && ctx.Err() == nil {
		// After the domain stopped: the steps are measured with nothing
		// else running in the process.
		f, err := measureFloor(ctx, base, int(o.scaled(floorBytes, 1<<20)), 3, stderr)
		if err != nil {
			errs = append(errs, fmt.Errorf("measuring the floor: %w", err))
		}
		res.Floor = f
	}
	return res, errors.Join(errs...)
}

// runDataset runs the dataset name from a collected heap and a fresh peak
// RSS; a failed run is reported in its result too.
func (b *bench) runDataset(ctx context.Context, name string) (*datasetResult, error) {
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS()
	var r *datasetResult
	var err error
	switch name {
	case "big":
		r, err = b.runBig(ctx)
	case "small":
		r, err = b.runSmall(ctx)
	case "edit":
		r, err = b.runEdit(ctx)
	case "newfile":
		r, err = b.runNewFile(ctx)
	case "many":
		r, err = b.runMany(ctx)
	}
	r.PeakRSS = peakRSS()
	r.finish()
	if err != nil {
		r.Error = err.Error()
	}
	return r, err
}

// startDomain starts the domain kind asks for: "sandbox", "engine", or
// "auto" (the sandbox if its nodes sync folders, else the engines alone).
func startDomain(ctx context.Context, kind string, o domainOptions, stderr io.Writer) (domain, error) {
	if kind == "auto" || kind == "sandbox" {
		d, err := newSandboxDomain(ctx, o)
		if err == nil {
			return d, nil
		}
		if kind == "sandbox" || !errors.Is(err, sandbox.ErrNoFolderSync) {
			return nil, err
		}
		fmt.Fprintf(stderr, "the node does not sync folders in this build (%v): running the sync engines alone\n", err)
	}
	o.Dir = filepath.Join(o.Dir, "hosts")
	return newEngineDomain(ctx, o)
}

// runBig: 16 files of 64 MiB of random content.
func (b *bench) runBig(ctx context.Context) (*datasetResult, error) {
	size := b.o.scaled(64<<20, 64<<10)
	r := &datasetResult{Name: "big", Label: fmt.Sprintf("%s in 16 files of %s", sizeText(16*size), sizeText(size)), Target: 2500 * time.Millisecond}
	return r, b.runMoved(ctx, r, func(dir string) ([]probe, error) {
		var probes []probe
		for i := range 16 {
			p, err := b.writeFile(dir, fmt.Sprintf("file%02d.bin", i), size)
			if err != nil {
				return nil, err
			}
			probes = append(probes, p)
		}
		return probes, nil
	})
}

// runSmall: 10,000 files of 4 KiB in 100 directories.
func (b *bench) runSmall(ctx context.Context) (*datasetResult, error) {
	n := int(b.o.scaled(10000, 10))
	dirs := min(100, n)
	r := &datasetResult{Name: "small", Label: fmt.Sprintf("%s files of 4 KiB in %d dirs", countText(n), dirs), Target: 4 * time.Second}
	// The runs' files are removed only after the last run: removing
	// 30,000 files (the dataset on three hosts) just before the next run
	// makes that run measure the filesystem instead of baton. ext4 without
	// a journal does not reuse an inode for a minute after its file was
	// deleted, and finds a free one by probing each recently freed inode
	// in turn (recently_deleted() in the kernel's inode allocator): after
	// such a removal, creating the next 10,000 files cost twice the time.
	r.keepRuns = true
	return r, b.runMoved(ctx, r, func(dir string) ([]probe, error) {
		var probes []probe
		for i := range n {
			p, err := b.writeFile(dir, fmt.Sprintf("d%02d/f%05d", i%dirs, i), 4096)
			if err != nil {
				return nil, err
			}
			if i%500 == 0 || i == n-1 {
				probes = append(probes, p)
			}
		}
		return probes, nil
	})
}

// runMoved times a dataset written outside the folder, synced to disk, and
// moved into the source folder at once; it is removed after each run, or
// after the last one if r.keepRuns.
func (b *bench) runMoved(ctx context.Context, r *datasetResult, write func(dir string) ([]probe, error)) error {
	var (
		kept  []string
		start = -1 // files in the folder before the first run kept
	)
	defer func() {
		for _, name := range kept {
			os.RemoveAll(filepath.Join(b.d.Source(), name))
		}
	}()
	for run := range b.o.runs {
		name := fmt.Sprintf("%s-%d", r.Name, run)
		dir := filepath.Join(b.stage, name)
		probes, err := write(dir)
		if err != nil {
			return err
		}
		r.Files, r.Bytes, err = countTree(dir)
		if err != nil {
			return err
		}
		for i := range probes {
			probes[i].name = name + "/" + probes[i].name
		}
		// The staged data goes to disk now, not in the timed window.
		syncDisks()
		base, err := b.waitQuiet(ctx, -1)
		if err != nil {
			return err
		}
		want := expect{files: base.LocalFiles + r.Files, bytes: base.LocalBytes + r.Bytes, probes: probes}
		elapsed, ph, err := b.timed(ctx, r.Name, run, func() error {
			return os.Rename(dir, filepath.Join(b.d.Source(), name))
		}, want)
		if err != nil {
			return fmt.Errorf("run %d: %w", run+1, err)
		}
		r.add(elapsed, ph)
		b.progress(r, run, elapsed, ph)
		if err := b.verify(); err != nil {
			return fmt.Errorf("run %d: %w", run+1, err)
		}
		if b.afterRun != nil {
			if err := b.afterRun(run); err != nil {
				return fmt.Errorf("run %d: %w", run+1, err)
			}
		}
		if start < 0 {
			start = base.LocalFiles
		}
		kept = append(kept, name)
		if r.keepRuns && run < b.o.runs-1 {
			continue
		}
		for len(kept) > 0 {
			if err := os.RemoveAll(filepath.Join(b.d.Source(), kept[0])); err != nil {
				return err
			}
			kept = kept[1:]
		}
		files := start
		start = -1
		if _, err := b.waitQuiet(ctx, files); err != nil {
			return fmt.Errorf("run %d: removing the dataset: %w", run+1, err)
		}
	}
	return nil
}

// runEdit: 1 MiB of new random content in the middle of a 64 MiB file
// that is already on both sides.
func (b *bench) runEdit(ctx context.Context) (*datasetResult, error) {
	size := b.o.scaled(64<<20, 256<<10)
	change := min(b.o.scaled(1<<20, 16<<10), size/4)
	r := &datasetResult{Name: "edit", Label: fmt.Sprintf("%s change in a %s file", sizeText(change), sizeText(size)), Target: 300 * time.Millisecond,
		Files: 1, Bytes: change}
	const name = "edit.bin"
	src := filepath.Join(b.d.Source(), name)

	// The file arrives first, untimed.
	if _, err := b.writeFile(b.stage, name, size); err != nil {
		return r, err
	}
	syncDisks()
	base, err := b.waitQuiet(ctx, -1)
	if err != nil {
		return r, err
	}
	if err := os.Rename(filepath.Join(b.stage, name), src); err != nil {
		return r, err
	}
	if _, err := b.waitQuiet(ctx, base.LocalFiles+1); err != nil {
		return r, fmt.Errorf("the file to edit did not arrive: %w", err)
	}
	if err := b.verify(); err != nil {
		return r, fmt.Errorf("the file to edit: %w", err)
	}

	buf := make([]byte, change)
	for run := range b.o.runs {
		before, err := b.waitQuiet(ctx, -1)
		if err != nil {
			return r, err
		}
		srv0, _ := b.d.ServerStatus()
		b.rng.Read(buf)
		f, err := os.OpenFile(src, os.O_WRONLY, 0)
		if err != nil {
			return r, err
		}
		_, err = f.WriteAt(buf, size/2-change/2)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return r, err
		}
		p, err := probeOf(b.d.Source(), name)
		if err != nil {
			return r, err
		}
		want := expect{files: before.LocalFiles, bytes: before.LocalBytes, probes: []probe{p}}
		elapsed, ph, err := b.timed(ctx, r.Name, run, nil, want)
		if err != nil {
			return r, fmt.Errorf("run %d: %w", run+1, err)
		}
		r.add(elapsed, ph)
		b.progress(r, run, elapsed, ph)
		if err := b.verify(); err != nil {
			return r, fmt.Errorf("run %d: %w", run+1, err)
		}
		// The counters are final once everything settled.
		after, err := b.waitQuiet(ctx, -1)
		if err != nil {
			return r, err
		}
		t := transfer{Target: after.Fetched - before.Fetched, TargetCopied: after.Copied - before.Copied}
		if srv1, ok := b.d.ServerStatus(); ok {
			t.Server = srv1.Fetched - srv0.Fetched
		}
		r.Transfers = append(r.Transfers, t)
	}
	if err := os.Remove(src); err != nil {
		return r, err
	}
	if _, err := b.waitQuiet(ctx, base.LocalFiles); err != nil {
		return r, fmt.Errorf("removing the edited file: %w", err)
	}
	return r, nil
}

// runNewFile: one small file written in the folder, for the watcher to
// notice, --reps times.
func (b *bench) runNewFile(ctx context.Context) (*datasetResult, error) {
	reps := int(b.o.scaled(int64(b.o.reps), 3))
	r := &datasetResult{Name: "newfile", Label: "new small file, via the watcher", Target: 250 * time.Millisecond, Files: 1}
	data := []byte("a new note\n")
	r.Bytes = int64(len(data))
	var names []string
	for rep := range reps {
		base, err := b.waitQuiet(ctx, -1)
		if err != nil {
			return r, err
		}
		// A pause between repetitions, so that each file is the first
		// event after a quiet time, as a user's save usually is.
		time.Sleep(time.Duration(50+b.rng.Uint64()%100) * time.Millisecond)
		name := fmt.Sprintf("note%03d.txt", rep)
		names = append(names, name)
		if err := os.WriteFile(filepath.Join(b.d.Source(), name), data, 0o644); err != nil {
			return r, err
		}
		p, err := probeOf(b.d.Source(), name)
		if err != nil {
			return r, err
		}
		want := expect{files: base.LocalFiles + 1, bytes: base.LocalBytes + int64(len(data)), probes: []probe{p}}
		elapsed, ph, err := b.timed(ctx, r.Name, rep, nil, want)
		if err != nil {
			return r, fmt.Errorf("repetition %d: %w", rep+1, err)
		}
		r.add(elapsed, ph)
		b.progress(r, rep, elapsed, ph)
		if err := b.verify(); err != nil {
			return r, fmt.Errorf("repetition %d: %w", rep+1, err)
		}
	}
	base, err := b.waitQuiet(ctx, -1)
	if err != nil {
		return r, err
	}
	for _, n := range names {
		if err := os.Remove(filepath.Join(b.d.Source(), n)); err != nil {
			return r, err
		}
	}
	if _, err := b.waitQuiet(ctx, base.LocalFiles-len(names)); err != nil {
		return r, fmt.Errorf("removing the new files: %w", err)
	}
	return r, nil
}

// timed runs start (if any) and times from then until want holds on the
// target, with a CPU profile of the window if asked. It also notes when
// the source had indexed the data and when the server had it all.
func (b *bench) timed(ctx context.Context, dataset string, run int, start func() error, want expect) (time.Duration, phases, error) {
	if b.o.cpuprofile != "" {
		f, err := os.Create(fmt.Sprintf("%s.%s.%d.pprof", b.o.cpuprofile, dataset, run))
		if err != nil {
			return 0, phases{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, phases{}, err
		}
		defer pprof.StopCPUProfile()
	}
	src0, _ := b.d.SourceStatus()
	srv0, hasServer := b.d.ServerStatus()
	t0, cpu0 := time.Now(), cpuTime()
	if start != nil {
		if err := start(); err != nil {
			return 0, phases{}, err
		}
	}
	var ph phases
	holds := func(st foldersync.FolderStatus, seq0 uint64) bool {
		return st.Sequence > seq0 && st.NeedFiles == 0 && st.LocalFiles == want.files && st.LocalBytes == want.bytes
	}
	deadline := t0.Add(b.o.timeout)
	for {
		now := time.Now()
		if ph.Indexed == 0 {
			if st, ok := b.d.SourceStatus(); ok && holds(st, src0.Sequence) {
				ph.Indexed = now.Sub(t0)
			}
		}
		if hasServer && ph.Server == 0 {
			if st, ok := b.d.ServerStatus(); ok && holds(st, srv0.Sequence) {
				ph.Server = now.Sub(t0)
			}
		}
		st, ok := b.d.TargetStatus()
		if ok && st.InSync && st.NeedFiles == 0 && st.LocalFiles == want.files && st.LocalBytes == want.bytes &&
			probesArrived(b.d.Target(), want.probes) {
			d := time.Since(t0)
			// A phase the polls missed ended by the end at the latest.
			if ph.Indexed == 0 {
				ph.Indexed = d
			}
			if hasServer && ph.Server == 0 {
				ph.Server = d
			}
			ph.CPU = cpuTime() - cpu0
			if err := b.waitHistory(ctx, t0, cpu0, deadline, &ph); err != nil {
				return 0, ph, err
			}
			return d, ph, nil
		}
		if now.After(deadline) {
			src, _ := b.d.SourceStatus()
			srv, _ := b.d.ServerStatus()
			return 0, ph, fmt.Errorf("not arrived after %v (want %d files, %d bytes)\n  target: %+v\n  server: %+v\n  source: %+v",
				b.o.timeout, want.files, want.bytes, st, srv, src)
		}
		select {
		case <-ctx.Done():
			return 0, ph, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// waitHistory waits, after a run arrived, until the server has kept it in
// its folder's history (which waits for transfers to be quiet), and notes
// when and the CPU used until then in ph: the next run starts once the
// server is done.
func (b *bench) waitHistory(ctx context.Context, t0 time.Time, cpu0 time.Duration, deadline time.Time, ph *phases) error {
	if _, ok := b.d.HistoryBacklog(); !ok {
		return nil
	}
	for {
		if n, _ := b.d.HistoryBacklog(); n == 0 {
			ph.History, ph.HistoryCPU = time.Since(t0), cpuTime()-cpu0
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server's history not done after %v", b.o.timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func probesArrived(root string, probes []probe) bool {
	for _, p := range probes {
		fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(p.name)))
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != p.size || !fi.ModTime().Equal(p.mtime) {
			return false
		}
	}
	return true
}

// settle is how long every host must stay in sync for waitQuiet: more than
// the watcher's quiet time, so that a change just made is seen.
const settle = 300 * time.Millisecond

// waitQuiet waits until the source, the server and the target are all in
// sync with nothing needed, hold the same number of files and bytes (files
// of them, unless negative), and stay so for the settle time. It returns
// the target's status.
func (b *bench) waitQuiet(ctx context.Context, files int) (foldersync.FolderStatus, error) {
	deadline := time.Now().Add(b.o.timeout)
	var since time.Time
	for {
		src, ok1 := b.d.SourceStatus()
		dst, ok2 := b.d.TargetStatus()
		quiet := ok1 && ok2 && inSync(src) && inSync(dst) &&
			src.LocalFiles == dst.LocalFiles && src.LocalBytes == dst.LocalBytes && src.LocalDirs == dst.LocalDirs &&
			(files < 0 || dst.LocalFiles == files)
		if srv, ok := b.d.ServerStatus(); ok && quiet {
			quiet = inSync(srv) && srv.LocalFiles == dst.LocalFiles && srv.LocalBytes == dst.LocalBytes
		}
		if n, ok := b.d.HistoryBacklog(); ok && quiet {
			quiet = n == 0
		}
		switch {
		case !quiet:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= settle:
			return dst, nil
		}
		if time.Now().After(deadline) {
			srv, _ := b.d.ServerStatus()
			return dst, fmt.Errorf("hosts not in sync after %v\n  source: %+v\n  server: %+v\n  target: %+v", b.o.timeout, src, srv, dst)
		}
		select {
		case <-ctx.Done():
			return dst, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func inSync(st foldersync.FolderStatus) bool {
	return st.InSync && st.NeedFiles == 0 && st.LastError == "" && st.State != foldersync.StateError
}

// verify compares the source and target trees, contents hashed.
func (b *bench) verify() error {
	src, err := hashTree(b.d.Source())
	if err != nil {
		return err
	}
	dst, err := hashTree(b.d.Target())
	if err != nil {
		return err
	}
	if diff := treeDiff(src, dst); diff != "" {
		return fmt.Errorf("the trees differ after the run: %s", diff)
	}
	return nil
}

// writeFile writes size random bytes to dir/name (slash-separated),
// making directories, and returns its probe.
func (b *bench) writeFile(dir, name string, size int64) (probe, error) {
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return probe{}, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return probe{}, err
	}
	buf := make([]byte, min(size, 1<<20))
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		b.rng.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return probe{}, err
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		return probe{}, err
	}
	return probeOf(dir, name)
}

func probeOf(root, name string) (probe, error) {
	fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		return probe{}, err
	}
	return probe{name: name, size: fi.Size(), mtime: fi.ModTime()}, nil
}

// countTree counts the regular files under dir and their bytes.
func countTree(dir string) (files int, bytes int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files++
		bytes += fi.Size()
		return nil
	})
	return files, bytes, err
}

func (b *bench) progress(r *datasetResult, run int, d time.Duration, ph phases) {
	fmt.Fprintf(b.stderr, "%s %d: %s (%s)\n", r.Name, run+1, durText(d), ph)
}

// median returns the middle of ds (the mean of the two middles for an even
// count).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
