package sandbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer"
)

// Deadlines of the waits. They are generous: on a loaded machine under the
// race detector things take several times longer than on an idle one.
const (
	startTimeout    = 20 * time.Second // a node listening
	stopTimeout     = 20 * time.Second // a node's Run returning after cancel
	masterTimeout   = 30 * time.Second // a master every running server agrees on
	convergeTimeout = 30 * time.Second // equal collection digests everywhere
	submitTimeout   = 15 * time.Second // a receipt from the master
	callTimeout     = 5 * time.Second  // one Status or State call
	loginTimeout    = 30 * time.Second // a login, redirect included
	acceptTimeout   = 30 * time.Second // a device or a folder share seen everywhere it must be
	syncTimeout     = 60 * time.Second // a folder in sync
	pollInterval    = 20 * time.Millisecond
)

// ErrClosed is returned by the operations of a closed sandbox.
var ErrClosed = errors.New("sandbox closed")

// ErrNoFolderSync was returned while the node had no folder sync.
//
// Deprecated: the node syncs folders; nothing returns it any more.
var ErrNoFolderSync = errors.New("this build's node does not sync folders")

// Options configures a sandbox.
type Options struct {
	// Servers is the number of servers, s1..sN in chain order (default 3).
	Servers int
	// GenesisAgents is the number of desktop agents listed in the genesis,
	// a1..aN after the servers: hosts of role agent, not in the chain,
	// started with StartServer like the servers rather than by a login.
	GenesisAgents int
	// OneAddress gives each server one address, announced as both its
	// private and its public one, and no public listener.
	OneAddress bool
	// Domain is the domain's name (default "sandbox").
	Domain string
	// Key, if set, gives the host or agent named name its key (tests pass
	// identitytest.Key); by default keys are fresh.
	Key func(name string) *identity.PrivateKey
	// Created is the time of the genesis and of its host records (default
	// now).
	Created time.Time
	// Log receives the nodes' logs, each with a "host" attribute; nil
	// discards them.
	Log *slog.Logger
	// Dir is where the sandbox's temporary directory is made (default the
	// system's temporary directory).
	Dir string
	// Keep leaves the directories in place on Close (Root says where).
	Keep bool
	// Settings are the failover settings (default
	// collections.DefaultFailover(Servers)).
	Settings collections.FailoverSettings
	// Configure, if set, adjusts every node's configuration (hosts and
	// agents; cfg.Name says whose) before it starts, e.g. the password
	// hashing cost in tests.
	Configure func(cfg *peer.Config)
	// BeforeRun, if set, is given every new node before its Run starts,
	// e.g. to install test hooks.
	BeforeRun func(*peer.Node)
}

// Sandbox is a running domain. Its methods may be called from several
// goroutines.
type Sandbox struct {
	opts    Options
	root    string
	genesis collections.Genesis
	hosts   []*Host

	mu     sync.Mutex
	agents []*Agent
	closed bool
}

// Host is one host of the genesis: a server of the chain or, with
// Options.GenesisAgents, an agent listed there. Its key, addresses and
// data directory stay the same across StopServer and StartServer.
type Host struct {
	Name string
	Key  *identity.PrivateKey
	Role identity.Role
	// PrivateAddr is the address servers dial each other on; PublicAddr
	// the one agents dial (and log in at). They are the same with
	// Options.OneAddress, and on genesis agents.
	PrivateAddr, PublicAddr string
	DataDir                 string

	proc Proc
}

// ID is the host's peer ID.
func (h *Host) ID() lpeer.ID { return h.Key.ID() }

// PublicP2P is the host's public address with its /p2p/ID: what a user
// logs in at.
func (h *Host) PublicP2P() string { return h.PublicAddr + "/p2p/" + h.ID().String() }

// Node is the host's running node, or nil while it is stopped.
func (h *Host) Node() *peer.Node { return h.proc.Node() }

