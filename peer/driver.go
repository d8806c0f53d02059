package peer

import (
	"context"
	"errors"

	"github.com/baton-sync/baton/collections"
)

// driver owns the node's state: the collections, the role machine, the
// outbox. It runs on one goroutine.
type driver struct {
	state *collections.State
}

func (d *driver) status() Status { return Status{} }

func (d *driver) submit(u collections.Update) (<-chan submitResult, error) {
	return nil, errors.New("submit: not implemented yet")
}

// Run runs the node until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	return errors.New("node: not implemented yet")
}
