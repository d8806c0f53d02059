package peertest

import (
	"context"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/internal/sandbox"
	"github.com/baton-sync/baton/peer"
)

// PublicCluster is a domain of servers that each listen on two addresses:
// Addr, the private one the servers dial each other on, and Public[i],
// the public one agents dial and guests (agents logging in) may use.
type PublicCluster struct {
	*Cluster
	Public []string
	// Configure, if set, adjusts each node's configuration after the
	// public listen address is set.
	Configure func(m *Member, c *peer.Config)
}

// NewPublicCluster makes (but does not start) a domain of n servers named
// s1..sn, in chain order, whose host records announce the private and the
// public address apart.
func NewPublicCluster(t testing.TB, n int, settings collections.FailoverSettings) *PublicCluster {
	t.Helper()
	pc := &PublicCluster{Cluster: newCluster(t, Options{Servers: n, Settings: settings}, false)}
	for _, h := range pc.sb.Hosts() {
		pc.Public = append(pc.Public, h.PublicAddr)
	}
	pc.configure = func(m *Member, cfg *peer.Config) {
		if pc.Configure != nil {
			pc.Configure(m, cfg)
		}
	}
	return pc
}

// PublicP2P is member i's public address with its /p2p/ID, what a user
// gives `baton login`.
func (pc *PublicCluster) PublicP2P(i int) string { return pc.sb.Server(i).PublicP2P() }

// Agent is a desktop agent outside the genesis: it joins a domain by
// logging in, and runs with the genesis and device certificate it got.
type Agent struct {
	Name    string
	Key     *identity.PrivateKey
	DataDir string
	// Config adjusts the node's configuration before it starts.
	Config func(c *peer.Config)
	// BeforeRun, if set, is called with the node before it runs.
	BeforeRun func(n *peer.Node)

	t    testing.TB
	proc sandbox.Proc
}

// NewAgent makes (but does not start) an agent with the test key of name.
// It is stopped when the test ends.
func NewAgent(t testing.TB, name string) *Agent {
	a := &Agent{Name: name, Key: identitytest.Key(name), DataDir: t.TempDir(), t: t}
	t.Cleanup(a.Stop)
	return a
}

// ID is the agent's peer ID.
func (a *Agent) ID() lpeer.ID { return a.Key.ID() }

// Start runs the agent as a member of the domain of genesis (signed bytes)
// with device certificate cert.
func (a *Agent) Start(genesis, cert []byte) *peer.Node {
	a.t.Helper()
	g, err := collections.OpenGenesis(genesis)
	if err != nil {
		a.t.Fatalf("%s: genesis: %v", a.Name, err)
	}
	cfg := peer.Config{
		Key: a.Key, Name: a.Name, Role: identity.RoleAgent, Genesis: g, DataDir: a.DataDir,
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}, SyncInterval: time.Second, DeviceCert: cert,
	}
	if l := testLog(); l != nil {
		cfg.Logger = l.With("host", a.Name)
	}
	if a.Config != nil {
		a.Config(&cfg)
	}
	n, err := a.proc.Start(context.Background(), cfg, a.BeforeRun)
	if err != nil {
		a.t.Fatal(err)
	}
	return n
}

// Node is the running node, or nil.
func (a *Agent) Node() *peer.Node { return a.proc.Node() }

// Stop stops the agent and waits for it.
func (a *Agent) Stop() {
	if err := a.proc.Stop(); err != nil {
		a.t.Errorf("%s stopped with %v", a.Name, err)
	}
}
