package peer

import (
	"testing"
	"time"
)

func TestGapTracker(t *testing.T) {
	t0 := time.Unix(1000, 0)
	wait := 500 * time.Millisecond
	var g gapTracker
	g.observe(1, 1, t0)
	g.observe(1, 2, t0)
	if g.due(t0.Add(time.Hour), wait) {
		t.Fatal("due with no hole")
	}
	g.observe(1, 4, t0) // 3 missing
	if g.due(t0.Add(100*time.Millisecond), wait) {
		t.Fatal("due before the wait")
	}
	g.observe(1, 3, t0.Add(200*time.Millisecond)) // reordered, not lost
	if g.due(t0.Add(time.Second), wait) {
		t.Fatal("due after the hole filled")
	}
	g.observe(1, 7, t0.Add(time.Second))
	if !g.due(t0.Add(1600*time.Millisecond), wait) {
		t.Fatal("not due after a hole lasted the wait")
	}
	if g.due(t0.Add(1700*time.Millisecond), wait) {
		t.Fatal("due again right after a pull started")
	}
	g.filled(1, 7)
	if g.contig != 7 || !g.since.IsZero() {
		t.Fatalf("after filled(7): contig %d, since %v; want 7 and no hole", g.contig, g.since)
	}
	// A new epoch starts over; joining mid-epoch is a hole until a pull.
	g.observe(2, 5, t0.Add(2*time.Second))
	if g.epoch != 2 || g.contig != 0 || g.since.IsZero() {
		t.Fatalf("new epoch: epoch %d contig %d since %v", g.epoch, g.contig, g.since)
	}
	g.observe(1, 8, t0.Add(2*time.Second)) // an old epoch changes nothing
	if g.epoch != 2 || g.max != 5 {
		t.Fatalf("old epoch changed the tracker: %+v", g)
	}
}
