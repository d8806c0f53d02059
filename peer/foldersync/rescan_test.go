package foldersync

import (
	"testing"
	"time"
)

// The periodic full rescan of a folder whose scan is quick runs at every
// interval; that of a large folder waits until it costs at most 0.1% of
// the time (1% if unwatched).
func TestRescanDue(t *testing.T) {
	for _, tc := range []struct {
		since, cost time.Duration
		watched     bool
		want        bool
	}{
		{time.Minute, 5 * time.Millisecond, true, true},
		{time.Minute, 500 * time.Millisecond, true, false},
		{8 * time.Minute, 500 * time.Millisecond, true, false},
		{9 * time.Minute, 500 * time.Millisecond, true, true},
		{time.Minute, 500 * time.Millisecond, false, true},
		{time.Minute, time.Second, false, false},
		{2 * time.Minute, time.Second, false, true},
		{time.Minute, 0, true, true}, // never scanned in full
		{59 * time.Minute, 10 * time.Second, true, false},
		{time.Hour, 10 * time.Second, true, true}, // at most an hour apart
	} {
		if got := rescanDue(tc.since, tc.cost, tc.watched); got != tc.want {
			t.Errorf("rescanDue(%v, %v, watched %v) = %v; want %v", tc.since, tc.cost, tc.watched, got, tc.want)
		}
	}
}
