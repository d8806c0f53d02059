//go:build unix

package syncfs

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// nopBackend watches nothing: what listing the directories costs, alone.
type nopBackend struct{}

func (nopBackend) Add(string) error    { return nil }
func (nopBackend) Remove(string) error { return nil }
func (nopBackend) Close() error        { return nil }

// BenchmarkRescan measures what the periodic rescan of the
// directories-only watching costs (Watcher.DirsOnly, as on macOS): a full
// scan of an unchanged folder of 10,000 and 100,000 small files, 100 to a
// directory, with the previous Local (stats only, nothing hashed; the
// metadata is in the cache, as it is for a folder rescanned every
// minute), updated in place as a folder does. It reports the wall and CPU time per rescan, and, once, what
// starting the watcher costs (listing every directory, as DirsOnly does)
// and the memory those listings hold.
func BenchmarkRescan(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		root := b.TempDir()
		for i := range n {
			put(b, root, fmt.Sprintf("d%04d/f%03d", i/100, i%100), []byte("x"), 0o644, baseTime)
		}
		s := scanner(root, devA)
		prev, _ := mustScan(b, s, Local{})
		b.Run(fmt.Sprintf("rescan-%dk-files", n/1000), func(b *testing.B) {
			cpu := cpuTime()
			for b.Loop() {
				// Update, as a folder rescans its own Local in place.
				st, err := s.Update(b.Context(), &prev)
				if err != nil || st.Hashed != 0 || st.Reused != n {
					b.Fatalf("rescan hashed %d, reused %d of %d: %v", st.Hashed, st.Reused, n, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "wall-ms/rescan")
			b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/rescan")
		})
		b.Run(fmt.Sprintf("watch-start-%dk-files", n/1000), func(b *testing.B) {
			w, err := NewWatcher(root, nil, DefaultAggregatorConfig, nil)
			if err != nil {
				b.Fatal(err)
			}
			w.DirsOnly = true
			w.addWatch = func(dirBackend, string) error { return nil }
			var heap uint64
			cpu := cpuTime()
			for b.Loop() {
				agg, _ := NewAggregator(DefaultAggregatorConfig)
				st := &watchState{w: w, fw: nopBackend{}, agg: agg, watched: map[string]bool{"": true}, listings: map[string]listing{}}
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				st.addTree("", time.Now())
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap = after.HeapAlloc - before.HeapAlloc
				if len(st.watched) != n/100+1 {
					b.Fatalf("%d directories watched; want %d", len(st.watched), n/100+1)
				}
				runtime.KeepAlive(st)
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "wall-ms/start")
			b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/start")
			b.ReportMetric(float64(heap)/(1<<20), "listing-MiB")
		})
	}
}
