package peer

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// allowList is a connection gater that admits only hosts the Domain knows.
// The remote ID is authenticated only after the security handshake, so the
// decision happens in InterceptSecured (and for our own dials, before them).
type allowList struct {
	mu  sync.RWMutex
	ids map[lpeer.ID]bool
}

func newAllowList() *allowList { return &allowList{ids: map[lpeer.ID]bool{}} }

// set replaces the allowed IDs.
func (a *allowList) set(ids []lpeer.ID) {
	m := make(map[lpeer.ID]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	a.mu.Lock()
	a.ids = m
	a.mu.Unlock()
}

func (a *allowList) allowed(id lpeer.ID) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.ids[id]
}

func (a *allowList) InterceptPeerDial(p lpeer.ID) bool                 { return a.allowed(p) }
func (a *allowList) InterceptAddrDial(p lpeer.ID, _ ma.Multiaddr) bool { return a.allowed(p) }
func (a *allowList) InterceptAccept(network.ConnMultiaddrs) bool       { return true }
func (a *allowList) InterceptSecured(_ network.Direction, p lpeer.ID, _ network.ConnMultiaddrs) bool {
	return a.allowed(p)
}
func (a *allowList) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}
