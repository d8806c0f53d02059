package peer

import (
	"log/slog"
	"maps"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections/collectionstest"
)

// An agent's anti-entropy pulls that spaced out come back to every
// SyncInterval when it follows a new master or refuses a feed (what it
// was sent may not all have been taken); the heartbeats of the master it
// follows leave them spaced out.
func TestSyncSoon(t *testing.T) {
	dom := collectionstest.NewTestDomain(t, 2)
	m1, m2 := collectionstest.ID(dom.Spec.Servers[0]), collectionstest.ID(dom.Spec.Servers[1])
	spaced := map[lpeer.ID]time.Duration{m1: 8 * time.Second, m2: 24 * time.Second}
	d := &driver{
		log:       slog.New(slog.DiscardHandler),
		cfg:       Config{Now: time.Now},
		self:      collectionstest.ID("agent"),
		state:     dom.State(t),
		syncEvery: maps.Clone(spaced),
	}
	beat := func(from lpeer.ID, epoch uint64) {
		d.onHeartbeat(t.Context(), &pubsub.Message{ValidatorData: heartbeat{From: from.String(), Master: true, Epoch: epoch, Generation: 1}})
	}
	check := func(what string, want map[lpeer.ID]time.Duration) {
		t.Helper()
		if !maps.Equal(d.syncEvery, want) {
			t.Errorf("%s: pull spacing %v; want %v", what, d.syncEvery, want)
		}
	}

	beat(m1, 1)
	check("the first master followed", map[lpeer.ID]time.Duration{})
	d.syncEvery = maps.Clone(spaced)
	beat(m1, 1)
	beat(m1, 2)
	check("heartbeats of the master followed", spaced)
	beat(m2, 3)
	check("a new master followed", map[lpeer.ID]time.Duration{})

	d.syncEvery = maps.Clone(spaced)
	d.onFeed(m2, nil)
	check("a feed from the master followed", spaced)
	d.onFeed(m1, nil)
	check("a feed refused (not the master followed)", map[lpeer.ID]time.Duration{})
	if d.counters.GossipRefused != 0 {
		t.Errorf("GossipRefused %d after empty feeds; want 0", d.counters.GossipRefused)
	}
}
