package peer

import "github.com/baton-sync/baton/collections"

// SetDropGossip makes n drop every validated gossiped update for which drop
// returns true, before its driver sees it, as if the network had lost it.
// Call it before Run; drop runs on n's goroutine and must be safe for that.
func SetDropGossip(n *Node, drop func(collections.Certified) bool) { n.hooks.dropGossip = drop }
