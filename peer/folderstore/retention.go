package folderstore

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// ErrBadPolicy is returned by ParsePolicy for a retention policy it cannot
// read, and by Policy.Validate for an inconsistent one.
var ErrBadPolicy = errors.New("invalid retention policy")

// Forever, as a tier's For, makes it reach back without limit.
const Forever time.Duration = 1<<63 - 1

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// Tier is one band of a retention policy: the snapshots younger than For
// (and not younger than the previous tier's For) keep one per Every, the
// newest of each period, or every one when Every is 0.
type Tier struct {
	Every time.Duration
	For   time.Duration
}

// Policy is a folder's retention: its tiers, For increasing. Snapshots
// older than the last tier's For are dropped; the latest snapshot is always
// kept.
//
// Its text form (ParsePolicy, String), for `baton folder set NAME --keep`,
// is the tiers separated by commas, each EVERY:FOR. EVERY is "all" (every
// snapshot), "hourly", "daily", "weekly" or a duration; FOR and a duration
// EVERY are a whole number with a unit h (hours), d (days) or w (weeks), and
// FOR may be "forever". Periods are counted from the Unix epoch in UTC:
// days start at midnight UTC, weeks on Thursday at midnight UTC.
//
//	all:1d,daily:30d,weekly:365d   the default: every snapshot for a day,
//	                               then the last of each day for 30 days,
//	                               then the last of each week for a year
//	all:forever                    every snapshot, for ever
//	all:12h,6h:7d                  every snapshot for 12 hours, then one in
//	                               each 6 hours for a week
type Policy struct {
	Tiers []Tier
}

// DefaultPolicy keeps every snapshot for 24 hours, then one a day for 30
// days, then one a week for a year.
var DefaultPolicy = Policy{Tiers: []Tier{{0, day}, {day, 30 * day}, {week, 365 * day}}}

// Validate checks that p has a tier, every For is positive and increasing,
// Every is not negative and only the last tier reaches Forever.
func (p Policy) Validate() error {
	if len(p.Tiers) == 0 {
		return fmt.Errorf("%w: no tier", ErrBadPolicy)
	}
	for i, t := range p.Tiers {
		if t.Every < 0 || t.For <= 0 {
			return fmt.Errorf("%w: tier %d: every %v for %v", ErrBadPolicy, i+1, t.Every, t.For)
		}
		if i > 0 && t.For <= p.Tiers[i-1].For {
			return fmt.Errorf("%w: tier %d reaches back %s, no further than the tier before it", ErrBadPolicy, i+1, formatSpan(t.For))
		}
	}
	return nil
}

// ParsePolicy reads a policy's text form (see Policy).
func ParsePolicy(s string) (Policy, error) {
	var p Policy
	s = strings.TrimSpace(s)
	if s == "" {
		return p, fmt.Errorf("%w: empty", ErrBadPolicy)
	}
	for _, part := range strings.Split(s, ",") {
		every, span, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return Policy{}, fmt.Errorf("%w: %q is not EVERY:FOR (such as daily:30d)", ErrBadPolicy, part)
		}
		var t Tier
		switch every {
		case "all":
		case "hourly":
			t.Every = time.Hour
		case "daily":
			t.Every = day
		case "weekly":
			t.Every = week
		default:
			d, err := parseSpan(every)
			if err != nil {
				return Policy{}, fmt.Errorf("%w: %q: %v", ErrBadPolicy, part, err)
			}
			t.Every = d
		}
		if span == "forever" {
			t.For = Forever
		} else {
			d, err := parseSpan(span)
			if err != nil {
				return Policy{}, fmt.Errorf("%w: %q: %v", ErrBadPolicy, part, err)
			}
			t.For = d
		}
		p.Tiers = append(p.Tiers, t)
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// parseSpan reads a whole positive number of hours, days or weeks: 12h,
// 30d, 52w.
func parseSpan(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("%q is not a span such as 12h, 30d or 52w", s)
	}
	unit := map[byte]time.Duration{'h': time.Hour, 'd': day, 'w': week}[s[len(s)-1]]
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 32)
	if unit == 0 || err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a span such as 12h, 30d or 52w", s)
	}
	return time.Duration(n) * unit, nil
}

