package peer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/baton-sync/baton/identity"
)

// Devices that cannot dial each other. Every server of the chain runs a
// circuit relay (v2) for the domain's own hosts and devices: relayACL
// refuses a reservation, and a relayed connection, to or from anyone else
// (guests included), and relayResources bounds what a relay gives. An
// agent keeps a reservation at each server of the chain it is connected
// to (reservationsDue, reserve), announces the relay addresses it reserved
// (Node.announce), and, to reach a fellow device it has no connection to,
// dials its known addresses and, after them, the circuit address of that
// device through each server it is connected to (circuitAddrs): the relay
// carries the connection if the fellow holds a reservation there.
//
// A relayed connection is limited: libp2p opens a stream over it only
// when the stream opts in (network.WithAllowLimitedConn). The folder
// transport opts in for indexes and notifications alone
// (foldersync.OverLimited) and refuses block requests over a limited
// connection in both directions: a device that is relayed to a fellow
// takes the fellow's index but fetches the blocks from the folder's
// servers, or from the fellow once a direct connection exists. The agent
// keeps trying a direct connection to a fellow it reaches only through a
// relay (dialDevices), and libp2p's hole punching (DCUtR, on agents with
// AutoNAT v2) turns a relayed connection into a direct one where the
// networks allow.

// relayRenewBefore is how long before a reservation expires the agent
// renews it.
const relayRenewBefore = 5 * time.Minute

// relayResources are the limits of a server's relay: a few reservations
// per device (one per agent in practice), and relayed connections that
// carry indexes and notifications, not bulk data.
func relayResources() relayv2.Resources {
	r := relayv2.DefaultResources()
	r.Limit = &relayv2.RelayLimit{Duration: 10 * time.Minute, Data: 16 << 20}
	r.MaxReservations = 1024
	r.MaxCircuits = 16
	r.MaxReservationsPerIP = 64
	r.MaxReservationsPerASN = 256
	return r
}

// relayACL admits to a server's relay only the hosts its gater admits as
// members: the Domain's hosts and the valid devices of the Catalog. Guests
// (agents still logging in) and strangers are refused.
type relayACL struct{ allow *allowList }

func (a relayACL) AllowReserve(p lpeer.ID, _ ma.Multiaddr) bool { return a.allow.allowed(p) }

func (a relayACL) AllowConnect(src lpeer.ID, _ ma.Multiaddr, dest lpeer.ID) bool {
	return a.allow.allowed(src) && a.allow.allowed(dest)
}

// startRelay runs the circuit relay service on a server's host h, for the
// members allow admits. Close the relay when the host stops.
func startRelay(h host.Host, allow *allowList) (*relayv2.Relay, error) {
	r, err := relayv2.New(h, relayv2.WithACL(relayACL{allow: allow}), relayv2.WithResources(relayResources()))
	if err != nil {
		return nil, fmt.Errorf("starting the circuit relay: %w", err)
	}
	return r, nil
}

// relayState is an agent's reservations at the servers' relays, owned by
// the driver goroutine.
type relayState struct {
	// expires is when each reservation held ends.
	expires map[lpeer.ID]time.Time
	// reserving are the servers a reservation is being asked of.
	reserving map[lpeer.ID]bool
	// failedAt is when the last reservation asked of each server failed.
	failedAt map[lpeer.ID]time.Time
}

// relayAddrs are the relay addresses an agent announces, for
// Node.announce (which runs on libp2p's goroutines).
type relayAddrs struct {
	p atomic.Pointer[[]ma.Multiaddr]
}

func (r *relayAddrs) load() []ma.Multiaddr {
	if p := r.p.Load(); p != nil {
		return *p
	}
	return nil
}

// reservationsDue lists the servers of chain, in its order, that an agent
// connected to them (connected) should ask for a reservation at now: those
// it holds none at, or one ending within relayRenewBefore, and is not
// asking already; a server that refused or failed is asked again after
// retry.
func reservationsDue(now time.Time, chain []lpeer.ID, connected func(lpeer.ID) bool, st relayState, retry time.Duration) []lpeer.ID {
	var out []lpeer.ID
	for _, s := range chain {
		if st.reserving[s] || !connected(s) {
			continue
		}
		if exp, ok := st.expires[s]; ok && exp.Sub(now) > relayRenewBefore {
			continue
		}
		if t, ok := st.failedAt[s]; ok && now.Sub(t) < retry {
			continue
		}
		out = append(out, s)
	}
	return out
}

