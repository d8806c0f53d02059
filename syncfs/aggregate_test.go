package syncfs_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/syncfs"
)

var t0 = time.Date(2025, 6, 7, 8, 0, 0, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

func TestAggregator(t *testing.T) {
	cfg := syncfs.AggregatorConfig{Quiet: 100 * time.Millisecond, MaxDelay: time.Second, MaxPerDir: 3, MaxPaths: 6}
	type ev struct {
		at   int // ms
		name string
		over bool
		tick bool
		want string // for ticks: the paths emitted, comma-separated
	}
	tests := []struct {
		name   string
		script []ev
	}{
		{"debounce one path", []ev{
			{at: 0, name: "a.txt"},
			{at: 50, tick: true, want: ""},
			{at: 60, name: "a.txt"},
			{at: 159, tick: true, want: ""},
			{at: 160, tick: true, want: "a.txt"},
			{at: 500, tick: true, want: ""},
		}},
		{"max delay bounds a busy path", []ev{
			{at: 0, name: "big.bin"}, {at: 90, name: "big.bin"}, {at: 180, name: "big.bin"},
			{at: 270, name: "big.bin"}, {at: 360, name: "big.bin"}, {at: 450, name: "big.bin"},
			{at: 540, name: "big.bin"}, {at: 630, name: "big.bin"}, {at: 720, name: "big.bin"},
			{at: 810, name: "big.bin"}, {at: 900, name: "big.bin"}, {at: 990, tick: true, want: ""},
			{at: 995, name: "big.bin"}, {at: 1000, tick: true, want: "big.bin"},
		}},
		{"paths due separately", []ev{
			{at: 0, name: "a"}, {at: 80, name: "b"},
			{at: 100, tick: true, want: "a"},
			{at: 180, tick: true, want: "b"},
		}},
		{"pending directory absorbs its contents", []ev{
			{at: 0, name: "d"}, {at: 50, name: "d/x"}, {at: 60, name: "d/y/z"},
			{at: 100, tick: true, want: ""},
			{at: 160, tick: true, want: "d"},
		}},
		{"new directory absorbs pending contents", []ev{
			{at: 0, name: "d/x"}, {at: 10, name: "d/y"}, {at: 20, name: "d"},
			{at: 120, tick: true, want: "d"},
		}},
		{"too many in one directory rescans the directory", []ev{
			{at: 0, name: "d/1"}, {at: 1, name: "d/2"}, {at: 2, name: "d/3"}, {at: 3, name: "e"}, {at: 4, name: "d/4"},
			{at: 103, tick: true, want: "e"},
			{at: 104, tick: true, want: "d"},
		}},
		{"too many paths rescans everything", []ev{
			{at: 0, name: "a/1"}, {at: 1, name: "b/1"}, {at: 2, name: "c/1"}, {at: 3, name: "d/1"},
			{at: 4, name: "e/1"}, {at: 5, name: "f/1"}, {at: 6, name: "g/1"},
			{at: 200, tick: true, want: "(all)"},
		}},
		{"overflow rescans everything", []ev{
			{at: 0, name: "a"}, {at: 10, over: true}, {at: 20, name: "b/c"},
			{at: 110, tick: true, want: ""},
			{at: 120, tick: true, want: "(all)"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := syncfs.NewAggregator(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range tt.script {
				switch {
				case e.over:
					a.Overflow(ms(e.at))
				case e.tick:
					got := a.Tick(ms(e.at))
					for j, p := range got {
						if p == "" {
							got[j] = "(all)"
						}
					}
					if s := strings.Join(got, ","); s != e.want {
						t.Fatalf("step %d: Tick(%d ms) = %q; want %q", i, e.at, s, e.want)
					}
				default:
					a.Event(e.name, syncfs.OpWrite, ms(e.at))
				}
			}
		})
	}
}

func TestAggregatorNext(t *testing.T) {
	a, _ := syncfs.NewAggregator(syncfs.DefaultAggregatorConfig)
	if _, ok := a.Next(); ok {
		t.Error("Next() on an empty aggregator = true")
	}
	a.Event("x", syncfs.OpCreate, ms(0))
	a.Event("y", syncfs.OpCreate, ms(30))
	if next, ok := a.Next(); !ok || !next.Equal(ms(100)) {
		t.Errorf("Next() = %v, %v; want 100 ms", next, ok)
	}
	a.Tick(ms(100))
	if next, ok := a.Next(); !ok || !next.Equal(ms(130)) {
		t.Errorf("Next() = %v, %v; want 130 ms", next, ok)
	}
}

// TestAggregatorLargeWrite models the measured case from the fsnotify notes:
// 800 writes to one file over 800 ms plus a mkdir -p give two one-path
// batches: the quiet directory early, the busy file once it goes quiet.
func TestAggregatorLargeWrite(t *testing.T) {
	a, _ := syncfs.NewAggregator(syncfs.DefaultAggregatorConfig)
	a.Event("new1", syncfs.OpCreate, ms(0))
	a.Event("new1/new2/new3/a.txt", syncfs.OpCreate, ms(1))
	var batches [][]string
	for i := range 800 {
		at := 2 + i
		a.Event("big.bin", syncfs.OpWrite, ms(at))
		if b := a.Tick(ms(at)); len(b) > 0 {
			batches = append(batches, b)
		}
	}
	for now := 802; a.Pending() > 0; now += 10 {
		if b := a.Tick(ms(now)); len(b) > 0 {
			batches = append(batches, b)
		}
	}
	if got := fmt.Sprint(batches); got != "[[new1] [big.bin]]" {
		t.Errorf("batches = %v; want [[new1] [big.bin]]", got)
	}
}

func TestAggregatorConfigValidate(t *testing.T) {
	for _, c := range []syncfs.AggregatorConfig{{}, {Quiet: time.Second, MaxDelay: time.Millisecond, MaxPerDir: 1, MaxPaths: 1}, {Quiet: 1, MaxDelay: 1, MaxPerDir: 5, MaxPaths: 4}} {
		if _, err := syncfs.NewAggregator(c); err == nil {
			t.Errorf("NewAggregator(%+v) = nil error", c)
		}
	}
}