// New makes the domain o describes (Make) on 127.0.0.1, starts its hosts
// and waits until s1, the first of the chain, is master on all of them. On
// error everything started is stopped and the directory removed.
func New(ctx context.Context, o Options) (_ *Sandbox, err error) {
	sb, err := Make(o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = sb.Close()
		}
	}()
	for i := range sb.hosts {
		if err := sb.StartServer(ctx, i); err != nil {
			return nil, err
		}
	}
	if _, err := sb.WaitMaster(ctx, 0); err != nil {
		return nil, err
	}
	return sb, nil
}

// Make makes, in a new temporary directory, the keys, addresses, data
// directories and signed genesis of the domain o describes, and starts
// nothing: StartServer starts a host. On error the directory is removed.
func Make(o Options) (_ *Sandbox, err error) {
	if o.Servers <= 0 {
		o.Servers = 3
	}
	if o.Domain == "" {
		o.Domain = "sandbox"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Settings == (collections.FailoverSettings{}) {
		o.Settings = collections.DefaultFailover(o.Servers)
	}
	if o.Created.IsZero() {
		o.Created = time.Now()
	}
	root, err := os.MkdirTemp(o.Dir, "baton-sandbox-")
	if err != nil {
		return nil, fmt.Errorf("making the sandbox directory: %w", err)
	}
	sb := &Sandbox{opts: o, root: root}
	if err := sb.makeDomain(); err != nil {
		_ = sb.Close()
		return nil, err
	}
	return sb, nil
}

// key is the key of the host or agent named name.
func (sb *Sandbox) key(name string) (*identity.PrivateKey, error) {
	if sb.opts.Key != nil {
		return sb.opts.Key(name), nil
	}
	return identity.Generate(rand.Reader)
}

// makeDomain makes the hosts' keys, host records and data directories and
// signs the genesis (by s1).
func (sb *Sandbox) makeDomain() error {
	var hosts [][]byte
	var chain collections.Chain
	var ports portSet
	defer ports.release()
	add := func(name string, role identity.Role, oneAddr bool) error {
		key, err := sb.key(name)
		if err != nil {
			return err
		}
		priv, err := ports.addr()
		if err != nil {
			return err
		}
		pub := priv
		if !oneAddr {
			if pub, err = ports.addr(); err != nil {
				return err
			}
		}
		env, err := identity.SignHostRecord(key, identity.HostRecord{
			Name: name, PublicKey: key.Public(), Role: role, Issued: sb.opts.Created.UnixNano(),
			PrivateAddrs: []string{priv}, PublicAddrs: []string{pub},
		})
		if err != nil {
			return fmt.Errorf("signing the host record of %s: %w", name, err)
		}
		b, err := env.Marshal()
		if err != nil {
			return err
		}
		dir := filepath.Join(sb.root, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		hosts = append(hosts, b)
		if role == identity.RoleServer {
			chain.Servers = append(chain.Servers, key.ID().String())
		}
		sb.hosts = append(sb.hosts, &Host{Name: name, Key: key, Role: role, PrivateAddr: priv, PublicAddr: pub, DataDir: dir})
		return nil
	}
	for i := 1; i <= sb.opts.Servers; i++ {
		if err := add(fmt.Sprintf("s%d", i), identity.RoleServer, sb.opts.OneAddress); err != nil {
			return err
		}
	}
	for i := 1; i <= sb.opts.GenesisAgents; i++ {
		if err := add(fmt.Sprintf("a%d", i), identity.RoleAgent, true); err != nil {
			return err
		}
	}
	raw, err := collections.NewGenesis(sb.hosts[0].Key,
		collections.DomainInfo{Name: sb.opts.Domain, Settings: sb.opts.Settings}, chain, hosts, sb.opts.Created)
	if err != nil {
		return fmt.Errorf("making the genesis: %w", err)
	}
	if sb.genesis, err = collections.OpenGenesis(raw); err != nil {
		return fmt.Errorf("opening the genesis: %w", err)
	}
	return nil
}

// portSet hands out ports the OS found free, each a different one: every
// port stays bound until release, so the OS cannot hand it out twice. The
// ports go into the signed host records before the nodes listen on them,
// and nodes listen with SO_REUSEPORT: two hosts given one port would both
// listen on it, and the kernel would share its connections between them.
type portSet struct{ held []net.Listener }

// addr returns a TCP multiaddr on 127.0.0.1 with a free port that no
// earlier call returned.
func (p *portSet) addr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	p.held = append(p.held, l)
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port), nil
}

