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

// server is one server of the example's domain: its configuration (the
// same at every start: key, address, data directory) and, while it runs,
// its node and how to stop it.
type server struct {
	cfg  peer.Config
	node *peer.Node
	stop func() error
}

// newDomain makes keys, signed host records and a genesis for servers
// s1..sn in chain order, each with a free port on 127.0.0.1 and a data
// directory under root. It starts nothing.
func newDomain(root string, n int) ([]*server, error) {
	now := time.Now()
	var servers []*server
	var hosts [][]byte
	var chain collections.Chain
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("s%d", i)
		key, err := identity.Generate(rand.Reader)
		if err != nil {
			return nil, err
		}
		// The port goes into the signed host record before the node
		// listens on it; it stays bound until every server has one, so
		// that no two get the same.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port)
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
		hosts = append(hosts, b)
		chain.Servers = append(chain.Servers, key.ID().String())
		servers = append(servers, &server{cfg: peer.Config{
			Key: key, Name: name, Role: identity.RoleServer, DataDir: filepath.Join(root, name), Listen: []string{addr},
		}})
	}
	raw, err := collections.NewGenesis(servers[0].cfg.Key,
		collections.DomainInfo{Name: "example", Settings: collections.DefaultFailover(n)}, chain, hosts, now)
	if err != nil {
		return nil, fmt.Errorf("making the genesis: %w", err)
	}
	g, err := collections.OpenGenesis(raw)
	if err != nil {
		return nil, fmt.Errorf("opening the genesis: %w", err)
	}
	for _, s := range servers {
		s.cfg.Genesis = g
	}
	return servers, nil
}

// start runs the server's node until s.stop, and waits until it listens.
func (s *server) start(ctx context.Context) error {
	n, err := peer.New(s.cfg)
	if err != nil {
		return fmt.Errorf("configuring %s: %w", s.cfg.Name, err)
	}
	nctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(nctx) }()
	select {
	case <-n.Started():
	case err := <-done:
		cancel()
		return fmt.Errorf("starting %s: %w", s.cfg.Name, err)
	case <-ctx.Done():
		cancel()
		<-done
		return ctx.Err()
	}
	s.node = n
	s.stop = func() error {
		cancel()
		s.node, s.stop = nil, nil
		return <-done
	}
	return nil
}

// statuses returns the status of every running server, by name.
func statuses(ctx context.Context, servers []*server) (map[string]peer.Status, error) {
	sts := map[string]peer.Status{}
	for _, s := range servers {
		if s.node != nil {
			st, err := s.node.Status(ctx)
			if err != nil {
				return nil, fmt.Errorf("status of %s: %w", s.cfg.Name, err)
			}
			sts[s.cfg.Name] = st
		}
	}
	return sts, nil
}

