package foldersync

import (
	"context"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/baton-sync/baton/peer/wire"
)

// Stream is a stream to or from another host.
type Stream = wire.Stream

// Transport is what an Engine needs of the network: streams to and from
// other hosts, named by their peer IDs, which the transport authenticates,
// and news of hosts connecting. The peer package gives an engine its
// libp2p host's (peer.FolderTransport).
type Transport interface {
	// ID is this host's peer ID.
	ID() lpeer.ID
	// NewStream opens proto to p; with dial false only over a connection
	// already open. A proto that is not OverLimited is never opened over
	// a limited (relayed) connection: with only such a connection to p,
	// NewStream fails at once.
	NewStream(ctx context.Context, p lpeer.ID, proto protocol.ID, dial bool) (Stream, error)
	// SetHandler serves proto with h, from being the host at the other
	// end; a nil h stops serving it. A stream of a proto that is not
	// OverLimited arriving over a limited connection is refused.
	SetHandler(proto protocol.ID, h func(s Stream, from lpeer.ID))
	// Peers are the hosts connected now.
	Peers() []lpeer.ID
	// Connected sends each host that connects on the channel it returns,
	// through a relay or directly, until stop is called (the channel is
	// then closed).
	Connected() (c <-chan lpeer.ID, stop func(), err error)
}
