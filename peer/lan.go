package peer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
)

// Direct connections between member devices. A device's view of the
// Catalog holds the devices of the users it shares a folder with
// (collections.State.ViewFor); the gater admits those and no other device
// (refreshAllow), and the folder sync engine syncs each shared folder with
// them as with the server (foldersync: takesFrom). The agent keeps
// connected to those it knows an address of, with the reconnect backoff:
// addresses found by mDNS on the local network (Config.NoLAN turns it off)
// or given by Config.Peers. Devices are not Domain hosts: their addresses
// are in no record.
//
// Devices that cannot dial each other reach each other through the
// servers' relays (relay.go).

// lanTTL is how long an address found by mDNS is kept without being found
// again.
const lanTTL = 10 * time.Minute

// lanState is an agent's view of its fellow devices, owned by the driver
// goroutine.
type lanState struct {
	// devices are the valid devices of the users this device shares a
	// folder with (its own user's other devices included), as of the last
	// refreshAllow.
	devices []lpeer.ID
}

// lanService is the domain's mDNS service name: hosts of other domains on
// the same network are not even found.
func lanService(g collections.Genesis) string {
	h := g.Hash()
	return fmt.Sprintf("_baton%x._udp", h[:4])
}

// fellowDevice returns whether a valid device may connect to this host: on
// a device, a device of a user sharing a folder with this device's user
// (or of that user); elsewhere every valid device.
func (d *driver) fellowDevice() func(collections.DeviceCert) bool {
	if !d.isDevice() || d.auth == nil || d.auth.certInfo.User == "" {
		return func(collections.DeviceCert) bool { return true }
	}
	fellows := fellowsOf(d.state, d.auth.certInfo.User)
	return func(c collections.DeviceCert) bool { return fellows[c.User] }
}

// fellowsOf is user and the owners and members of the folders user is a
// member of.
func fellowsOf(st *collections.State, user string) map[string]bool {
	m := map[string]bool{user: true}
	for _, f := range st.Folders() {
		if _, ok := f.Members[user]; !ok {
			continue
		}
		m[f.Owner] = true
		for u := range f.Members {
			m[u] = true
		}
	}
	return m
}

// startLAN adds Config.Peers' addresses to the peer store and, unless
// Config.NoLAN, runs mDNS discovery on wg until ctx ends. Agents only.
func (d *driver) startLAN(ctx context.Context, wg *sync.WaitGroup, h host.Host) {
	if d.cfg.Role != identity.RoleAgent {
		return
	}
	for _, a := range d.cfg.Peers {
		info, err := lpeer.AddrInfoFromString(a) // checked by Validate
		if err == nil && info.ID != d.self {
			h.Peerstore().AddAddrs(info.ID, info.Addrs, peerstore.PermanentAddrTTL)
		}
	}
	if d.cfg.NoLAN {
		return
	}
	found := make(chan lpeer.AddrInfo, 64)
	svc := mdns.NewMdnsService(h, lanService(d.cfg.Genesis), lanNotifee{found: found})
	if err := svc.Start(); err != nil {
		d.log.Warn("other devices on the local network are not looked for (mDNS)", "err", err)
		return
	}
	d.log.Info("looking for the other devices of shared folders on the local network (mDNS)")
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer svc.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case info := <-found:
				d.post(func(ctx context.Context, d *driver) { d.onLANPeer(ctx, info) })
			}
		}
	}()
}

// lanNotifee hands what mDNS finds to startLAN's goroutine, dropping what
// it cannot take at once (mDNS finds it again).
type lanNotifee struct{ found chan<- lpeer.AddrInfo }

func (n lanNotifee) HandlePeerFound(info lpeer.AddrInfo) {
	select {
	case n.found <- info:
	default:
	}
}

// onLANPeer keeps the addresses of a host found on the local network and
// dials it now if it is a fellow device. A host of the same domain that is
// not one yet may become one: its addresses are kept for a while.
func (d *driver) onLANPeer(ctx context.Context, info lpeer.AddrInfo) {
	if info.ID == d.self || d.host == nil || len(info.Addrs) == 0 {
		return
	}
	d.host.Peerstore().AddAddrs(info.ID, info.Addrs, lanTTL)
	if slices.Contains(d.lan.devices, info.ID) && d.host.Network().Connectedness(info.ID) != network.Connected {
		d.log.Debug("device found on the local network", "peer", info.ID.String())
		d.nextDial[info.ID] = time.Time{}
		d.dialDevices(ctx)
	}
}

// dialDevices keeps an agent connected to the fellow devices whose address
// it knows, or through the relays of the servers it is connected to, with
// the reconnect backoff; to a fellow it reaches only through a relay, it
// keeps trying a direct connection.
func (d *driver) dialDevices(ctx context.Context) {
	if d.cfg.Role != identity.RoleAgent || d.host == nil {
		return
	}
	now := d.cfg.Now()
	for _, id := range d.lan.devices {
		if d.dialing[id] || now.Before(d.nextDial[id]) {
			continue
		}
		relayed := false
		switch d.host.Network().Connectedness(id) {
		case network.Connected:
			d.dialTries[id] = 0
			continue
		case network.Limited:
			// Through a relay only: blocks wait for a direct
			// connection, which is tried with the backoff.
			relayed = true
		default:
			d.addCircuitAddrs(id)
		}
		addrs := d.host.Peerstore().Addrs(id)
		if relayed {
			addrs = slices.DeleteFunc(addrs, isCircuit)
		}
		if len(addrs) == 0 {
			continue
		}
		d.host.ConnManager().Protect(id, "baton-device")
		d.dialWith(ctx, lpeer.AddrInfo{ID: id, Addrs: addrs}, relayed)
	}
}