// release frees every port handed out, for the nodes to listen on.
func (p *portSet) release() {
	for _, l := range p.held {
		_ = l.Close()
	}
	p.held = nil
}

// Root is the sandbox's directory: a subdirectory per host (its data) and
// per agent (its data and synced folders).
func (sb *Sandbox) Root() string { return sb.root }

// Domain is the domain's name.
func (sb *Sandbox) Domain() string { return sb.opts.Domain }

// Genesis is the domain's signed genesis.
func (sb *Sandbox) Genesis() collections.Genesis { return sb.genesis }

// Hosts returns the hosts of the genesis: the servers in chain order, then
// the genesis agents.
func (sb *Sandbox) Hosts() []*Host { return sb.hosts }

// Servers returns the servers in chain order.
func (sb *Sandbox) Servers() []*Host { return sb.hosts[:sb.opts.Servers] }

// Server returns host i: server i+1 (0 is s1), or past the servers a
// genesis agent. The methods named for servers take any host's index.
func (sb *Sandbox) Server(i int) *Host { return sb.hosts[i] }

// ServerName returns the name of the host with peer ID id, or id.
func (sb *Sandbox) ServerName(id string) string {
	if i := sb.indexOf(id); i >= 0 {
		return sb.hosts[i].Name
	}
	return id
}

func (sb *Sandbox) indexOf(id string) int {
	for i, h := range sb.hosts {
		if h.ID().String() == id {
			return i
		}
	}
	return -1
}

func (sb *Sandbox) isClosed() bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.closed
}

// checkHost checks a host index.
func (sb *Sandbox) checkHost(i int) error {
	if i < 0 || i >= len(sb.hosts) {
		return fmt.Errorf("no host %d: the sandbox has %d (indexes 0 to %d)", i, len(sb.hosts), len(sb.hosts)-1)
	}
	return nil
}

// startNode starts a node for cfg in p, as Options configure it.
func (sb *Sandbox) startNode(ctx context.Context, p *Proc, cfg peer.Config) error {
	cfg.Logger = sb.opts.Log.With("host", cfg.Name)
	if sb.opts.Configure != nil {
		sb.opts.Configure(&cfg)
	}
	_, err := p.Start(ctx, cfg, sb.opts.BeforeRun)
	return err
}

// StartServer starts host i (again, after StopServer: same key, addresses
// and data) and waits until it listens. Starting a running host does
// nothing.
func (sb *Sandbox) StartServer(ctx context.Context, i int) error {
	if err := sb.checkHost(i); err != nil {
		return err
	}
	h := sb.hosts[i]
	cfg := peer.Config{
		Key: h.Key, Name: h.Name, Role: h.Role, Genesis: sb.genesis, DataDir: h.DataDir,
		Listen: []string{h.PrivateAddr},
	}
	if h.PublicAddr != h.PrivateAddr {
		cfg.PublicListen = []string{h.PublicAddr}
		cfg.PublicAddrs = []string{h.PublicAddr}
		cfg.PrivateAddrs = []string{h.PrivateAddr}
	}
	if err := sb.startNode(ctx, &h.proc, cfg); err != nil && !errors.Is(err, ErrRunning) {
		return err
	}
	return nil
}

