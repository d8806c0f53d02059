package peer

import (
	"maps"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/baton-sync/baton/peer/chain"
)

// A witness (Config.Witness) is a server of the chain that votes and keeps
// the consensus log and the collections, and nothing else: no folders, no
// logins, and it never stays master. Host records have no witness flag, so
// a witness says what it is on the network: it serves protoWitness (and
// not the login protocols), which libp2p's identify protocol tells every
// host it connects to. The other servers never hand it leadership, and
// refuse it as a user's home server.
const protoWitness = protocol.ID("/baton/witness/1.0.0")

// handleWitness answers nothing: the protocol only marks a witness.
func handleWitness(s network.Stream) { _ = s.Reset() }

// isWitness reports whether server id is known to be a witness: this
// host's own setting, or what id told this host when they connected (the
// peerstore keeps it a while after a disconnection).
func (d *driver) isWitness(id lpeer.ID) bool {
	if id == d.self {
		return d.cfg.Witness
	}
	if d.host == nil {
		return false
	}
	ps, err := d.host.Peerstore().SupportsProtocols(id, protoWitness)
	return err == nil && len(ps) > 0
}

// refreshWitnesses tells the consensus core which other servers of the
// chain are witnesses, when that changed.
func (d *driver) refreshWitnesses() {
	if d.core == nil {
		return
	}
	now := map[uint64]bool{}
	for _, id := range d.chain {
		if id != d.self && d.isWitness(id) {
			now[chain.RaftID(id)] = true
		}
	}
	if maps.Equal(now, d.witnesses) {
		return
	}
	for rid := range now {
		if !d.witnesses[rid] {
			id := d.raftPeers[rid]
			d.log.Info("server of the chain is a witness: it is never handed the master role", "peer", id.String(), "name", d.hostName(id))
		}
	}
	d.witnesses = now
	d.core.SetWitnesses(slices.Collect(maps.Keys(now)))
}
