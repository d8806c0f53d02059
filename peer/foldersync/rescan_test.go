package foldersync

import (
	"fmt"
	"testing"
	"time"

	"github.com/baton-sync/baton/syncfs"
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

// A folder that was nearly empty at its last full scan and holds many
// entries now is not rescanned at the next interval on the old scan's cost.
func TestRescanCostGrowsWithEntries(t *testing.T) {
	f := &folder{fullScanCost: time.Millisecond, local: syncfs.NewLocal()}
	for i := range 100000 {
		f.local.Set(syncfs.FileInfo{Name: fmt.Sprint(i)})
	}
	if got := f.rescanCost(); got < 50*time.Second {
		t.Errorf("rescanCost of 100,000 entries after a full scan of none that took 1 ms = %v; want about 100 s", got)
	}
	if rescanDue(time.Minute, f.rescanCost(), true) {
		t.Errorf("a rescan of 100,000 new entries is due a minute after the scan of an empty folder")
	}
	f.fullScanEntries = 100000
	if got := f.rescanCost(); got != time.Millisecond {
		t.Errorf("rescanCost with as many entries as scanned = %v; want the scan's 1 ms", got)
	}
}
