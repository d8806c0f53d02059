package syncfs

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Op is the kind of a filesystem event. Events are only hints: the
// aggregator turns them into paths to rescan, and the scanner decides what
// changed.
type Op uint8

// Event kinds, as fsnotify reports them.
const (
	OpCreate Op = 1 << iota
	OpWrite
	OpRemove
	OpRename
	OpChmod
)

// AggregatorConfig sets how events are batched.
type AggregatorConfig struct {
	// Quiet is how long a path must see no event before it is rescanned.
	Quiet time.Duration
	// MaxDelay bounds how long a path that keeps changing waits.
	MaxDelay time.Duration
	// MaxPerDir is how many pending entries of one directory are tracked
	// before the directory is rescanned instead.
	MaxPerDir int
	// MaxPaths is how many pending paths are tracked before the whole
	// folder is rescanned instead.
	MaxPaths int
}

// DefaultAggregatorConfig: 100 ms of quiet, at most 1 s of delay, directory
// and folder limits as Syncthing's aggregator (128 and 512). The short quiet
// time keeps a new file's latency low; a large write still yields one batch
// because each write restarts the quiet time until MaxDelay.
var DefaultAggregatorConfig = AggregatorConfig{Quiet: 100 * time.Millisecond, MaxDelay: time.Second, MaxPerDir: 128, MaxPaths: 512}

// Validate checks that c is usable.
func (c AggregatorConfig) Validate() error {
	if c.Quiet <= 0 || c.MaxDelay < c.Quiet || c.MaxPerDir < 1 || c.MaxPaths < c.MaxPerDir {
		return fmt.Errorf("aggregator config %+v: need 0 < Quiet <= MaxDelay and 1 <= MaxPerDir <= MaxPaths", c)
	}
	return nil
}

type pending struct {
	first, last time.Time
}

// Aggregator debounces filesystem events into batches of paths to rescan.
// It is pure: the caller feeds it events and ticks with the time, and it
// never reads a clock or starts a goroutine. Paths are slash-separated and
// relative to the folder root; "" is the root itself, meaning "rescan
// everything". Rescanning a directory covers everything under it, so a
// pending directory absorbs events on its contents.
type Aggregator struct {
	c       AggregatorConfig
	pending map[string]pending
}

// NewAggregator returns an Aggregator for c, which must be valid.
func NewAggregator(c AggregatorConfig) (*Aggregator, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Aggregator{c: c, pending: map[string]pending{}}, nil
}

// Event records an event on name at now.
func (a *Aggregator) Event(name string, _ Op, now time.Time) {
	// A pending ancestor (or the root) already covers name.
	for p := name; ; p = parentDir(p) {
		if pd, ok := a.pending[p]; ok {
			pd.last = later(pd.last, now)
			a.pending[p] = pd
			return
		}
		if p == "" {
			break
		}
	}
	a.add(name, pending{first: now, last: now})
}

// Overflow records that events were lost at now (the kernel queue
// overflowed, or a watch could not be added): everything is rescanned.
func (a *Aggregator) Overflow(now time.Time) {
	a.add("", pending{first: now, last: now})
}

// add makes name pending, absorbing pending entries under it, and collapses
// to the parent directory or to the root when the limits are passed.
func (a *Aggregator) add(name string, pd pending) {
	for {
		pd = a.absorb(name, pd)
		a.pending[name] = pd
		if name == "" {
			return
		}
		if len(a.pending) > a.c.MaxPaths {
			name = ""
			continue
		}
		parent := parentDir(name)
		siblings := 0
		for p := range a.pending {
			if p != "" && parentDir(p) == parent {
				siblings++
			}
		}
		if siblings <= a.c.MaxPerDir {
			return
		}
		name = parent
	}
}

// absorb removes the pending entries under name, returning pd widened to
// cover their times.
func (a *Aggregator) absorb(name string, pd pending) pending {
	prefix := name + "/"
	for p, q := range a.pending {
		if p == name || name == "" || strings.HasPrefix(p, prefix) {
			if pd.first.IsZero() || q.first.Before(pd.first) {
				pd.first = q.first
			}
			pd.last = later(pd.last, q.last)
			delete(a.pending, p)
		}
	}
	return pd
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (a *Aggregator) due(pd pending) time.Time {
	q, m := pd.last.Add(a.c.Quiet), pd.first.Add(a.c.MaxDelay)
	if m.Before(q) {
		return m
	}
	return q
}

// Tick returns, sorted, the paths due for a rescan at now (quiet for Quiet,
// or pending for MaxDelay) and forgets them. A result holding "" means
// rescan the whole folder.
func (a *Aggregator) Tick(now time.Time) []string {
	var out []string
	for p, pd := range a.pending {
		if !now.Before(a.due(pd)) {
			out = append(out, p)
			delete(a.pending, p)
		}
	}
	slices.Sort(out)
	return out
}

// Next returns when the next path falls due, for the caller's timer, and
// false if nothing is pending.
func (a *Aggregator) Next() (time.Time, bool) {
	var next time.Time
	for _, pd := range a.pending {
		if d := a.due(pd); next.IsZero() || d.Before(next) {
			next = d
		}
	}
	return next, !next.IsZero()
}

// Pending returns how many paths are pending.
func (a *Aggregator) Pending() int { return len(a.pending) }
