package foldersync

import (
	"sync/atomic"
	"time"
)

// Activity records when an engine last sent or received a block of any
// folder (Config.Activity), by the system's clock (not Config.Now: it
// times real transfers). Work that can wait, such as a server's history,
// waits for transfers to be quiet with it. Safe for concurrent use; the
// zero value is ready (no block moved yet).
type Activity struct{ last atomic.Int64 }

// moved records that a block moved at t.
func (a *Activity) moved(t time.Time) {
	if a != nil {
		a.last.Store(t.UnixNano())
	}
}

// Last returns when a block last moved (zero if none did).
func (a *Activity) Last() time.Time {
	n := a.last.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
