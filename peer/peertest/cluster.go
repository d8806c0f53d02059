package peertest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer"
)

// Created is the genesis time of test domains.
var Created = time.Date(2025, time.June, 1, 12, 0, 0, 0, time.UTC)

// Member is one host of a test cluster.
type Member struct {
	Name    string
	Key     *identity.PrivateKey
	Role    identity.Role // server (in the chain) or agent
	Addr    string        // its listen (and announced) multiaddr
	DataDir string

	mu     sync.Mutex
	node   *peer.Node
	cancel context.CancelFunc
	done   chan error
}

// Cluster is a test domain of servers.
type Cluster struct {
	t       testing.TB
	Genesis collections.Genesis
	Members []*Member
	// Config adjusts each node's configuration before it starts.
	Config func(m *Member, c *peer.Config)
	// BeforeRun, if set, is called with each new node before its Run
	// starts (to install test hooks).
	BeforeRun func(m *Member, n *peer.Node)
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

// FreePort asks the OS for a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// NewCluster makes (but does not start) a domain of n servers named s1..sn,
// in chain order, with the given failover settings.
func NewCluster(t testing.TB, n int, settings collections.FailoverSettings) *Cluster {
	t.Helper()
	return NewClusterWith(t, Options{Servers: n, Settings: settings})
}

// NewClusterWith makes (but does not start) the domain o describes.
// Members are the servers in chain order, then the agents.
func NewClusterWith(t testing.TB, o Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	var hosts [][]byte
	var chain collections.Chain
	add := func(name string, role identity.Role) {
		key := identitytest.Key(name)
		addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", FreePort(t))
		rec := identity.HostRecord{Name: name, PublicKey: key.Public(), PrivateAddrs: []string{addr}, PublicAddrs: []string{addr}, Role: role, Issued: Created.UnixNano()}
		env, err := identity.SignHostRecord(key, rec)
		if err != nil {
			t.Fatal(err)
		}
		b, err := env.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, b)
		if role == identity.RoleServer {
			chain.Servers = append(chain.Servers, key.ID().String())
		}
		c.Members = append(c.Members, &Member{Name: name, Key: key, Role: role, Addr: addr, DataDir: t.TempDir()})
	}
	for i := 1; i <= o.Servers; i++ {
		add(fmt.Sprintf("s%d", i), identity.RoleServer)
	}
	for i := 1; i <= o.Agents; i++ {
		add(fmt.Sprintf("a%d", i), identity.RoleAgent)
	}
	gb, err := collections.NewGenesis(c.Members[0].Key, collections.DomainInfo{Name: "test", Settings: o.Settings}, chain, hosts, Created)
	if err != nil {
		t.Fatal(err)
	}
	if c.Genesis, err = collections.OpenGenesis(gb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.StopAll)
	return c
}

// Start starts member i (again, after Stop: same key and data).
func (c *Cluster) Start(i int) *peer.Node {
	c.t.Helper()
	m := c.Members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.node != nil {
		c.t.Fatalf("%s already running", m.Name)
	}
	cfg := peer.Config{
		Key: m.Key, Name: m.Name, Role: m.Role, Genesis: c.Genesis, DataDir: m.DataDir,
		Listen: []string{m.Addr}, SyncInterval: time.Second,
	}
	if os.Getenv("BATON_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("host", m.Name)
	}
	if c.Config != nil {
		c.Config(m, &cfg)
	}
	n, err := peer.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.BeforeRun != nil {
		c.BeforeRun(m, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Started():
	case err := <-done:
		cancel()
		c.t.Fatalf("%s: %v", m.Name, err)
	case <-time.After(20 * time.Second):
		cancel()
		c.t.Fatalf("%s did not start", m.Name)
	}
	m.node, m.cancel, m.done = n, cancel, done
	return n
}

// StartAll starts every member.
func (c *Cluster) StartAll() {
	for i := range c.Members {
		c.Start(i)
	}
}

// Stop stops member i and waits for it.
func (c *Cluster) Stop(i int) {
	m := c.Members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.node == nil {
		return
	}
	m.cancel()
	select {
	case err := <-m.done:
		if err != nil {
			c.t.Errorf("%s stopped with %v", m.Name, err)
		}
	case <-time.After(20 * time.Second):
		c.t.Errorf("%s did not stop", m.Name)
	}
	m.node = nil
}

// StopAll stops every running member.
func (c *Cluster) StopAll() {
	for i := range c.Members {
		c.Stop(i)
	}
}

// Node returns member i's running node, or nil.
func (c *Cluster) Node(i int) *peer.Node {
	m := c.Members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.node
}

// Running lists the running members' indexes.
func (c *Cluster) Running() []int {
	var out []int
	for i := range c.Members {
		if c.Node(i) != nil {
			out = append(out, i)
		}
	}
	return out
}

// Status returns member i's status.
func (c *Cluster) Status(i int) peer.Status {
	c.t.Helper()
	n := c.Node(i)
	if n == nil {
		c.t.Fatalf("%s is not running", c.Members[i].Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := n.Status(ctx)
	if err != nil {
		c.t.Fatalf("%s status: %v", c.Members[i].Name, err)
	}
	return st
}

// WaitFor polls cond (every 20 ms) until it is true or timeout passes.
func (c *Cluster) WaitFor(what string, timeout time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitMaster waits until every running member agrees that one running
// member is master, and returns its index and epoch.
func (c *Cluster) WaitMaster(timeout time.Duration) (idx int, epoch uint64) {
	c.t.Helper()
	c.WaitFor("a master all running servers agree on", timeout, func() bool {
		idx = -1
		for _, i := range c.Running() {
			st := c.Status(i)
			if st.Role == "master" {
				if idx >= 0 {
					return false
				}
				idx, epoch = i, st.Epoch
			}
		}
		// The chain is the leadership order: the master settles on the
		// first running server.
		if idx < 0 || idx != c.Running()[0] {
			return false
		}
		want := c.Members[idx].Key.ID().String()
		for _, i := range c.Running() {
			if st := c.Status(i); st.Master != want || st.Epoch != epoch {
				return false
			}
		}
		return true
	})
	return idx, epoch
}

// WaitConverged waits until every running member has the same digests.
func (c *Cluster) WaitConverged(timeout time.Duration) {
	c.t.Helper()
	c.WaitFor("equal digests on all running servers", timeout, func() bool {
		var first map[string]peer.CollectionStatus
		for _, i := range c.Running() {
			st := c.Status(i)
			if first == nil {
				first = st.Collections
				continue
			}
			for k, v := range first {
				if st.Collections[k].Digest != v.Digest {
					return false
				}
			}
		}
		return true
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.Node(i).State(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}