// waitFor asks the running servers for their status every 20 ms until
// settled holds for those statuses, and returns them.
func waitFor(ctx context.Context, servers []*server, what string, settled func(map[string]peer.Status) bool) (map[string]peer.Status, error) {
	for {
		sts, err := statuses(ctx, servers)
		if err == nil && settled(sts) {
			return sts, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// master waits until s says it is master and every other running server
// is its slave, all in the same epoch, and returns the epoch.
func master(ctx context.Context, servers []*server, s *server) (uint64, error) {
	sts, err := waitFor(ctx, servers, s.cfg.Name+" to be master", func(sts map[string]peer.Status) bool {
		m := sts[s.cfg.Name]
		for name, st := range sts {
			if st.Master != m.ID || st.Epoch != m.Epoch || (name != s.cfg.Name) != (st.Role == "slave") {
				return false
			}
		}
		return m.Role == "master"
	})
	return sts[s.cfg.Name].Epoch, err
}

// converged waits until every running server has the same digest of every
// collection.
func converged(ctx context.Context, servers []*server) error {
	_, err := waitFor(ctx, servers, "the same collections everywhere", func(sts map[string]peer.Status) bool {
		var first []string
		for _, st := range sts {
			if first == nil {
				first = digests(st)
			} else if !slices.Equal(digests(st), first) {
				return false
			}
		}
		return true
	})
	return err
}

// digests lists a server's digest of every collection.
func digests(st peer.Status) []string {
	var out []string
	for _, k := range collections.Kinds {
		out = append(out, st.Collections[k.String()].Digest)
	}
	return out
}

// addUser adds a user with home server home at s, the master, and waits
// for the receipt: the change is committed on a majority.
func addUser(ctx context.Context, s *server, name string, home *server) (peer.Receipt, error) {
	u, err := collections.Put(collections.User{Name: name, HomeServer: home.cfg.Key.ID().String()})
	if err != nil {
		return peer.Receipt{}, err
	}
	r, err := s.node.Submit(ctx, u)
	if err == nil && r.Queued {
		err = errors.New("no receipt")
	}
	if err != nil {
		return r, fmt.Errorf("adding user %s at %s: %w", name, s.cfg.Name, err)
	}
	return r, nil
}

func run(ctx context.Context, w io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	root, err := os.MkdirTemp("", "baton-failover-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	servers, err := newDomain(root, 3)
	if err != nil {
		return err
	}
	// Whatever happens below, every node started is stopped (and waited
	// for) before the data directories are removed.
	defer func() {
		for _, s := range servers {
			if s.stop != nil {
				err = errors.Join(err, s.stop())
			}
		}
	}()
	e1, err := startDomain(ctx, w, servers)
	if err != nil {
		return err
	}
	e2, err := killMaster(ctx, w, servers, e1)
	if err != nil {
		return err
	}
	if err := restartMaster(ctx, w, servers, e2); err != nil {
		return err
	}
	return show(ctx, w, servers)
}

// startDomain is step 1: start the domain; s1, first in the chain,
// becomes master at the epoch it returns.
func startDomain(ctx context.Context, w io.Writer, servers []*server) (uint64, error) {
	s1 := servers[0]
	fmt.Fprintln(w, "1. Three servers, chain s1 -> s2 -> s3, all on 127.0.0.1:")
	for _, s := range servers {
		if err := s.start(ctx); err != nil {
			return 0, err
		}
		fmt.Fprintf(w, "   started %s at %s (ID %s)\n", s.cfg.Name, s.cfg.Listen[0], s.cfg.Key.ID())
	}
	t0 := time.Now()
	e1, err := master(ctx, servers, s1)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(w, "   s1 is master, epoch %d (all three agree after %v)\n", e1, round(time.Since(t0)))
	r, err := addUser(ctx, s1, "ann", s1)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(w, "   added user ann at the master s1 (certified in epoch %d)\n", r.Certified.Epoch())
	if err := converged(ctx, servers); err != nil {
		return 0, err
	}
	fmt.Fprintln(w, "   s2 and s3 have ann too")
	return e1, nil
}

// killMaster is step 2: the master fails and s2, next in the chain, is
// promoted above epoch e1, at the epoch it returns.
func killMaster(ctx context.Context, w io.Writer, servers []*server, e1 uint64) (uint64, error) {
	s1, s2 := servers[0], servers[1]
	fmt.Fprintln(w, "\n2. Killing the master s1.")
	killed := time.Now()
	if err := s1.stop(); err != nil {
		return 0, err
	}
	e2, err := master(ctx, servers, s2)
	if err != nil {
		return 0, err
	}
	if e2 <= e1 {
		return 0, fmt.Errorf("s2 promoted in epoch %d, want above %d", e2, e1)
	}
	fmt.Fprintf(w, "   s2 promoted to master, epoch %d: the baton passed in %v\n", e2, round(time.Since(killed)))
	r, err := addUser(ctx, s2, "bob", s2)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(w, "   added user bob at the new master s2 (certified in epoch %d, %v after the kill): the domain still accepts changes\n",
		r.Certified.Epoch(), round(time.Since(killed)))
	return e2, nil
}

// restartMaster is step 3: s1 comes back from its data directory, catches
// up from s2 (bob, which it never saw) and takes the role back in an epoch
// above e2.
func restartMaster(ctx context.Context, w io.Writer, servers []*server, e2 uint64) error {
	s1 := servers[0]
	fmt.Fprintln(w, "\n3. Restarting s1 with the same data directory.")
	restarted := time.Now()
	if err := s1.start(ctx); err != nil {
		return err
	}
	e3, err := master(ctx, servers, s1)
	if err != nil {
		return err
	}
	if e3 <= e2 {
		return fmt.Errorf("s1 took the role back in epoch %d, want above %d", e3, e2)
	}
	took := time.Since(restarted)
	state, err := s1.node.State(ctx)
	if err != nil {
		return err
	}
	if _, ok := state.User("bob"); !ok {
		return errors.New("s1 took the master role back without bob, acknowledged by s2 while s1 was down")
	}
	fmt.Fprintf(w, "   s1 caught up (it has bob) and is master again, epoch %d: handed back in %v; s2 is a slave again\n", e3, round(took))
	return converged(ctx, servers)
}

// show is step 4: every server holds the same collections, with both
// users.
func show(ctx context.Context, w io.Writer, servers []*server) error {
	fmt.Fprintln(w, "\n4. What each server holds:")
	names := map[string]string{} // peer ID -> name
	for _, s := range servers {
		names[s.cfg.Key.ID().String()] = s.cfg.Name
	}
	sts, err := statuses(ctx, servers)
	if err != nil {
		return err
	}
	for _, s := range servers {
		st := sts[s.cfg.Name]
		state, err := s.node.State(ctx)
		if err != nil {
			return err
		}
		var users []string
		for _, u := range state.Users() {
			users = append(users, fmt.Sprintf("%s (home %s)", u.Name, names[u.HomeServer]))
		}
		slices.Sort(users)
		var parts []string
		for i, dg := range digests(st) {
			parts = append(parts, fmt.Sprintf("%s %.16s", collections.Kinds[i], dg))
		}
		fmt.Fprintf(w, "   %s %-6s epoch %d  users: %s\n", s.cfg.Name, st.Role, st.Epoch, strings.Join(users, ", "))
		fmt.Fprintf(w, "      digests: %s\n", strings.Join(parts, "  "))
		for _, name := range []string{"ann", "bob"} {
			if _, ok := state.User(name); !ok {
				return fmt.Errorf("%s lacks user %s", s.cfg.Name, name)
			}
		}
		if !slices.Equal(digests(st), digests(sts["s1"])) {
			return errors.New("the servers' collections differ")
		}
	}
	fmt.Fprintln(w, "   identical on s1, s2 and s3: ann (added in the first epoch) and bob (added during the outage) both survived")
	return nil
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
