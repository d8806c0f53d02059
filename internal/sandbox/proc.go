package sandbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/baton-sync/baton/peer"
)

// ErrRunning is returned by Proc.Start while its node runs.
var ErrRunning = errors.New("already running")

// Proc runs one node in this process, from Start until Stop, as the
// daemon would: a restart is a new node over the same data. The zero Proc
// is stopped; its methods may be called from several goroutines.
type Proc struct {
	mu     sync.Mutex
	node   *peer.Node
	cancel context.CancelFunc
	done   chan error
	closed bool
}

// Node is the running node, or nil while stopped.
func (p *Proc) Node() *peer.Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.node
}

// Start makes a node of cfg, passes it to beforeRun (if set, to install
// test hooks), runs it until Stop and waits until it listens. The node
// outlives ctx, which bounds only the wait. It returns ErrRunning while a
// node runs and ErrClosed after Close.
func (p *Proc) Start(ctx context.Context, cfg peer.Config, beforeRun func(*peer.Node)) (*peer.Node, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil, ErrClosed
	case p.node != nil:
		return nil, fmt.Errorf("starting %s: %w", cfg.Name, ErrRunning)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cfg.Name, err)
	}
	n, err := peer.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", cfg.Name, err)
	}
	if beforeRun != nil {
		beforeRun(n)
	}
	nctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(nctx) }()
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case <-n.Started():
		p.node, p.cancel, p.done = n, cancel, done
		return n, nil
	case err := <-done:
		cancel()
		if err == nil {
			err = errors.New("the node stopped at once")
		}
		return nil, fmt.Errorf("starting %s: %w", cfg.Name, err)
	case <-t.C:
		err = fmt.Errorf("not listening after %v", startTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	_ = waitDone(done)
	return nil, fmt.Errorf("starting %s: %w", cfg.Name, err)
}

// Stop stops the node, as a crash would (its data stays), and waits until
// its Run returned; it returns what Run returned. Stopping a stopped Proc
// does nothing.
func (p *Proc) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopLocked()
}

// Close stops the node for good: Start fails with ErrClosed after it.
func (p *Proc) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return p.stopLocked()
}

func (p *Proc) stopLocked() error {
	if p.node == nil {
		return nil
	}
	p.cancel()
	err := waitDone(p.done)
	p.node, p.cancel, p.done = nil, nil, nil
	return err
}

// waitDone waits for a node's Run to return after its cancel.
func waitDone(done chan error) error {
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("did not stop within %v", stopTimeout)
	}
}

// Wait calls cond every 20 ms until it returns true or an error, timeout
// passes or ctx ends; what names the wait in its error.
func Wait(ctx context.Context, what string, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}
