package peer

import "time"

// gapTracker follows the master's sequence numbers within the current
// epoch. Gossip is lossy and reorders, so a hole is only worth a pull once
// it has lasted a while: most holes fill within milliseconds.
type gapTracker struct {
	epoch  uint64
	contig uint64          // every sequence number up to contig was seen
	max    uint64          // the highest seen
	above  map[uint64]bool // seen above contig
	since  time.Time       // when the current hole was first noticed; zero if none
}

// observe records seq of epoch.
func (g *gapTracker) observe(epoch, seq uint64, now time.Time) {
	if epoch < g.epoch {
		return
	}
	if epoch > g.epoch {
		*g = gapTracker{epoch: epoch}
	}
	if seq <= g.contig {
		return
	}
	if g.above == nil {
		g.above = map[uint64]bool{}
	}
	g.above[seq] = true
	g.max = max(g.max, seq)
	for g.above[g.contig+1] {
		delete(g.above, g.contig+1)
		g.contig++
	}
	switch {
	case g.contig == g.max:
		g.since = time.Time{}
	case g.since.IsZero():
		g.since = now
	}
}

// due reports whether a hole has lasted wait; it then restarts the wait, so
// a pull that does not fill the hole is retried later, not at once.
func (g *gapTracker) due(now time.Time, wait time.Duration) bool {
	if g.since.IsZero() || now.Sub(g.since) < wait {
		return false
	}
	g.since = now
	return true
}

// filled records that a pull from the master, started when the highest
// sequence number seen was upTo, brought everything up to it.
func (g *gapTracker) filled(epoch, upTo uint64) {
	if epoch != g.epoch || upTo <= g.contig {
		return
	}
	g.contig = upTo
	for s := range g.above {
		if s <= upTo {
			delete(g.above, s)
		}
	}
	for g.above[g.contig+1] {
		delete(g.above, g.contig+1)
		g.contig++
	}
	if g.contig >= g.max {
		g.since = time.Time{}
	}
}
