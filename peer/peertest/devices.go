package peertest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
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
	c := &Cluster{t: t}
	pc := &PublicCluster{Cluster: c}
	var hosts [][]byte
	var chain collections.Chain
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("s%d", i)
		key := identitytest.Key(name)
		priv := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", FreePort(t))
		pub := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", FreePort(t))
		rec := identity.HostRecord{Name: name, PublicKey: key.Public(), PrivateAddrs: []string{priv}, PublicAddrs: []string{pub},
			Role: identity.RoleServer, Issued: Created.UnixNano()}
		env, err := identity.SignHostRecord(key, rec)
		if err != nil {
			t.Fatal(err)
		}
		b, err := env.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, b)
		chain.Servers = append(chain.Servers, key.ID().String())
		c.Members = append(c.Members, &Member{Name: name, Key: key, Role: identity.RoleServer, Addr: priv, DataDir: t.TempDir()})
		pc.Public = append(pc.Public, pub)
	}
	gb, err := collections.NewGenesis(c.Members[0].Key, collections.DomainInfo{Name: "test", Settings: settings}, chain, hosts, Created)
	if err != nil {
		t.Fatal(err)
	}
	if c.Genesis, err = collections.OpenGenesis(gb); err != nil {
		t.Fatal(err)
	}
	c.Config = func(m *Member, cfg *peer.Config) {
		for i, x := range c.Members {
			if x == m {
				cfg.PublicListen = []string{pc.Public[i]}
				cfg.PublicAddrs = []string{pc.Public[i]}
				cfg.PrivateAddrs = []string{m.Addr}
			}
		}
		if pc.Configure != nil {
			pc.Configure(m, cfg)
		}
	}
	t.Cleanup(c.StopAll)
	return pc
}

// PublicP2P is member i's public address with its /p2p/ID, what a user
// gives `baton login`.
func (pc *PublicCluster) PublicP2P(i int) string {
	return pc.Public[i] + "/p2p/" + pc.Members[i].Key.ID().String()
}

// Agent is a desktop agent outside the genesis: it joins a domain by
// logging in, and runs with the genesis and device certificate it got.
type Agent struct {
	Name    string
	Key     *identity.PrivateKey
	DataDir string
	// Config adjusts the node's configuration before it starts.
	Config func(c *peer.Config)

	t      testing.TB
	mu     sync.Mutex
	node   *peer.Node
	cancel context.CancelFunc
	done   chan error
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
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.node != nil {
		a.t.Fatalf("%s already running", a.Name)
	}
	g, err := collections.OpenGenesis(genesis)
	if err != nil {
		a.t.Fatalf("%s: genesis: %v", a.Name, err)
	}
	cfg := peer.Config{
		Key: a.Key, Name: a.Name, Role: identity.RoleAgent, Genesis: g, DataDir: a.DataDir,
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}, SyncInterval: time.Second, DeviceCert: cert,
	}
	if os.Getenv("BATON_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("host", a.Name)
	}
	if a.Config != nil {
		a.Config(&cfg)
	}
	n, err := peer.New(cfg)
	if err != nil {
		a.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Started():
	case err := <-done:
		cancel()
		a.t.Fatalf("%s: %v", a.Name, err)
	case <-time.After(20 * time.Second):
		cancel()
		a.t.Fatalf("%s did not start", a.Name)
	}
	a.node, a.cancel, a.done = n, cancel, done
	return n
}

// Node is the running node, or nil.
func (a *Agent) Node() *peer.Node {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.node
}

// Stop stops the agent and waits for it.
func (a *Agent) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.node == nil {
		return
	}
	a.cancel()
	select {
	case err := <-a.done:
		if err != nil {
			a.t.Errorf("%s stopped with %v", a.Name, err)
		}
	case <-time.After(20 * time.Second):
		a.t.Errorf("%s did not stop", a.Name)
	}
	a.node = nil
}
