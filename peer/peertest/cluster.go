package peertest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/internal/sandbox"
	"github.com/baton-sync/baton/peer"
)

// Created is the genesis time of test domains.
var Created = time.Date(2025, time.June, 1, 12, 0, 0, 0, time.UTC)

// Member is one host of a test cluster.
type Member struct {
	Name    string
	Key     *identity.PrivateKey
	Role    identity.Role // server (in the chain) or agent
	Addr    string        // its listen multiaddr, the private one of a PublicCluster
	DataDir string
}

// Cluster is a test domain of servers: a sandbox.Sandbox with the test
// keys of its hosts' names, failing the test where the sandbox returns an
// error.
type Cluster struct {
	t       testing.TB
	sb      *sandbox.Sandbox
	Genesis collections.Genesis
	Members []*Member
	// Config adjusts each node's configuration before it starts.
	Config func(m *Member, c *peer.Config)
	// BeforeRun, if set, is called with each new node before its Run
	// starts (to install test hooks).
	BeforeRun func(m *Member, n *peer.Node)
	// configure is PublicCluster's, called after Config.
	configure func(m *Member, c *peer.Config)
}

// Options describes a test domain.
type Options struct {
	// Servers is the number of servers, named s1..sN, in chain order.
	Servers int
	// Agents is the number of desktop agents, named a1..aN: member hosts
	// of the genesis with role agent, not in the chain.
	Agents int
	// Settings are the failover settings of the domain.
	Settings collections.FailoverSettings
}

// NewCluster makes (but does not start) a domain of n servers named s1..sn,
// in chain order, with the given failover settings.
func NewCluster(t testing.TB, n int, settings collections.FailoverSettings) *Cluster {
	t.Helper()
	return NewClusterWith(t, Options{Servers: n, Settings: settings})
}

// NewClusterWith makes (but does not start) the domain o describes, each
// host with one address. Members are the servers in chain order, then the
// agents.
func NewClusterWith(t testing.TB, o Options) *Cluster {
	t.Helper()
	return newCluster(t, o, true)
}

func newCluster(t testing.TB, o Options, oneAddress bool) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	sb, err := sandbox.Make(sandbox.Options{
		Servers: o.Servers, GenesisAgents: o.Agents, OneAddress: oneAddress, Settings: o.Settings,
		Domain: "test", Key: identitytest.Key, Created: Created, Dir: t.TempDir(), Log: testLog(),
		Configure: func(cfg *peer.Config) {
			cfg.SyncInterval = time.Second
			m := c.member(cfg.Key.ID())
			if c.Config != nil {
				c.Config(m, cfg)
			}
			if c.configure != nil {
				c.configure(m, cfg)
			}
		},
		BeforeRun: func(n *peer.Node) {
			if c.BeforeRun != nil {
				c.BeforeRun(c.member(n.ID()), n)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Error(err)
		}
	})
	c.sb, c.Genesis = sb, sb.Genesis()
	for _, h := range sb.Hosts() {
		c.Members = append(c.Members, &Member{Name: h.Name, Key: h.Key, Role: h.Role, Addr: h.PrivateAddr, DataDir: h.DataDir})
	}
	return c
}

// testLog is where nodes log: stderr if BATON_TEST_LOG is set, else
// nowhere.
func testLog() *slog.Logger {
	if os.Getenv("BATON_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (c *Cluster) member(id lpeer.ID) *Member {
	for _, m := range c.Members {
		if m.Key.ID() == id {
			return m
		}
	}
	return nil
}

// Start starts member i (again, after Stop: same key and data).
func (c *Cluster) Start(i int) *peer.Node {
	c.t.Helper()
	if c.Node(i) != nil {
		c.t.Fatalf("%s already running", c.Members[i].Name)
	}
	if err := c.sb.StartServer(context.Background(), i); err != nil {
		c.t.Fatal(err)
	}
	return c.Node(i)
}

// StartAll starts every member.
func (c *Cluster) StartAll() {
	c.t.Helper()
	for i := range c.Members {
		c.Start(i)
	}
}

// Stop stops member i and waits for it.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	if err := c.sb.StopServer(i); err != nil {
		c.t.Error(err)
	}
}

// StopAll stops every running member.
func (c *Cluster) StopAll() {
	c.t.Helper()
	for i := range c.Members {
		c.Stop(i)
	}
}

// Node returns member i's running node, or nil.
func (c *Cluster) Node(i int) *peer.Node { return c.sb.Server(i).Node() }

// Running lists the running members' indexes.
func (c *Cluster) Running() []int { return c.sb.Running() }

// Status returns member i's status.
func (c *Cluster) Status(i int) peer.Status {
	c.t.Helper()
	st, err := c.sb.ServerStatus(context.Background(), i)
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

// WaitFor polls cond (every 20 ms) until it is true or timeout passes.
func (c *Cluster) WaitFor(what string, timeout time.Duration, cond func() bool) {
	c.t.Helper()
	err := sandbox.Wait(context.Background(), what, timeout, func() (bool, error) { return cond(), nil })
	if err != nil {
		c.t.Fatal(err)
	}
}

// WaitMaster waits until the master role has settled on the first running
// server (sandbox.Sandbox.Settled), and returns its index and epoch.
func (c *Cluster) WaitMaster(timeout time.Duration) (idx int, epoch uint64) {
	c.t.Helper()
	c.WaitFor("a master all running servers agree on", timeout, func() bool {
		var ok bool
		idx, epoch, ok = c.sb.Settled(context.Background())
		return ok
	})
	return idx, epoch
}

// WaitConverged waits until every running member has the same digests.
func (c *Cluster) WaitConverged(timeout time.Duration) {
	c.t.Helper()
	c.WaitFor("equal digests on all running servers", timeout, func() bool {
		return c.sb.Converged(context.Background())
	})
}

// Submit submits u at member i, waiting up to 10 s for the receipt.
func (c *Cluster) Submit(i int, u collections.Update) (peer.Receipt, error) {
	n := c.Node(i)
	if n == nil {
		return peer.Receipt{}, fmt.Errorf("%s is not running", c.Members[i].Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.Submit(ctx, u)
}

// State returns a copy of member i's collections.
func (c *Cluster) State(i int) *collections.State {
	c.t.Helper()
	s, err := c.sb.ServerState(context.Background(), i)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}
