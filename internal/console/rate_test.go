package console

import (
	"sync"
	"testing"
	"time"
)

func TestTransferRate(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type read struct {
		at    float64 // seconds after t0
		bytes int64
	}
	for _, tc := range []struct {
		name  string
		reads []read
		now   float64
		want  float64
	}{
		{"one read", []read{{0, 100}}, 0, 0},
		{"steady", []read{{0, 0}, {1, 1000}, {2, 2000}}, 2, 1000},
		{"the last window only", []read{{0, 0}, {20, 0}, {25, 5000}, {30, 10000}}, 30, 1000},
		{"stopped: falls to zero", []read{{0, 0}, {5, 5000}, {10, 5000}, {16, 5000}}, 16, 0},
		{"stopped, not the whole window yet", []read{{0, 0}, {5, 10000}, {10, 10000}}, 10, 1000},
		{"no read lately", []read{{0, 0}, {1, 1000}}, 30, 0},
		{"reads too far apart", []read{{0, 0}, {100, 100000}}, 100, 0},
		{"the counter went back (restart)", []read{{0, 5000}, {1, 6000}, {2, 100}, {3, 600}}, 3, 500},
	} {
		var s []rateSample
		for _, r := range tc.reads {
			s = addSample(s, rateSample{at: at(r.at), bytes: r.bytes}, RateWindow)
		}
		if got := transferRate(s, at(tc.now), RateWindow); got != tc.want {
			t.Errorf("%s: transferRate = %v; want %v (samples %v)", tc.name, got, tc.want, s)
		}
		if len(s) > maxRateSamples {
			t.Errorf("%s: %d samples kept", tc.name, len(s))
		}
	}
}

// TestRateOnPages: the folder's bytes fetched, read twice, give its rate
// on the page and in the event stream.
func TestRateOnPages(t *testing.T) {
	src := newFakeServer()
	var (
		mu  sync.Mutex
		now = time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	mon := NewMonitor(clock)
	api := fakeAPI(src)
	c, err := New(Config{API: api, Source: src, Monitor: mon, Token: testToken, Now: clock, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, c)
	page(t, base, "/") // the first read
	src.set(func(f *fakeSource) {
		st := f.fstatus["F1"]
		st.Fetched += 4 << 20
		f.fstatus["F1"] = st
	})
	advance(2 * time.Second)
	contains(t, "the page 2 s and 4 MiB later", page(t, base, "/"), `<td data-field="rate">2.0 MiB/s</td>`)
	advance(time.Second)
	contains(t, "the folder page 1 s later, nothing more fetched", page(t, base, "/folder/F1"), `<span data-field="rate">1.3 MiB/s</span>`)
}
