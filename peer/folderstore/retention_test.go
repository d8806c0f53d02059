package folderstore_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/baton-sync/baton/peer/folderstore"
)

func TestPolicyText(t *testing.T) {
	if got, want := folderstore.DefaultPolicy.String(), "all:1d,daily:30d,weekly:365d"; got != want {
		t.Fatalf("DefaultPolicy.String() = %q; want %q", got, want)
	}
	for _, tc := range []struct {
		in, canonical string
		want          []folderstore.Tier
	}{
		{"all:24h,daily:30d,weekly:52w", "all:1d,daily:30d,weekly:52w", []folderstore.Tier{{0, 24 * time.Hour}, {24 * time.Hour, 30 * 24 * time.Hour}, {7 * 24 * time.Hour, 52 * 7 * 24 * time.Hour}}},
		{"all:forever", "all:forever", []folderstore.Tier{{0, folderstore.Forever}}},
		{" all:12h, 6h:3d ", "all:12h,6h:3d", []folderstore.Tier{{0, 12 * time.Hour}, {6 * time.Hour, 72 * time.Hour}}},
		{"hourly:2d,2w:forever", "hourly:2d,2w:forever", []folderstore.Tier{{time.Hour, 48 * time.Hour}, {14 * 24 * time.Hour, folderstore.Forever}}},
	} {
		p, err := folderstore.ParsePolicy(tc.in)
		if err != nil {
			t.Fatalf("ParsePolicy(%q): %v", tc.in, err)
		}
		if diff := cmp.Diff(tc.want, p.Tiers); diff != "" {
			t.Fatalf("ParsePolicy(%q) (-want +got):\n%s", tc.in, diff)
		}
		if got := p.String(); got != tc.canonical {
			t.Fatalf("ParsePolicy(%q).String() = %q; want %q", tc.in, got, tc.canonical)
		}
		if back, err := folderstore.ParsePolicy(p.String()); err != nil || !slices.Equal(back.Tiers, p.Tiers) {
			t.Fatalf("ParsePolicy(%q) = %v, %v; want it back", p.String(), back, err)
		}
	}
	for _, bad := range []string{"", "all", "all:", "daily:0d", "all:30d,daily:1d", "all:1d,daily:1d", "yearly:1d", "all:1x", "all:-1d", "all:forever,daily:30d", "all:1.5d"} {
		if p, err := folderstore.ParsePolicy(bad); !errors.Is(err, folderstore.ErrBadPolicy) {
			t.Errorf("ParsePolicy(%q) = %v, %v; want ErrBadPolicy", bad, p, err)
		}
	}
}

// TestPlanDefault plans the default policy over a snapshot every hour for
// 400 days.
func TestPlanDefault(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 30, 0, 0, time.UTC)
	var points []folderstore.Point
	at := map[uint64]time.Time{}
	for i := range 400 * 24 {
		tm := now.Add(-time.Duration(i) * time.Hour)
		seq := uint64(400*24 - i)
		points = append(points, folderstore.Point{Seq: seq, Time: tm.UnixNano()})
		at[seq] = tm
	}
	drop := folderstore.Plan(folderstore.DefaultPolicy, now, points)
	if !slices.IsSorted(drop) {
		t.Fatalf("Plan's drops are not in order")
	}
	var kept []time.Time
	for _, p := range points {
		if !slices.Contains(drop, p.Seq) {
			kept = append(kept, at[p.Seq])
		}
	}
	slices.SortFunc(kept, func(a, b time.Time) int { return a.Compare(b) })
	var day, month, year int
	for _, k := range kept {
		switch age := now.Sub(k); {
		case age < 24*time.Hour:
			day++
		case age < 30*24*time.Hour:
			month++
			// The last of its UTC day (23:30), but in the day the first
			// tier ends in.
			if k.Hour() != 23 && age >= 48*time.Hour {
				t.Errorf("kept %v in the daily tier, not the last of its day", k)
			}
		case age < 365*24*time.Hour:
			year++
			// The last of its week (weeks start on Thursday, UTC), but in
			// the week the daily tier ends in.
			if (k.Weekday() != time.Wednesday || k.Hour() != 23) && age >= 37*24*time.Hour {
				t.Errorf("kept %v (%v) in the weekly tier, not the last of its week", k, k.Weekday())
			}
		default:
			t.Errorf("kept %v, older than a year", k)
		}
	}
	if day != 24 {
		t.Errorf("kept %d snapshots of the last day; want all 24", day)
	}
	if month < 28 || month > 30 {
		t.Errorf("kept %d snapshots of the last 30 days after the first; want one a day", month)
	}
	if year < 47 || year > 49 {
		t.Errorf("kept %d snapshots of the year after the first month; want one a week", year)
	}
}

func TestPlanKeepsLatest(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	p, err := folderstore.ParsePolicy("daily:2d")
	if err != nil {
		t.Fatal(err)
	}
	old := now.Add(-10 * 24 * time.Hour).UnixNano()
	points := []folderstore.Point{{Seq: 3, Time: old + 2}, {Seq: 1, Time: old}, {Seq: 2, Time: old + 1}}
	if got := folderstore.Plan(p, now, points); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("Plan of snapshots all older than the policy = %v; want all but the latest, [1 2]", got)
	}
	if got := folderstore.Plan(p, now, nil); got != nil {
		t.Fatalf("Plan of nothing = %v", got)
	}
	// Two in the same day inside the tier: the newer stays.
	points = []folderstore.Point{{Seq: 1, Time: now.Add(-30 * time.Hour).UnixNano()}, {Seq: 2, Time: now.Add(-29 * time.Hour).UnixNano()}, {Seq: 3, Time: now.UnixNano()}}
	if got := folderstore.Plan(p, now, points); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("Plan = %v; want [1]", got)
	}
}
