package peer

import (
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// allowList is a connection gater that admits the hosts the Domain knows
// and the valid devices of the Catalog (members). The remote ID is
// authenticated only after the security handshake, so the decision happens
// in InterceptSecured (and for our own dials, before them).
//
// A server also admits unknown hosts as guests, so that an agent that is
// not a device yet can log in: only on inbound connections to one of its
// public listen addresses, never on private ones, never a revoked device,
// at most maxGuests at once and maxGuestsPerSource from one source
// address (guestSlots), so that one host with many fresh keys cannot take
// every slot. A guest may open only the login protocol
// (handlers check membership), is outside pubsub (its peer filter asks
// allowed), and its connection is closed after the guest timeout unless
// it became a member's.
type allowList struct {
	mu      sync.RWMutex
	ids     map[lpeer.ID]bool
	revoked map[lpeer.ID]bool
	public  []endpoint // local endpoints that admit guests; none on agents
	guests  *guestSlots[network.Conn]
	timeout time.Duration
	now     func() time.Time
	// refuseDial refuses dials as a network that does not carry them
	// would (tests only; nil otherwise).
	refuseDial func(lpeer.ID, ma.Multiaddr) bool
}

func newAllowList() *allowList {
	return &allowList{ids: map[lpeer.ID]bool{}, guests: newGuestSlots[network.Conn](maxGuests, maxGuestsPerSource), now: time.Now}
}

// admitGuests makes the gater admit guests on the public endpoints, for
// timeout each.
func (a *allowList) admitGuests(public []endpoint, timeout time.Duration, now func() time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.public, a.timeout, a.now = public, timeout, now
}

// set replaces the allowed IDs, and the revoked devices that may not even
// be guests.
func (a *allowList) set(ids []lpeer.ID, revoked []lpeer.ID) {
	m := make(map[lpeer.ID]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	r := make(map[lpeer.ID]bool, len(revoked))
	for _, id := range revoked {
		r[id] = true
	}
	a.mu.Lock()
	a.ids, a.revoked = m, r
	a.mu.Unlock()
}

func (a *allowList) allowed(id lpeer.ID) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.ids[id]
}

// mayBeGuest reports whether an unknown host p may connect as a guest to
// the local address local from the remote address remote.
func (a *allowList) mayBeGuest(p lpeer.ID, local, remote ma.Multiaddr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mayBeGuestLocked(p, local, remote)
}

// mayBeGuestLocked needs a.mu held for writing: it first frees the slots
// of guest connections that closed (a guest that logs in again reconnects
// at once).
func (a *allowList) mayBeGuestLocked(p lpeer.ID, local, remote ma.Multiaddr) bool {
	if len(a.public) == 0 || a.revoked[p] {
		return false
	}
	var closed []network.Conn
	a.guests.each(func(c network.Conn) {
		if c.IsClosed() {
			closed = append(closed, c)
		}
	})
	for _, c := range closed {
		a.guests.release(c)
	}
	if src, ok := sourceOf(remote); !ok || !a.guests.free(src) {
		return false
	}
	ep, ok := endpointOf(local)
	if !ok {
		return false
	}
	for _, pub := range a.public {
		if pub.matches(ep) {
			return true
		}
	}
	return false
}

// isGuest reports whether p is connected as a guest.
func (a *allowList) isGuest(p lpeer.ID) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	found := false
	a.guests.each(func(c network.Conn) {
		if c.RemotePeer() == p && !c.IsClosed() {
			found = true
		}
	})
	return found
}

// expireGuests forgets the guest connections that closed or became a
// member's, and returns those whose time is up, for the caller to close.
func (a *allowList) expireGuests() []network.Conn {
	a.mu.Lock()
	defer a.mu.Unlock()
	var gone []network.Conn
	a.guests.each(func(c network.Conn) {
		if c.IsClosed() || a.ids[c.RemotePeer()] {
			gone = append(gone, c)
		}
	})
	for _, c := range gone {
		a.guests.release(c)
	}
	return a.guests.expire(a.now())
}

func (a *allowList) InterceptPeerDial(p lpeer.ID) bool { return a.allowed(p) }
func (a *allowList) InterceptAddrDial(p lpeer.ID, addr ma.Multiaddr) bool {
	if a.refuseDial != nil && a.refuseDial(p, addr) {
		return false
	}
	return a.allowed(p)
}
func (a *allowList) InterceptAccept(network.ConnMultiaddrs) bool { return true }
func (a *allowList) InterceptSecured(dir network.Direction, p lpeer.ID, cm network.ConnMultiaddrs) bool {
	if a.allowed(p) {
		return true
	}
	return dir == network.DirInbound && a.mayBeGuest(p, cm.LocalMultiaddr(), cm.RemoteMultiaddr())
}

// InterceptUpgraded registers guest connections, which InterceptSecured
// admitted, so that expireGuests closes them in time.
func (a *allowList) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	p := c.RemotePeer()
	if a.allowed(p) {
		return true, 0
	}
	if c.Stat().Direction != network.DirInbound {
		return false, 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.mayBeGuestLocked(p, c.LocalMultiaddr(), c.RemoteMultiaddr()) {
		return false, 0
	}
	src, _ := sourceOf(c.RemoteMultiaddr())
	return a.guests.admit(c, src, a.now().Add(a.timeout)), 0
}

// endpoint is where a listener accepts: transport, port and IP ("" for any
// IP, a listener on an unspecified address).
type endpoint struct {
	proto int // ma.P_TCP or ma.P_UDP
	port  string
	ip    string
}

// endpointOf reads the IP, transport and port of an IP multiaddr.
func endpointOf(a ma.Multiaddr) (endpoint, bool) {
	var ep endpoint
	for _, c := range a {
		switch c.Code() {
		case ma.P_IP4, ma.P_IP6:
			if ep.ip == "" {
				ep.ip = c.Value()
			}
		case ma.P_TCP, ma.P_UDP:
			if ep.proto == 0 {
				ep.proto, ep.port = c.Code(), c.Value()
			}
		}
	}
	return ep, ep.proto != 0 && ep.ip != ""
}

// matches reports whether a connection's local endpoint l is on the
// listener e.
func (e endpoint) matches(l endpoint) bool {
	if e.proto != l.proto || e.port != l.port {
		return false
	}
	if e.ip == "" {
		return true
	}
	a, b := net.ParseIP(e.ip), net.ParseIP(l.ip)
	return a != nil && b != nil && a.Equal(b)
}

// listenEndpoint is a listen multiaddr as an endpoint: an unspecified IP
// matches any.
func listenEndpoint(a ma.Multiaddr) (endpoint, bool) {
	ep, ok := endpointOf(a)
	if !ok {
		return endpoint{}, false
	}
	if ip := net.ParseIP(ep.ip); ip != nil && ip.IsUnspecified() {
		ep.ip = ""
	}
	return ep, true
}
