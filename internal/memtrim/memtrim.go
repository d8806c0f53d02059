package memtrim

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Defaults of a Trimmer.
const (
	// DefaultEvery is how often a Trimmer looks.
	DefaultEvery = 10 * time.Second
	// MinFree is the least free heap memory worth returning: returning
	// it costs a collection.
	MinFree = 16 << 20
	// Quiet is the most a process at rest allocates between two looks
	// (its timers, heartbeats and connections' upkeep).
	Quiet = 8 << 20
)

// Sample is what a Trimmer reads at a look.
type Sample struct {
	Allocs uint64 // bytes allocated on the heap since the process started
	Free   uint64 // bytes of the heap free and not returned to the system
}

// Due reports whether the memory of cur is to be returned: the process
// allocated less than Quiet bytes since prev and holds at least MinFree
// free bytes. It is pure.
func Due(prev, cur Sample) bool {
	return cur.Allocs-prev.Allocs < Quiet && cur.Free >= MinFree
}

// Trimmer returns a process's free heap memory to the system when the
// process is at rest. Its zero value is not usable: make one with New.
type Trimmer struct {
	// Every is how often it looks (DefaultEvery if zero).
	Every time.Duration

	log     *slog.Logger
	read    func() Sample
	free    func()
	release func() int64 // lets go of the executable's pages
}

// New returns a Trimmer of this process that logs what it returns to log
// (nil: nowhere).
func New(log *slog.Logger) *Trimmer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Trimmer{log: log, read: read, free: debug.FreeOSMemory, release: ReleaseExecutable}
}

// Run looks at the process's memory every t.Every and returns its free
// heap memory to the system when Due says so, until ctx ends. It returns
// nil then.
func (t *Trimmer) Run(ctx context.Context) error {
	every := t.Every
	if every <= 0 {
		every = DefaultEvery
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	prev := t.read()
	for first := true; ; first = false {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if first {
			// What only starting needed goes.
			t.log.Debug("executable's pages let go of", "bytes", t.release())
		}
		cur := t.read()
		if Due(prev, cur) {
			t.free()
			t.log.Debug("free heap memory returned to the system", "bytes", cur.Free, "executable", t.release())
			cur = t.read()
		}
		prev = cur
	}
}

// The runtime metrics a Sample is made of.
const (
	allocsMetric = "/gc/heap/allocs:bytes"
	freeMetric   = "/memory/classes/heap/free:bytes"
)

// read returns this process's Sample.
func read() Sample {
	s := []metrics.Sample{{Name: allocsMetric}, {Name: freeMetric}}
	metrics.Read(s)
	var out Sample
	if s[0].Value.Kind() == metrics.KindUint64 {
		out.Allocs = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		out.Free = s[1].Value.Uint64()
	}
	return out
}