// circuitAddrs are the addresses of a device through each of relays, the
// servers this host is connected to, as the peer store keeps them (the
// device's own /p2p part is the dial's).
func circuitAddrs(relays []lpeer.ID) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, r := range relays {
		a, err := ma.NewMultiaddr("/p2p/" + r.String() + "/p2p-circuit")
		if err == nil {
			out = append(out, a)
		}
	}
	return out
}

// reserveRelays asks the servers of the chain this agent is connected to
// for a reservation at their relay, or renews one about to end. Agents
// only.
func (d *driver) reserveRelays(ctx context.Context) {
	if d.cfg.Role != identity.RoleAgent || d.cfg.NoRelay || d.host == nil {
		return
	}
	net := d.host.Network()
	connected := func(s lpeer.ID) bool { return s != d.self && net.Connectedness(s) == network.Connected }
	// A relay forgets the reservation of a host that disconnects, and one
	// that ended is no more: neither is announced, and each is asked
	// again once the server is connected.
	now, gone := d.cfg.Now(), false
	for s, exp := range d.relay.expires {
		if !connected(s) || !exp.After(now) {
			delete(d.relay.expires, s)
			gone = true
		}
	}
	if gone {
		d.publishRelayAddrs()
	}
	due := reservationsDue(now, d.chain, connected, d.relay, 30*time.Second)
	for _, s := range due {
		d.relay.reserving[s] = true
		d.spawn(ctx, func(ctx context.Context, e *edge) task {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			res, err := client.Reserve(rctx, e.host, lpeer.AddrInfo{ID: s})
			return func(_ context.Context, d *driver) { d.onReserved(s, res, err) }
		})
	}
}

// onReserved records the outcome of a reservation asked of server s.
func (d *driver) onReserved(s lpeer.ID, res *client.Reservation, err error) {
	delete(d.relay.reserving, s)
	if err != nil {
		var re client.ReservationError
		if errors.As(err, &re) {
			d.log.Debug("no reservation at the server's relay", "server", s.String(), "status", re.Status.String(), "err", err)
		} else {
			d.log.Debug("no reservation at the server's relay", "server", s.String(), "err", err)
		}
		d.relay.failedAt[s] = d.cfg.Now()
		delete(d.relay.expires, s)
		d.publishRelayAddrs()
		return
	}
	delete(d.relay.failedAt, s)
	if _, had := d.relay.expires[s]; !had {
		d.log.Info("reachable by fellow devices through the server's relay", "server", d.hostName(s), "until", res.Expiration.Format(time.RFC3339))
	}
	d.relay.expires[s] = res.Expiration
	d.publishRelayAddrs()
}

// publishRelayAddrs hands the relay addresses of the reservations held to
// the address factory, which identify then tells connected hosts.
func (d *driver) publishRelayAddrs() {
	now := d.cfg.Now()
	var out []ma.Multiaddr
	servers := make([]lpeer.ID, 0, len(d.relay.expires))
	for s, exp := range d.relay.expires {
		if exp.After(now) {
			servers = append(servers, s)
		}
	}
	slices.Sort(servers)
	for _, s := range servers {
		for _, a := range d.host.Peerstore().Addrs(s) {
			c, err := ma.NewMultiaddr("/p2p/" + s.String() + "/p2p-circuit")
			if err == nil {
				out = append(out, a.Encapsulate(c))
			}
		}
	}
	d.sh.relayAddrs.p.Store(&out)
}

// relays are the servers of the chain this host is connected to directly,
// in chain order: the relays through which it tries to reach a fellow
// device.
func (d *driver) relays() []lpeer.ID {
	var out []lpeer.ID
	for _, s := range d.chain {
		if s != d.self && d.host.Network().Connectedness(s) == network.Connected {
			out = append(out, s)
		}
	}
	return out
}

// addCircuitAddrs puts in the peer store the circuit addresses of device
// through the servers this agent is connected to, for as long as a dial
// may use them.
func (d *driver) addCircuitAddrs(device lpeer.ID) {
	if d.cfg.NoRelay {
		return
	}
	if addrs := circuitAddrs(d.relays()); len(addrs) > 0 {
		d.host.Peerstore().AddAddrs(device, addrs, peerstore.TempAddrTTL)
	}
}

// isCircuit reports whether a is a relayed (circuit) address.
func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}