// StopServer stops host i, as a crash would (its data stays), and waits
// until its node has stopped. Stopping a stopped host does nothing.
func (sb *Sandbox) StopServer(i int) error {
	if err := sb.checkHost(i); err != nil {
		return err
	}
	h := sb.hosts[i]
	if err := h.proc.Stop(); err != nil {
		return fmt.Errorf("stopping %s: %w", h.Name, err)
	}
	return nil
}

// Running returns the indexes of the running hosts.
func (sb *Sandbox) Running() []int {
	var out []int
	for i, h := range sb.hosts {
		if h.Node() != nil {
			out = append(out, i)
		}
	}
	return out
}

// node returns host i's running node or an error saying it is not running.
func (sb *Sandbox) node(i int) (*peer.Node, error) {
	if err := sb.checkHost(i); err != nil {
		return nil, err
	}
	if n := sb.hosts[i].Node(); n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("%s is not running", sb.hosts[i].Name)
}

// ServerStatus returns the status of host i, which must be running.
func (sb *Sandbox) ServerStatus(ctx context.Context, i int) (peer.Status, error) {
	n, err := sb.node(i)
	if err != nil {
		return peer.Status{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	st, err := n.Status(ctx)
	if err != nil {
		return peer.Status{}, fmt.Errorf("status of %s: %w", sb.hosts[i].Name, err)
	}
	return st, nil
}

// ServerState returns a copy of host i's collections.
func (sb *Sandbox) ServerState(ctx context.Context, i int) (*collections.State, error) {
	n, err := sb.node(i)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	st, err := n.State(ctx)
	if err != nil {
		return nil, fmt.Errorf("collections of %s: %w", sb.hosts[i].Name, err)
	}
	return st, nil
}

// Settled reports the index and epoch of the master once the role has
// settled: every running host names the same master in the same epoch,
// that master says it is master and is the first running server of the
// chain (whoever wins an election hands the role there once it is caught
// up), and the other running servers say they are slaves.
func (sb *Sandbox) Settled(ctx context.Context) (idx int, epoch uint64, ok bool) {
	running := sb.Running()
	if len(running) == 0 || sb.hosts[running[0]].Role != identity.RoleServer {
		return 0, 0, false
	}
	idx = running[0]
	want := sb.hosts[idx].ID().String()
	for _, i := range running {
		st, err := sb.ServerStatus(ctx, i)
		if err != nil || st.Master != want {
			return 0, 0, false // stopping, busy or not there yet: ask again
		}
		role := "slave"
		if i == idx {
			role, epoch = "master", st.Epoch
		}
		if st.Epoch != epoch || (sb.hosts[i].Role == identity.RoleServer && st.Role != role) {
			return 0, 0, false
		}
	}
	return idx, epoch, true
}

// Converged reports whether every running host has the same digest of
// every collection.
func (sb *Sandbox) Converged(ctx context.Context) bool {
	var first map[string]peer.CollectionStatus
	for _, i := range sb.Running() {
		st, err := sb.ServerStatus(ctx, i)
		if err != nil {
			return false
		}
		if first == nil {
			first = st.Collections
			continue
		}
		for k, c := range first {
			if st.Collections[k].Digest != c.Digest {
				return false
			}
		}
	}
	return true
}

// Master waits until the master role has settled (Settled) and returns
// the master's index and epoch.
func (sb *Sandbox) Master(ctx context.Context) (idx int, epoch uint64, err error) {
	err = Wait(ctx, "the running servers to agree on a master", masterTimeout, func() (bool, error) {
		if sb.isClosed() {
			return false, ErrClosed
		}
		var ok bool
		idx, epoch, ok = sb.Settled(ctx)
		return ok, nil
	})
	return idx, epoch, err
}

// WaitMaster waits until the master role has settled on host i, and
// returns the epoch.
func (sb *Sandbox) WaitMaster(ctx context.Context, i int) (uint64, error) {
	if err := sb.checkHost(i); err != nil {
		return 0, err
	}
	var epoch uint64
	err := Wait(ctx, sb.hosts[i].Name+" to be master on every running server", masterTimeout, func() (bool, error) {
		if sb.isClosed() {
			return false, ErrClosed
		}
		idx, e, ok := sb.Settled(ctx)
		epoch = e
		return ok && idx == i, nil
	})
	return epoch, err
}

// WaitConverged waits until every running host has the same digest of
// every collection.
func (sb *Sandbox) WaitConverged(ctx context.Context) error {
	return Wait(ctx, "equal collections on every running server", convergeTimeout, func() (bool, error) {
		return sb.Converged(ctx), nil
	})
}

// AddUser adds user name with home server home (an index) at the current
// master, waits for the master's receipt, and sets the user's password at
// the home server once it holds the user. It returns the receipt.
func (sb *Sandbox) AddUser(ctx context.Context, name string, home int, password string) (peer.Receipt, error) {
	if err := sb.checkHost(home); err != nil {
		return peer.Receipt{}, err
	}
	m, _, err := sb.Master(ctx)
	if err != nil {
		return peer.Receipt{}, err
	}
	u, err := collections.Put(collections.User{Name: name, HomeServer: sb.hosts[home].ID().String()})
	if err != nil {
		return peer.Receipt{}, err
	}
	n, err := sb.node(m)
	if err != nil {
		return peer.Receipt{}, fmt.Errorf("adding user %s: the master stopped: %w", name, err)
	}
	sctx, cancel := context.WithTimeout(ctx, submitTimeout)
	r, err := n.Submit(sctx, u)
	cancel()
	if err != nil {
		return peer.Receipt{}, fmt.Errorf("adding user %s at %s: %w", name, sb.hosts[m].Name, err)
	}
	if r.Queued {
		return peer.Receipt{}, fmt.Errorf("adding user %s at %s: no receipt within %v", name, sb.hosts[m].Name, submitTimeout)
	}
	if err := sb.SetPassword(ctx, name, home, password); err != nil {
		return peer.Receipt{}, err
	}
	return r, nil
}

// SetPassword sets user's password at server home (their home server),
// waiting until that server holds the user.
func (sb *Sandbox) SetPassword(ctx context.Context, user string, home int, password string) error {
	if err := sb.checkHost(home); err != nil {
		return err
	}
	s := sb.hosts[home]
	return Wait(ctx, fmt.Sprintf("%s to know user %s", s.Name, user), convergeTimeout, func() (bool, error) {
		n, err := sb.node(home)
		if err != nil {
			return false, err
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		err = n.SetPassword(cctx, user, []byte(password))
		if errors.Is(err, peer.ErrNoSuchUser) {
			return false, nil // the user record is on its way
		}
		if err != nil {
			return false, fmt.Errorf("setting the password of %s at %s: %w", user, s.Name, err)
		}
		return true, nil
	})
}

// Close stops every agent and host and waits for them, then removes the
// sandbox's directory (unless Options.Keep). It may be called more than
// once; later calls do nothing.
func (sb *Sandbox) Close() error {
	sb.mu.Lock()
	if sb.closed {
		sb.mu.Unlock()
		return nil
	}
	sb.closed = true
	agents := sb.agents
	sb.mu.Unlock()

	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	stop := func(name string, p *Proc) {
		wg.Go(func() {
			if err := p.Close(); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("stopping %s: %w", name, err))
				emu.Unlock()
			}
		})
	}
	for _, a := range agents {
		stop(a.Name, &a.proc)
	}
	wg.Wait()
	for _, h := range sb.hosts {
		stop(h.Name, &h.proc)
	}
	wg.Wait()
	if !sb.opts.Keep && sb.root != "" {
		if err := os.RemoveAll(sb.root); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", sb.root, err))
		}
	}
	return errors.Join(errs...)
}
