package peer

import (
	"log/slog"

	"github.com/libp2p/go-libp2p/core/host"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
)

// edge is the part of the node that runs on network goroutines: stream
// handlers, pubsub validators, the raft senders and the network calls the
// loop spawns. It cannot reach the loop's state (the driver): it reads
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
