package peer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/baton-sync/baton/collections"
)

// Node is a running baton host: a server in the domain's chain or a desktop
// agent. New builds it and starts nothing; Run runs it until its context
// ends, and returns after everything it started has stopped.
//
// The methods other than Run may be called from any goroutine while Run is
// running; they hand their work to the goroutine that owns the node's state.
type Node struct {
	cfg     Config
	started chan struct{}
	reqs    chan request
	running atomic.Bool
	stopped chan struct{} // closed when Run returns
	// agentOps admits one agent folder request at a time (agentops.go).
	agentOps chan struct{}
	// hooks are fault-injection points for this package's tests, set
	// (through export_test.go) before Run; all nil otherwise.
	hooks testHooks
}

// testHooks are fault-injection points for tests.
type testHooks struct {
	// dropGossip, if it returns true, drops a validated gossiped update
	// before the driver sees it, as if the network had lost it.
	dropGossip func(collections.Certified) bool
	// backoff, if its max is set, replaces the reconnect backoff.
	backoff backoff
	// refuseDial, if it returns true, refuses this host's dial of a peer
	// at an address, as a network that does not carry it would.
	refuseDial func(lpeer.ID, ma.Multiaddr) bool
}

// request is work handed to the driver goroutine.
type request struct {
	fn func(ctx context.Context, d *driver)
}

// New checks cfg and returns a node. It does no I/O.
func New(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Node{cfg: cfg, started: make(chan struct{}), stopped: make(chan struct{}), reqs: make(chan request), agentOps: make(chan struct{}, 1)}, nil
}

// ID is the node's peer ID.
func (n *Node) ID() lpeer.ID { return n.cfg.Key.ID() }

// Started is closed once the node listens and serves.
func (n *Node) Started() <-chan struct{} { return n.started }

// do runs fn on the driver goroutine and waits for it. When do returns,
// fn has run or never will: a caller that gives up (ctx ends) while the
// driver holds the request waits for an fn already under way, and one not
// yet begun is skipped, so fn never writes the caller's variables after do
// returned.
func (n *Node) do(ctx context.Context, fn func(ctx context.Context, d *driver)) error {
	var (
		mu        sync.Mutex
		abandoned bool
	)
	done := make(chan struct{})
	run := func(dctx context.Context, d *driver) {
		mu.Lock()
		if !abandoned {
			fn(dctx, d)
		}
		mu.Unlock()
		close(done)
	}
	giveUp := func(err error) error {
		mu.Lock()
		abandoned = true
		mu.Unlock()
		return err
	}
	select {
	case n.reqs <- request{fn: run}:
	case <-n.stopped:
		return ErrStopped
	case <-ctx.Done():
		return fmt.Errorf("waiting for the node: %w", ctx.Err())
	}
	select {
	case <-done:
		return nil
	case <-n.stopped:
		return giveUp(ErrStopped)
	case <-ctx.Done():
		return giveUp(fmt.Errorf("waiting for the node: %w", ctx.Err()))
	}
}

// Status returns a snapshot of the node for display.
func (n *Node) Status(ctx context.Context) (Status, error) {
	var st Status
	err := n.do(ctx, func(_ context.Context, d *driver) { st = d.status() })
	return st, err
}

// State returns a copy of the node's collections.
func (n *Node) State(ctx context.Context) (*collections.State, error) {
	var s *collections.State
	err := n.do(ctx, func(_ context.Context, d *driver) { s = d.state.Clone() })
	return s, err
}

// Submit signs u as this host, keeps it in the durable outbox and sends it
// to the master (or, at the master, certifies it). It waits for the master's
// receipt until ctx ends; then the Receipt says Queued and the update stays in
// the outbox. Domain updates are accepted only at the master: elsewhere Submit
// returns a *NotMasterError.
func (n *Node) Submit(ctx context.Context, u collections.Update) (Receipt, error) {
	var (
		wait <-chan submitResult
		h    [32]byte
		err  error
	)
	start := n.cfg.Now()
	if derr := n.do(ctx, func(dctx context.Context, d *driver) { wait, h, err = d.submit(dctx, u) }); derr != nil {
		return Receipt{}, derr
	}
	if err != nil {
		return Receipt{}, err
	}
	select {
	case r := <-wait:
		if r.err == nil && !r.receipt.Queued && n.cfg.OnCommit != nil {
			n.cfg.OnCommit(n.cfg.Now().Sub(start))
		}
		return r.receipt, r.err
	case <-ctx.Done():
	}
	// Not committed in time: the update is queued, which it may be said to
	// be only once it is on disk.
	pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var perr error
	derr := n.do(pctx, func(_ context.Context, d *driver) { perr = d.outbox.persist(h) })
	select {
	case r := <-wait: // settled meanwhile: committed, refused, or queued at shutdown
		return r.receipt, r.err
	default:
	}
	if derr != nil {
		return Receipt{}, derr
	}
	if perr != nil {
		return Receipt{}, perr
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return Receipt{Queued: true}, nil
	}
	return Receipt{}, ctx.Err()
}

type submitResult struct {
	receipt Receipt
	err     error
}
