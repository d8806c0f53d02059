package peer

import (
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

func TestSourceOf(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"/ip4/203.0.113.7/tcp/4001", "203.0.113.7"},
		{"/ip6/2001:db8:1:2:3:4:5:6/udp/4001/quic-v1", "2001:db8:1:2::/64"},
		{"/ip6/2001:db8:1:2:ffff::1/tcp/1", "2001:db8:1:2::/64"},
		{"/ip6/::ffff:198.51.100.1/tcp/1", "198.51.100.1"},
		{"/dns4/example.com/tcp/1", ""},
	} {
		got, ok := sourceOf(ma.StringCast(tc.addr))
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("sourceOf(%s) = %q, %v; want %q", tc.addr, got, ok, tc.want)
		}
	}
}

func TestGuestSlots(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	g := newGuestSlots[int](6, 2)
	admit := func(k int, src string, at time.Duration) bool { return g.admit(k, src, t0.Add(at)) }
	// Two per source.
	if !admit(1, "a", time.Second) || !admit(2, "a", 2*time.Second) || admit(3, "a", time.Second) {
		t.Fatalf("source a: want 2 slots of %d", g.len())
	}
	// Six in total: b and c take two each, then d none.
	for k, src := range map[int]string{4: "b", 5: "b", 6: "c", 7: "c"} {
		if !admit(k, src, time.Second) {
			t.Fatalf("admit(%d, %s) refused with %d held", k, src, g.len())
		}
	}
	if admit(8, "d", time.Second) || g.free("e") {
		t.Fatalf("admitted beyond the total of 6 (held %d)", g.len())
	}
	// Releasing frees a slot for its source and the total.
	g.release(6)
	if !g.free("c") || !admit(8, "d", 3*time.Second) || g.free("e") {
		t.Fatalf("after release: slots not freed")
	}
	// Expiry frees the slots whose deadline passed.
	got := g.expire(t0.Add(time.Second))
	if len(got) != 4 || g.len() != 2 || !g.free("a") {
		t.Fatalf("expire(t0+1s) = %v, held %d; want 4 expired, 2 held", got, g.len())
	}
	if got := g.expire(t0.Add(3 * time.Second)); len(got) != 2 || g.len() != 0 {
		t.Fatalf("expire(t0+3s) = %v, held %d; want 2 expired, none held", got, g.len())
	}
}
