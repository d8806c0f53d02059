package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer"
)

// Deadlines for the waits below. They are generous: the default failover
// settings pass the baton in a few seconds.
const (
	startTimeout    = 20 * time.Second // a node listening
	stopTimeout     = 20 * time.Second // a node's Run returning after cancel
	masterTimeout   = 20 * time.Second // a master every running server agrees on
	convergeTimeout = 15 * time.Second // equal digests everywhere
	callTimeout     = 5 * time.Second  // one Status or State call
	submitTimeout   = 10 * time.Second // a receipt from the master
	pollInterval    = 20 * time.Millisecond
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "failover example:", err)
		if errors.Is(err, context.Canceled) {
			os.Exit(130)
		}
		os.Exit(1)
	}
}

// server is one member of the demo domain: its key, its address and data
// directory (kept across restarts), and while it runs, its node.
type server struct {
	name    string
	key     *identity.PrivateKey
	addr    string
	dataDir string

	node   *peer.Node
	cancel context.CancelFunc
	done   chan error
}

func (s *server) id() string { return s.key.ID().String() }

// start runs the server's node until stop or until ctx ends, and waits for
// it to listen.
func (s *server) start(ctx context.Context, g collections.Genesis) error {
	if s.node != nil {
		return fmt.Errorf("%s is already running", s.name)
	}
	n, err := peer.New(peer.Config{
		Key:     s.key,
		Name:    s.name,
		Role:    identity.RoleServer,
		Genesis: g,
		DataDir: s.dataDir,
		Listen:  []string{s.addr},
	})
	if err != nil {
		return fmt.Errorf("configuring %s: %w", s.name, err)
	}
	nctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(nctx) }()
	s.node, s.cancel, s.done = n, cancel, done

	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case <-n.Started():
		return nil
	case err := <-done:
		s.node = nil
		cancel()
		return fmt.Errorf("starting %s: %w", s.name, err)
	case <-t.C:
		// Leave the node recorded so that stop cancels and waits for it.
		return fmt.Errorf("%s did not start within %v", s.name, startTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop cancels the server's Run and waits for it to return. It is a no-op
// for a server that is not running.
func (s *server) stop() error {
	if s.node == nil {
		return nil
	}
	s.cancel()
	s.node = nil
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case err := <-s.done:
		if err != nil {
			return fmt.Errorf("%s stopped with: %w", s.name, err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%s did not stop within %v", s.name, stopTimeout)
	}
}

func (s *server) status(ctx context.Context) (peer.Status, error) {
	if s.node == nil {
		return peer.Status{}, fmt.Errorf("%s is not running", s.name)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	st, err := s.node.Status(ctx)
	if err != nil {
		return peer.Status{}, fmt.Errorf("status of %s: %w", s.name, err)
	}
	return st, nil
}

func (s *server) state(ctx context.Context) (*collections.State, error) {
	if s.node == nil {
		return nil, fmt.Errorf("%s is not running", s.name)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	st, err := s.node.State(ctx)
	if err != nil {
		return nil, fmt.Errorf("collections of %s: %w", s.name, err)
	}
	return st, nil
}

// addUser adds a user at s, which must be the master, and waits for the
// certified receipt.
func (s *server) addUser(ctx context.Context, name string, home *server) (peer.Receipt, error) {
	u, err := collections.Put(collections.User{Name: name, HomeServer: home.id()})
	if err != nil {
		return peer.Receipt{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, submitTimeout)
	defer cancel()
	r, err := s.node.Submit(ctx, u)
	if err != nil {
		return peer.Receipt{}, fmt.Errorf("adding user %s at %s: %w", name, s.name, err)
	}
	if r.Queued {
		return peer.Receipt{}, fmt.Errorf("adding user %s at %s: no receipt within %v", name, s.name, submitTimeout)
	}
	return r, nil
}

// domain is the demo's three servers and their signed genesis.
type domain struct {
	genesis collections.Genesis
	servers []*server
}

// newDomain makes keys, host records and a genesis for servers s1..sn in
// chain order, each with a data directory under root and a free port on
// 127.0.0.1. It starts nothing.
func newDomain(root string, n int) (*domain, error) {
	now := time.Now()
	d := &domain{}
	var hosts [][]byte
	var chain collections.Chain
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("s%d", i)
		key, err := identity.Generate(rand.Reader)
		if err != nil {
			return nil, err
		}
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)
		env, err := identity.SignHostRecord(key, identity.HostRecord{
			Name: name, PublicKey: key.Public(), Role: identity.RoleServer, Issued: now.UnixNano(),
			PrivateAddrs: []string{addr}, PublicAddrs: []string{addr},
		})
		if err != nil {
			return nil, fmt.Errorf("signing the host record of %s: %w", name, err)
		}
		b, err := env.Marshal()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
		hosts = append(hosts, b)
		chain.Servers = append(chain.Servers, key.ID().String())
		d.servers = append(d.servers, &server{name: name, key: key, addr: addr, dataDir: dir})
	}
	raw, err := collections.NewGenesis(d.servers[0].key,
		collections.DomainInfo{Name: "example", Settings: collections.DefaultFailover(n)}, chain, hosts, now)
	if err != nil {
		return nil, fmt.Errorf("making the genesis: %w", err)
	}
	if d.genesis, err = collections.OpenGenesis(raw); err != nil {
		return nil, fmt.Errorf("opening the genesis: %w", err)
	}
	return d, nil
}

// freePort asks the OS for a free TCP port on 127.0.0.1. The port goes into
// the signed host record before the node listens on it.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (d *domain) running() []*server {
	var out []*server
	for _, s := range d.servers {
		if s.node != nil {
			out = append(out, s)
		}
	}
	return out
}

// name returns the name of the server with peer ID id, or id itself.
func (d *domain) name(id string) string {
	for _, s := range d.servers {
		if s.id() == id {
			return s.name
		}
	}
	return id
}

// stopAll stops every running server and reports the first failure.
func (d *domain) stopAll() error {
	var errs []error
	for _, s := range d.servers {
		errs = append(errs, s.stop())
	}
	return errors.Join(errs...)
}

// waitFor polls cond until it returns true, it fails, or timeout passes.
func waitFor(ctx context.Context, what string, timeout time.Duration, cond func() (bool, error)) error {
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

// waitMaster waits until want reports itself master and every running
// server names it as master in the same epoch, with the others slaves. It
// returns that epoch.
func (d *domain) waitMaster(ctx context.Context, want *server) (uint64, error) {
	var epoch uint64
	err := waitFor(ctx, want.name+" to be master on every running server", masterTimeout, func() (bool, error) {
		st, err := want.status(ctx)
		if err != nil {
			return false, err
		}
		if st.Role != "master" || st.Master != want.id() {
			return false, nil
		}
		epoch = st.Epoch
		for _, s := range d.running() {
			if s == want {
				continue
			}
			st, err := s.status(ctx)
			if err != nil {
				return false, err
			}
			if st.Role != "slave" || st.Master != want.id() || st.Epoch != epoch {
				return false, nil
			}
		}
		return true, nil
	})
	return epoch, err
}

// waitConverged waits until every running server has the same digest for
// every collection.
func (d *domain) waitConverged(ctx context.Context) error {
	return waitFor(ctx, "equal collection digests on every running server", convergeTimeout, func() (bool, error) {
		var first map[string]peer.CollectionStatus
		for _, s := range d.running() {
			st, err := s.status(ctx)
			if err != nil {
				return false, err
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

func run(ctx context.Context, w io.Writer) (err error) {
	root, err := os.MkdirTemp("", "baton-failover-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)

	d, err := newDomain(root, 3)
	if err != nil {
		return err
	}
	// Whatever happens below, every node started is stopped (and waited
	// for) before the data directories are removed.
	defer func() {
		if serr := d.stopAll(); serr != nil && err == nil {
			err = serr
		}
	}()
	s1, s2 := d.servers[0], d.servers[1]

	// 1. Start the domain; s1, first in the chain, becomes master.
	fmt.Fprintln(w, "1. Three servers, chain s1 -> s2 -> s3, all on 127.0.0.1:")
	for _, s := range d.servers {
		if err := s.start(ctx, d.genesis); err != nil {
			return err
		}
		fmt.Fprintf(w, "   started %s at %s (ID %s)\n", s.name, s.addr, s.key.ID())
	}
	t0 := time.Now()
	e1, err := d.waitMaster(ctx, s1)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   s1 is master, epoch %d (all three agree after %v)\n", e1, round(time.Since(t0)))
	r, err := s1.addUser(ctx, "ann", s1)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   added user ann at the master s1 (certified in epoch %d)\n", r.Certified.Epoch())
	if err := d.waitConverged(ctx); err != nil {
		return err
	}
	fmt.Fprintln(w, "   s2 and s3 have ann too")

	// 2. The master fails: s2, next in the chain, is promoted.
	fmt.Fprintln(w, "\n2. Killing the master s1.")
	killed := time.Now()
	if err := s1.stop(); err != nil {
		return err
	}
	e2, err := d.waitMaster(ctx, s2)
	if err != nil {
		return err
	}
	if e2 <= e1 {
		return fmt.Errorf("s2 promoted in epoch %d, want above %d", e2, e1)
	}
	fmt.Fprintf(w, "   s2 promoted to master, epoch %d: the baton passed in %v\n", e2, round(time.Since(killed)))
	r, err = s2.addUser(ctx, "bob", s2)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   added user bob at the new master s2 (certified in epoch %d, %v after the kill): the domain still accepts changes\n",
		r.Certified.Epoch(), round(time.Since(killed)))

	// 3. s1 comes back from its data directory, catches up from s2 (bob,
	// which it never saw) and takes the role back in a higher epoch.
	fmt.Fprintln(w, "\n3. Restarting s1 with the same data directory.")
	restarted := time.Now()
	if err := s1.start(ctx, d.genesis); err != nil {
		return err
	}
	e3, err := d.waitMaster(ctx, s1)
	if err != nil {
		return err
	}
	if e3 <= e2 {
		return fmt.Errorf("s1 took the role back in epoch %d, want above %d", e3, e2)
	}
	took := time.Since(restarted)
	state, err := s1.state(ctx)
	if err != nil {
		return err
	}
	if _, ok := state.User("bob"); !ok {
		return errors.New("s1 took the master role back without bob, acknowledged by s2 while s1 was down")
	}
	fmt.Fprintf(w, "   s1 caught up (it has bob) and is master again, epoch %d: handed back in %v; s2 is a slave again\n", e3, round(took))
	if err := d.waitConverged(ctx); err != nil {
		return err
	}

	// 4. Every server holds the same collections, with both users.
	fmt.Fprintln(w, "\n4. What each server holds:")
	digests := map[string]string{}
	identical := true
	for _, s := range d.servers {
		st, err := s.status(ctx)
		if err != nil {
			return err
		}
		state, err := s.state(ctx)
		if err != nil {
			return err
		}
		var users []string
		for _, u := range state.Users() {
			users = append(users, fmt.Sprintf("%s (home %s)", u.Name, d.name(u.HomeServer)))
		}
		slices.Sort(users)
		var parts, full []string
		for _, k := range collections.Kinds {
			dg := st.Collections[k.String()].Digest
			parts = append(parts, fmt.Sprintf("%s %s", k, short(dg)))
			full = append(full, dg)
		}
		fmt.Fprintf(w, "   %s %-6s epoch %d  users: %s\n", s.name, st.Role, st.Epoch, strings.Join(users, ", "))
		fmt.Fprintf(w, "      digests: %s\n", strings.Join(parts, "  "))
		digests[s.name] = strings.Join(full, " ")
		for _, name := range []string{"ann", "bob"} {
			if _, ok := state.User(name); !ok {
				return fmt.Errorf("%s lacks user %s", s.name, name)
			}
		}
		if digests[s.name] != digests[s1.name] {
			identical = false
		}
	}
	if !identical {
		fmt.Fprintln(w, "   the servers differ")
		return errors.New("the servers' collections differ")
	}
	fmt.Fprintln(w, "   identical on s1, s2 and s3: ann (added in the first epoch) and bob (added during the outage) both survived")
	return nil
}

// short abbreviates a hex digest for display; the comparison uses all of it.
func short(hexDigest string) string {
	if len(hexDigest) > 16 {
		return hexDigest[:16]
	}
	return hexDigest
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
