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
	// Domain is the domain's name (default "sandbox").
	Domain string
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
	// Configure, if set, adjusts every node's configuration (servers and
	// agents) before it starts, e.g. the password hashing cost in tests.
	Configure func(*peer.Config)
}

// Sandbox is a running domain. Its methods may be called from several
// goroutines.
type Sandbox struct {
	opts    Options
	root    string
	genesis collections.Genesis
	servers []*Server

	mu     sync.Mutex
	agents []*Agent
	closed bool
}

// Server is one server of the sandbox. Its key, addresses and data
// directory stay the same across StopServer and StartServer.
type Server struct {
	Name string
	Key  *identity.PrivateKey
	// PrivateAddr is the address servers dial each other on; PublicAddr
	// the one agents dial (and log in at).
	PrivateAddr, PublicAddr string
	DataDir                 string

	mu     sync.Mutex
	node   *peer.Node
	cancel context.CancelFunc
	done   chan error
}

// ID is the server's peer ID.
func (s *Server) ID() lpeer.ID { return s.Key.ID() }

// PublicP2P is the server's public address with its /p2p/ID: what a user
// logs in at.
func (s *Server) PublicP2P() string { return s.PublicAddr + "/p2p/" + s.ID().String() }

// Node is the server's running node, or nil while it is stopped.
func (s *Server) Node() *peer.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.node
}

// New makes a domain of o.Servers servers on 127.0.0.1 in a new temporary
// directory, starts them and waits until s1, the first of the chain, is
// master on all of them. On error everything started is stopped and the
// directory removed.
func New(ctx context.Context, o Options) (_ *Sandbox, err error) {
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
	root, err := os.MkdirTemp(o.Dir, "baton-sandbox-")
	if err != nil {
		return nil, fmt.Errorf("making the sandbox directory: %w", err)
	}
	sb := &Sandbox{opts: o, root: root}
	defer func() {
		if err != nil {
			_ = sb.Close()
		}
	}()
	if err := sb.makeDomain(); err != nil {
		return nil, err
	}
	for i := range sb.servers {
		if err := sb.StartServer(ctx, i); err != nil {
			return nil, err
		}
	}
	if _, err := sb.WaitMaster(ctx, 0); err != nil {
		return nil, err
	}
	return sb, nil
}

// makeDomain makes the servers' keys, host records and data directories
// and signs the genesis (by s1).
func (sb *Sandbox) makeDomain() error {
	now := time.Now()
	var hosts [][]byte
	var chain collections.Chain
	for i := 1; i <= sb.opts.Servers; i++ {
		name := fmt.Sprintf("s%d", i)
		key, err := identity.Generate(rand.Reader)
		if err != nil {
			return err
		}
		priv, err := freeAddr()
		if err != nil {
			return err
		}
		pub, err := freeAddr()
		if err != nil {
			return err
		}
		env, err := identity.SignHostRecord(key, identity.HostRecord{
			Name: name, PublicKey: key.Public(), Role: identity.RoleServer, Issued: now.UnixNano(),
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
		chain.Servers = append(chain.Servers, key.ID().String())
		sb.servers = append(sb.servers, &Server{Name: name, Key: key, PrivateAddr: priv, PublicAddr: pub, DataDir: dir})
	}
	raw, err := collections.NewGenesis(sb.servers[0].Key,
		collections.DomainInfo{Name: sb.opts.Domain, Settings: sb.opts.Settings}, chain, hosts, now)
	if err != nil {
		return fmt.Errorf("making the genesis: %w", err)
	}
	if sb.genesis, err = collections.OpenGenesis(raw); err != nil {
		return fmt.Errorf("opening the genesis: %w", err)
	}
	return nil
}

// freeAddr returns a TCP multiaddr on 127.0.0.1 with a port the OS found
// free. The port goes into the signed host record before a node listens on
// it.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port), nil
}

// Root is the sandbox's directory: a subdirectory per server (its data)
// and per agent (its data and synced folders).
func (sb *Sandbox) Root() string { return sb.root }

// Domain is the domain's name.
func (sb *Sandbox) Domain() string { return sb.opts.Domain }

// Genesis is the domain's signed genesis.
func (sb *Sandbox) Genesis() collections.Genesis { return sb.genesis }

// Servers returns the servers in chain order.
func (sb *Sandbox) Servers() []*Server { return sb.servers }

// Server returns server i (0 is s1).
func (sb *Sandbox) Server(i int) *Server { return sb.servers[i] }

// ServerName returns the name of the server with peer ID id, or id.
func (sb *Sandbox) ServerName(id string) string {
	for _, s := range sb.servers {
		if s.ID().String() == id {
			return s.Name
		}
	}
	return id
}

func (sb *Sandbox) isClosed() bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.closed
}

// nodeLogger is the logger of the node named name.
func (sb *Sandbox) nodeLogger(name string) *slog.Logger { return sb.opts.Log.With("host", name) }

// checkServer checks a server index.
func (sb *Sandbox) checkServer(i int) error {
	if i < 0 || i >= len(sb.servers) {
		return fmt.Errorf("no server %d: the sandbox has s1 to s%d (indexes 0 to %d)", i, len(sb.servers), len(sb.servers)-1)
	}
	return nil
}

