package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// runMany: --files files of --size bytes (100,000 of 1 KiB unless told;
// --million for 1,000,000) in 100 directories, the dataset of issue 12's
// memory targets. Each run's files are removed before the next. With
// --memprofile, a heap profile of the process (every host) is written
// once each run is in sync.
func (b *bench) runMany(ctx context.Context) (*datasetResult, error) {
	n := int(b.o.scaled(int64(b.o.files), 10))
	size := b.o.size
	dirs := min(100, n)
	// 100,000 files took 26 s before the memory work; allow 1 ms a file
	// on top of the usual timeout.
	target := time.Duration(n) * 300 * time.Microsecond
	r := &datasetResult{Name: "many", Label: fmt.Sprintf("%s files of %s in %d dirs", countText(n), sizeText(size), dirs), Target: target}
	saved := b.o.timeout
	b.o.timeout += time.Duration(n) * time.Millisecond
	defer func() { b.o.timeout = saved }()
	b.afterRun = func(run int) error {
		if err := b.atRest(r, run); err != nil {
			return err
		}
		if b.o.memprofile == "" {
			return nil
		}
		runtime.GC()
		f, err := os.Create(fmt.Sprintf("%s.many.%d.pprof", b.o.memprofile, run))
		if err != nil {
			return err
		}
		defer f.Close()
		return pprof.Lookup("heap").WriteTo(f, 0)
	}
	defer func() { b.afterRun = nil }()
	return r, b.runMoved(ctx, r, func(dir string) ([]probe, error) {
		var probes []probe
		for i := range n {
			p, err := b.writeFile(dir, fmt.Sprintf("d%02d/f%07d", i%dirs, i), size)
			if err != nil {
				return nil, err
			}
			if i%5000 == 0 || i == n-1 {
				probes = append(probes, p)
			}
		}
		return probes, nil
	})
}

// restWindow is how long the folder is watched at rest after a run.
const restWindow = 10 * time.Second

// atRest measures the CPU time every host together uses in the restWindow
// after a run arrived (nothing changes then), with a CPU profile of it
// under --cpuprofile, PREFIX.many-rest.RUN.pprof.
func (b *bench) atRest(r *datasetResult, run int) error {
	if b.o.cpuprofile != "" {
		f, err := os.Create(fmt.Sprintf("%s.many-rest.%d.pprof", b.o.cpuprofile, run))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	t0, cpu0 := time.Now(), cpuTime()
	time.Sleep(restWindow) // the measurement is of this quiet time itself
	share := (cpuTime() - cpu0).Seconds() / time.Since(t0).Seconds()
	r.RestCPU = append(r.RestCPU, share)
	fmt.Fprintf(b.stderr, "many %d: at rest for %v: %.2f%% of a core, all hosts\n", run+1, restWindow, 100*share)
	return nil
}
