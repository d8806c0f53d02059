package foldersync

import (
	"sync"
	"testing"

	"github.com/baton-sync/baton/collections"
)

// An engine's Activity says when it last sent or received a block: unset
// until a file's blocks move, then set on the device that sent them, the
// server that took and served them, and the device that fetched them.
func TestActivityMarksBlocks(t *testing.T) {
	var mu sync.Mutex
	acts := map[string]*Activity{}
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, func(c *Config) {
		a := new(Activity)
		mu.Lock()
		acts[c.Key.ID().String()] = a
		mu.Unlock()
		c.Activity = a
	})
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	last := func(d *testNode) *Activity {
		mu.Lock()
		defer mu.Unlock()
		return acts[d.key.ID().String()]
	}
	n.waitEqual(alice, server, bob)
	for _, d := range []*testNode{alice, server, bob} {
		if at := last(d).Last(); !at.IsZero() {
			t.Errorf("%s: a block moved at %v before any file was written", d.name, at)
		}
	}
	alice.write(t, "report.txt", "the figures of the quarter")
	n.waitEqual(alice, server, bob)
	for _, d := range []*testNode{alice, server, bob} {
		if last(d).Last().IsZero() {
			t.Errorf("%s: no block moved, though report.txt went from alice through the server to bob", d.name)
		}
	}
}