// StartServer starts server i (again, after StopServer: same key, addresses
// and data) and waits until it listens. Starting a running server does
// nothing.
func (sb *Sandbox) StartServer(ctx context.Context, i int) error {
	if err := sb.checkServer(i); err != nil {
		return err
	}
	s := sb.servers[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	if sb.isClosed() { // checked under s.mu: Close stops s after this
		return ErrClosed
	}
	if s.node != nil {
		return nil
	}
	cfg := peer.Config{
		Key: s.Key, Name: s.Name, Role: identity.RoleServer, Genesis: sb.genesis, DataDir: s.DataDir,
		Listen:       []string{s.PrivateAddr},
		PublicListen: []string{s.PublicAddr},
		PublicAddrs:  []string{s.PublicAddr},
		PrivateAddrs: []string{s.PrivateAddr},
		Logger:       sb.nodeLogger(s.Name),
	}
	if sb.opts.Configure != nil {
		sb.opts.Configure(&cfg)
	}
	n, cancel, done, err := startNode(ctx, cfg)
	if err != nil {
		return fmt.Errorf("starting %s: %w", s.Name, err)
	}
	s.node, s.cancel, s.done = n, cancel, done
	return nil
}

// startNode runs a node for cfg until its cancel is called, and waits
// until it listens. The node's lifetime is not tied to ctx, which bounds
// only the wait: the sandbox stops its nodes itself.
func startNode(ctx context.Context, cfg peer.Config) (*peer.Node, context.CancelFunc, chan error, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	n, err := peer.New(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	nctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(nctx) }()
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	var werr error
	select {
	case <-n.Started():
		return n, cancel, done, nil
	case err := <-done:
		cancel()
		if err == nil {
			err = errors.New("the node stopped at once")
		}
		return nil, nil, nil, err
	case <-t.C:
		werr = fmt.Errorf("not listening after %v", startTimeout)
	case <-ctx.Done():
		werr = ctx.Err()
	}
	cancel()
	_ = waitDone(done)
	return nil, nil, nil, werr
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

// StopServer stops server i, as a crash would (its data stays), and waits
// until its node has stopped. Stopping a stopped server does nothing.
func (sb *Sandbox) StopServer(i int) error {
	if err := sb.checkServer(i); err != nil {
		return err
	}
	return sb.servers[i].stop()
}

func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.node == nil {
		return nil
	}
	s.cancel()
	err := waitDone(s.done)
	s.node, s.cancel, s.done = nil, nil, nil
	if err != nil {
		return fmt.Errorf("stopping %s: %w", s.Name, err)
	}
	return nil
}

// Running returns the indexes of the running servers.
func (sb *Sandbox) Running() []int {
	var out []int
	for i, s := range sb.servers {
		if s.Node() != nil {
			out = append(out, i)
		}
	}
	return out
}

// ServerStatus returns the status of server i, which must be running.
func (sb *Sandbox) ServerStatus(ctx context.Context, i int) (peer.Status, error) {
	if err := sb.checkServer(i); err != nil {
		return peer.Status{}, err
	}
	s := sb.servers[i]
	n := s.Node()
	if n == nil {
		return peer.Status{}, fmt.Errorf("%s is not running", s.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	st, err := n.Status(ctx)
	if err != nil {
		return peer.Status{}, fmt.Errorf("status of %s: %w", s.Name, err)
	}
	return st, nil
}

// ServerState returns a copy of server i's collections.
func (sb *Sandbox) ServerState(ctx context.Context, i int) (*collections.State, error) {
	if err := sb.checkServer(i); err != nil {
		return nil, err
	}
	s := sb.servers[i]
	n := s.Node()
	if n == nil {
		return nil, fmt.Errorf("%s is not running", s.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	st, err := n.State(ctx)
	if err != nil {
		return nil, fmt.Errorf("collections of %s: %w", s.Name, err)
	}
	return st, nil
}

// agreedMaster reports the index and epoch of the master if every running
// server names the same master in the same epoch, that master says it is
// master, and the others say they are slaves.
func (sb *Sandbox) agreedMaster(ctx context.Context) (idx int, epoch uint64, ok bool) {
	running := sb.Running()
	if len(running) == 0 {
		return 0, 0, false
	}
	idx = -1
	for _, i := range running {
		st, err := sb.ServerStatus(ctx, i)
		if err != nil {
			return 0, 0, false // stopping or busy: ask again
		}
		if st.Master == "" || (idx >= 0 && (st.Master != sb.servers[idx].ID().String() || st.Epoch != epoch)) {
			return 0, 0, false
		}
		if idx < 0 {
			idx = sb.indexOf(st.Master)
			epoch = st.Epoch
			if idx < 0 || sb.servers[idx].Node() == nil {
				return 0, 0, false
			}
		}
		want := "slave"
		if i == idx {
			want = "master"
		}
		if st.Role != want {
			return 0, 0, false
		}
	}
	return idx, epoch, true
}

func (sb *Sandbox) indexOf(id string) int {
	for i, s := range sb.servers {
		if s.ID().String() == id {
			return i
		}
	}
	return -1
}

// Master waits until every running server agrees on a master (that master
// says it is master, the others are its slaves, all in the same epoch),
// the first running server of the chain, and returns its index and the
// epoch.
func (sb *Sandbox) Master(ctx context.Context) (idx int, epoch uint64, err error) {
	err = poll(ctx, "the running servers to agree on a master", masterTimeout, func() (bool, error) {
		if sb.isClosed() {
			return false, ErrClosed
		}
		var ok bool
		idx, epoch, ok = sb.agreedMaster(ctx)
		// The chain is the leadership order: whoever wins an election
		// hands the role to the first running server once it is caught
		// up, so the master settles there.
		running := sb.Running()
		return ok && len(running) > 0 && idx == running[0], nil
	})
	return idx, epoch, err
}

// WaitMaster waits until server i is master and every running server
// agrees, and returns the epoch.
func (sb *Sandbox) WaitMaster(ctx context.Context, i int) (uint64, error) {
	if err := sb.checkServer(i); err != nil {
		return 0, err
	}
	var epoch uint64
	err := poll(ctx, sb.servers[i].Name+" to be master on every running server", masterTimeout, func() (bool, error) {
		if sb.isClosed() {
			return false, ErrClosed
		}
		idx, e, ok := sb.agreedMaster(ctx)
		epoch = e
		return ok && idx == i, nil
	})
	return epoch, err
}

// WaitConverged waits until every running server has the same digest of
// every collection.
func (sb *Sandbox) WaitConverged(ctx context.Context) error {
	return poll(ctx, "equal collections on every running server", convergeTimeout, func() (bool, error) {
		var first map[string]peer.CollectionStatus
		for _, i := range sb.Running() {
			st, err := sb.ServerStatus(ctx, i)
			if err != nil {
				return false, nil
			}
			if first == nil {
				first = st.Collections
				continue
			}
			for k, c := range first {
				if st.Collections[k].Digest != c.Digest {
					return false, nil
				}
			}
		}
		return true, nil
	})
}

// AddUser adds user name with home server home (an index) at the current
// master, waits for the master's receipt, and sets the user's password at
// the home server once it holds the user. It returns the receipt.
func (sb *Sandbox) AddUser(ctx context.Context, name string, home int, password string) (peer.Receipt, error) {
	if err := sb.checkServer(home); err != nil {
		return peer.Receipt{}, err
	}
	m, _, err := sb.Master(ctx)
	if err != nil {
		return peer.Receipt{}, err
	}
	u, err := collections.Put(collections.User{Name: name, HomeServer: sb.servers[home].ID().String()})
	if err != nil {
		return peer.Receipt{}, err
	}
	n := sb.servers[m].Node()
	if n == nil {
		return peer.Receipt{}, fmt.Errorf("adding user %s: the master %s stopped", name, sb.servers[m].Name)
	}
	sctx, cancel := context.WithTimeout(ctx, submitTimeout)
	r, err := n.Submit(sctx, u)
	cancel()
	if err != nil {
		return peer.Receipt{}, fmt.Errorf("adding user %s at %s: %w", name, sb.servers[m].Name, err)
	}
	if r.Queued {
		return peer.Receipt{}, fmt.Errorf("adding user %s at %s: no receipt within %v", name, sb.servers[m].Name, submitTimeout)
	}
	if err := sb.SetPassword(ctx, name, home, password); err != nil {
		return peer.Receipt{}, err
	}
	return r, nil
}

// SetPassword sets user's password at server home (their home server),
// waiting until that server holds the user.
func (sb *Sandbox) SetPassword(ctx context.Context, user string, home int, password string) error {
	if err := sb.checkServer(home); err != nil {
		return err
	}
	s := sb.servers[home]
	return poll(ctx, fmt.Sprintf("%s to know user %s", s.Name, user), convergeTimeout, func() (bool, error) {
		n := s.Node()
		if n == nil {
			return false, fmt.Errorf("%s is not running", s.Name)
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		err := n.SetPassword(cctx, user, []byte(password))
		if errors.Is(err, peer.ErrNoSuchUser) {
			return false, nil // the user record is on its way
		}
		if err != nil {
			return false, fmt.Errorf("setting the password of %s at %s: %w", user, s.Name, err)
		}
		return true, nil
	})
}

// Close stops every agent and server and waits for them, then removes the
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
	stop := func(f func() error) {
		wg.Go(func() {
			if err := f(); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		})
	}
	for _, a := range agents {
		stop(a.stop)
	}
	wg.Wait()
	for _, s := range sb.servers {
		stop(s.stop)
	}
	wg.Wait()
	if !sb.opts.Keep && sb.root != "" {
		if err := os.RemoveAll(sb.root); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", sb.root, err))
		}
	}
	return errors.Join(errs...)
}

// poll calls cond every pollInterval until it returns true or an error,
// timeout passes or ctx ends.
func poll(ctx context.Context, what string, timeout time.Duration, cond func() (bool, error)) error {
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
