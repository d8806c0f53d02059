package peer

import (
	"net/netip"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// Guest slot limits.
const (
	maxGuests          = 64 // guest connections a server holds at once
	maxGuestsPerSource = 4  // of which from one source address
)

// sourceOf is the source address a remote multiaddr counts under for the
// login limits: its IPv4 address, or the /64 network of its IPv6 address
// (one host commonly holds a whole /64). ok is false for a multiaddr with
// no IP address.
func sourceOf(remote ma.Multiaddr) (source string, ok bool) {
	for _, c := range remote {
		switch c.Code() {
		case ma.P_IP4, ma.P_IP6:
			ip, err := netip.ParseAddr(c.Value())
			if err != nil {
				return "", false
			}
			ip = ip.Unmap()
			if ip.Is6() {
				p, _ := ip.Prefix(64)
				return p.String(), true
			}
			return ip.String(), true
		}
	}
	return "", false
}

// guestSlots decides which guests a server admits: at most total at once,
// and at most perSource from one source address, each slot held until its
// deadline or until released. It is pure: no goroutines, no clock (the
// caller passes the time), no locking (the caller serialises). K
// identifies a guest (a connection).
type guestSlots[K comparable] struct {
	total, perSource int
	held             map[K]guestSlot
	bySource         map[string]int
}

type guestSlot struct {
	source   string
	deadline time.Time
}

func newGuestSlots[K comparable](total, perSource int) *guestSlots[K] {
	return &guestSlots[K]{total: total, perSource: perSource, held: map[K]guestSlot{}, bySource: map[string]int{}}
}

// free reports whether a guest from source would be admitted now.
func (g *guestSlots[K]) free(source string) bool {
	return len(g.held) < g.total && g.bySource[source] < g.perSource
}

// admit gives k a slot for source until deadline, if one is free.
func (g *guestSlots[K]) admit(k K, source string, deadline time.Time) bool {
	if _, ok := g.held[k]; ok {
		return true
	}
	if !g.free(source) {
		return false
	}
	g.held[k] = guestSlot{source: source, deadline: deadline}
	g.bySource[source]++
	return true
}

// release frees k's slot, if it holds one.
func (g *guestSlots[K]) release(k K) {
	s, ok := g.held[k]
	if !ok {
		return
	}
	delete(g.held, k)
	if g.bySource[s.source]--; g.bySource[s.source] <= 0 {
		delete(g.bySource, s.source)
	}
}

// expire frees the slots whose deadline is not after now and returns
// their guests.
func (g *guestSlots[K]) expire(now time.Time) []K {
	var out []K
	for k, s := range g.held {
		if !now.Before(s.deadline) {
			out = append(out, k)
		}
	}
	for _, k := range out {
		g.release(k)
	}
	return out
}

// each calls fn for every guest holding a slot.
func (g *guestSlots[K]) each(fn func(K)) {
	for k := range g.held {
		fn(k)
	}
}

// len is the number of slots held.
func (g *guestSlots[K]) len() int { return len(g.held) }
