package peer

import (
	"math/rand/v2"
	"time"

	"github.com/baton-sync/baton/collections"
)

// SetDropGossip makes n drop every validated gossiped update for which drop
// returns true, before its driver sees it, as if the network had lost it.
// Call it before Run; drop runs on n's goroutine and must be safe for that.
func SetDropGossip(n *Node, drop func(collections.Certified) bool) { n.hooks.dropGossip = drop }

// SetReconnectBackoff makes n wait from base/2 up to max before each
// redial of a server it lost. Call it before Run.
func SetReconnectBackoff(n *Node, base, max time.Duration) {
	n.hooks.backoff = backoff{base: base, max: max, rnd: rand.New(rand.NewPCG(1, 2))}
}
