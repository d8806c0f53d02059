package peer

import (
	"log/slog"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// edge is the part of the node that runs on network goroutines: stream
// handlers, pubsub validators, the raft senders, the watch of connection
// events and the network calls the loop spawns; Run sets up the topics and
// the watch through it (joinTopics, watchConnections). It cannot reach the loop's state (the driver): it reads
// only what is safe to share (the configuration, the shared sets, the
// allow list, the login limits), asks the loop through query (Node.do,
// with its guarantee), and hands it work with post.
type edge struct {
	node   *Node
	cfg    Config
	log    *slog.Logger
	self   lpeer.ID
	sh     *shared
	allow  *allowList
	auth   *authState // its limiter and password checks only
	host   host.Host
	done   <-chan struct{}
	events chan<- task
}

// post hands fn to the driver goroutine, unless the node is stopping.
func (e *edge) post(fn task) bool {
	select {
	case e.events <- fn:
		return true
	case <-e.done:
		return false
	}
}

// serve sets the stream handlers of baton's protocols for this host's role
// and returns the function that removes them. Every host serves proposals
// and sync; servers the raft log and devices' views; devices the master's
// feed; servers other than witnesses logins and agent operations, and a
// witness only says it is one.
func (e *edge) serve(server, witness, device bool) (stop func()) {
	handlers := map[protocol.ID]network.StreamHandler{
		protoPropose: e.handlePropose,
		protoSync:    e.handleSync,
	}
	if server {
		handlers[protoRaft] = e.handleRaft
		handlers[protoView] = e.handleView
	}
	if device {
		handlers[protoFeed] = e.handleFeed
	}
	switch {
	case witness:
		handlers[protoWitness] = handleWitness
	case server:
		handlers[protoLogin] = e.handleLogin
		handlers[protoRenew] = e.handleRenew
		handlers[protoAgent] = e.handleAgent
		handlers[protoHistory] = e.handleHistory
		handlers[protoPasswordCheck] = e.handlePasswordCheck
	}
	for p, h := range handlers {
		e.host.SetStreamHandler(p, h)
	}
	return func() {
		for p := range handlers {
			e.host.RemoveStreamHandler(p)
		}
	}
}