func formatSpan(d time.Duration) string {
	switch {
	case d == Forever:
		return "forever"
	case d%week == 0:
		return fmt.Sprintf("%dw", d/week)
	case d%day == 0:
		return fmt.Sprintf("%dd", d/day)
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

// String returns p's text form, which ParsePolicy reads back.
func (p Policy) String() string {
	parts := make([]string, len(p.Tiers))
	for i, t := range p.Tiers {
		every := formatSpan(t.Every)
		switch t.Every {
		case 0:
			every = "all"
		case time.Hour:
			every = "hourly"
		case day:
			every = "daily"
		case week:
			every = "weekly"
		}
		parts[i] = every + ":" + formatSpan(t.For)
	}
	return strings.Join(parts, ",")
}

// Point is a snapshot as the retention planner sees it.
type Point struct {
	Seq  uint64
	Time int64 // Unix nanoseconds
}

// Plan returns the snapshots of points that p drops at now, in ascending
// order. It is pure. A snapshot is kept if it is the latest (highest Seq),
// or if it is in a tier (its age, now minus its time, is under the tier's
// For and not under the previous tier's) that keeps every snapshot, or if
// it is the newest snapshot of its tier's period (time divided by Every).
// A snapshot from the future counts as of age 0.
func Plan(p Policy, now time.Time, points []Point) []uint64 {
	if len(points) == 0 {
		return nil
	}
	pts := slices.Clone(points)
	slices.SortFunc(pts, func(a, b Point) int { return cmpUint(a.Seq, b.Seq) })
	type period struct {
		tier int
		n    int64
	}
	newest := map[period]uint64{}
	tierOf := make([]int, len(pts))
	nowNs := now.UnixNano()
	for i, pt := range pts {
		age := time.Duration(max(nowNs-pt.Time, 0))
		tierOf[i] = -1
		for j, t := range p.Tiers {
			if age < t.For || t.For == Forever {
				tierOf[i] = j
				break
			}
		}
		if tierOf[i] < 0 || p.Tiers[tierOf[i]].Every == 0 {
			continue
		}
		k := period{tierOf[i], floorDiv(pt.Time, int64(p.Tiers[tierOf[i]].Every))}
		newest[k] = max(newest[k], pt.Seq)
	}
	var drop []uint64
	for i, pt := range pts {
		if i == len(pts)-1 {
			break // the latest
		}
		switch j := tierOf[i]; {
		case j < 0:
			drop = append(drop, pt.Seq)
		case p.Tiers[j].Every == 0:
		case newest[period{j, floorDiv(pt.Time, int64(p.Tiers[j].Every))}] != pt.Seq:
			drop = append(drop, pt.Seq)
		}
	}
	return drop
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// PruneStats is what a Prune did.
type PruneStats struct {
	Dropped   []uint64 // the snapshots dropped
	Rewritten int      // kept snapshots re-rooted and re-signed
}

// Prune applies policy p at now to folder's snapshots: it drops those Plan
// names, merging each dropped snapshot's entries into the next kept one
// (an entry the kept one changes again is left out), so that every kept
// snapshot's tree is what it was; then it re-roots the kept snapshots
// after the first one dropped (their chain changed) and re-signs them with
// the server key. A merged snapshot keeps the dropped ones' evidence pages
// with its own when both have some, and loses its evidence otherwise.
// Blocks no kept snapshot references any more are left for GC.
//
// Every snapshot it moves or signs again is first checked against its root
// and signature (and the chain), so that a tampered one is refused
// (ErrTampered) rather than signed anew. It runs in one bbolt transaction:
// a crash leaves the folder as it was or pruned, whole. Its cost is reading and rehashing the snapshots from the
// first dropped one on, one at a time.
func (s *Store) Prune(folder string, p Policy, now time.Time) (PruneStats, error) {
	var st PruneStats
	if s.db == nil {
		return st, ErrClosed
	}
	defer s.settle()
	if err := p.Validate(); err != nil {
		return st, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.update(func(tx *bbolt.Tx) error {
		st = PruneStats{}
		fb, err := s.openFolder(tx, folder)
		if err != nil || fb == nil {
			return err
		}
		var points []Point
		err = fb.snaps.ForEach(func(k, v []byte) error {
			hdr, err := decodeHeader(folder, k, v)
			points = append(points, Point{hdr.Seq, hdr.Time})
			return err
		})
		if err != nil {
			return err
		}
		if err := s.step("prune-plan"); err != nil {
			return err
		}
		drop := Plan(p, now, points)
		if len(drop) == 0 {
			return nil
		}
		dropped := map[uint64]bool{}
		for _, d := range drop {
			dropped[d] = true
		}
		st.Dropped = drop
		return s.rewrite(fb, points, dropped, &st)
	})
	if err != nil {
		return PruneStats{}, fmt.Errorf("pruning %q: %w", folder, err)
	}
	return st, nil
}

// rewrite drops the snapshots dropped names and re-roots the ones after.
func (s *Store) rewrite(fb *folderTx, points []Point, dropped map[uint64]bool, st *PruneStats) error {
	first := slices.IndexFunc(points, func(pt Point) bool { return dropped[pt.Seq] })
	hdr0, err := fb.header(points[first].Seq)
	if err != nil {
		return err
	}
	prevRoot, origPrev := hdr0.Prev, hdr0.Prev
	pending := map[string]rawEntry{}
	var pendingEv [][]byte
	pendingEvOK := true
	for _, pt := range points[first:] {
		hdr, err := fb.header(pt.Seq)
		if err != nil {
			return err
		}
		// Checked before anything is moved or signed again, so that the
		// server's new signature never covers data altered on disk.
		if hdr.Prev != origPrev {
			return fmt.Errorf("snapshot %d does not chain to its predecessor: %w", hdr.Seq, ErrTampered)
		}
		origPrev = hdr.Root
		var entries []rawEntry
		if err := s.checkSnapshot(fb, hdr, func(e rawEntry) error {
			entries = append(entries, rawEntry{e.name, bytes.Clone(e.enc)})
			return nil
		}); err != nil {
			return err
		}
		if dropped[pt.Seq] {
			if err := s.step("prune-drop"); err != nil {
				return err
			}
			for _, e := range entries {
				pending[e.name] = e
				if err := fb.deleteEntry(hdr.Seq, e.name); err != nil {
					return err
				}
			}
			if len(entries) > 0 {
				pendingEv = append(pendingEv, hdr.Evidence...)
				pendingEvOK = pendingEvOK && len(hdr.Evidence) > 0
			}
			if err := fb.deleteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		merged := 0
		if hdr.Delta && len(pending) > 0 {
			if err := s.step("prune-merge"); err != nil {
				return err
			}
			own := map[string]bool{}
			for _, e := range entries {
				own[e.name] = true
			}
			for name, e := range pending {
				if own[name] {
					continue
				}
				if err := fb.putEntry(hdr.Seq, e); err != nil {
					return err
				}
				merged++
			}
			if merged > 0 {
				if pendingEvOK && len(hdr.Evidence) > 0 {
					hdr.Evidence = append(pendingEv, hdr.Evidence...)
				} else {
					hdr.Evidence = nil
				}
			}
			pending, pendingEv, pendingEvOK = map[string]rawEntry{}, nil, true
		}
		if merged == 0 && hdr.Prev == prevRoot {
			prevRoot = hdr.Root
			continue
		}
		if err := s.step("prune-seal"); err != nil {
			return err
		}
		hdr.Prev = prevRoot
		hdr.Count += uint64(merged)
		err = s.seal(&hdr, func(r *rooter) error {
			return fb.eachRaw(hdr.Seq, func(e rawEntry) error { r.addRaw(e); return nil })
		})
		if err != nil {
			return err
		}
		if err := fb.putHeader(hdr); err != nil {
			return err
		}
		st.Rewritten++
		prevRoot = hdr.Root
	}
	if len(pending) > 0 {
		return fmt.Errorf("%d entries of dropped snapshots have no later snapshot of Append to go to", len(pending))
	}
	return s.step("prune-tx")
}
