package memtrim

import (
	"context"
	"runtime/debug"
	"sync"
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	for _, c := range []struct {
		name      string
		prev, cur Sample
		want      bool
	}{
		{"at rest, much free", Sample{Allocs: 100 << 20}, Sample{Allocs: 101 << 20, Free: 64 << 20}, true},
		{"at rest, little free", Sample{Allocs: 100 << 20}, Sample{Allocs: 101 << 20, Free: 4 << 20}, false},
		{"busy, much free", Sample{Allocs: 100 << 20}, Sample{Allocs: 200 << 20, Free: 64 << 20}, false},
		{"just under quiet", Sample{}, Sample{Allocs: Quiet - 1, Free: MinFree}, true},
		{"just quiet enough not", Sample{}, Sample{Allocs: Quiet, Free: MinFree}, false},
	} {
		if got := Due(c.prev, c.cur); got != c.want {
			t.Errorf("%s: Due(%+v, %+v) = %v; want %v", c.name, c.prev, c.cur, got, c.want)
		}
	}
}

// Run trims once the process is quiet with free memory, not while it is
// busy, and once trimmed not again until memory is free again.
func TestRunTrimsAtRest(t *testing.T) {
	var (
		mu    sync.Mutex
		s     = Sample{Free: 64 << 20}
		busy  = true
		trims int
		looks int
	)
	tr := New(nil)
	tr.Every = time.Millisecond
	tr.read = func() Sample {
		mu.Lock()
		defer mu.Unlock()
		looks++
		if busy {
			s.Allocs += 100 << 20 // a burst of work between any two looks
		}
		return s
	}
	tr.free = func() {
		mu.Lock()
		defer mu.Unlock()
		trims++
		s.Free = 0
	}
	releases := 0
	tr.release = func() int64 {
		mu.Lock()
		defer mu.Unlock()
		releases++
		return 1
	}
	lookedAtLeast := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			mu.Lock()
			l := looks
			mu.Unlock()
			if l >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Run looked %d times; want %d", l, n)
			}
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	lookedAtLeast(20)
	mu.Lock()
	if trims != 0 {
		t.Errorf("trimmed %d times while busy", trims)
	}
	// The executable's pages go at the first look, and then with the
	// heap's memory only.
	if releases != 1 {
		t.Errorf("let go of the executable's pages %d times while busy; want once, at the first look", releases)
	}
	busy = false
	at := looks
	mu.Unlock()
	lookedAtLeast(at + 20)
	mu.Lock()
	if trims != 1 || releases != 2 {
		t.Errorf("trimmed %d times at rest, letting go of the executable's pages %d times in all; want once and twice", trims, releases)
	}
	mu.Unlock()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// A real process's sample reads.
func TestRead(t *testing.T) {
	a := read()
	_ = make([]byte, 1<<20)
	b := read()
	if b.Allocs == 0 || b.Allocs < a.Allocs {
		t.Errorf("allocs %d then %d; want a growing count", a.Allocs, b.Allocs)
	}
}

func TestSetGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if got := SetGC(getenv); got != GCPercent {
		t.Errorf("SetGC without GOGC = %d; want %d", got, GCPercent)
	}
	if got := debug.SetGCPercent(100); got != GCPercent {
		t.Errorf("the collector's target is %d; want %d", got, GCPercent)
	}
	env["GOGC"] = "200"
	if got := SetGC(getenv); got != 200 {
		t.Errorf("SetGC with GOGC=200 = %d; want 200", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("SetGC with GOGC set changed the collector's target to %d", got)
	}
}
