package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer"
)

// testGenesis is a domain "test" with the chain s1, s2, s3 and an agent
// "lap", all with identitytest keys. s1 signs it.
func testGenesis(t *testing.T) collections.Genesis {
	t.Helper()
	var chain []string
	var hosts [][]byte
	for _, name := range []string{"s1", "s2", "s3"} {
		hosts = append(hosts, marshalEnv(t, identitytest.HostRecord(t, name, identity.RoleServer, "/ip4/192.0.2.1/tcp/7400")))
		chain = append(chain, identitytest.Key(name).ID().String())
	}
	hosts = append(hosts, marshalEnv(t, identitytest.HostRecord(t, "lap", identity.RoleAgent)))
	raw, err := collections.NewGenesis(identitytest.Key("s1"),
		collections.DomainInfo{Name: "test", Settings: collections.DefaultFailover(3)},
		collections.Chain{Servers: chain}, hosts, testNow)
	if err != nil {
		t.Fatal(err)
	}
	g, err := collections.OpenGenesis(raw)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func marshalEnv(t *testing.T, e *identity.Envelope) []byte {
	t.Helper()
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeDaemon stands in for a running peer.Node: it holds a real
// collections.State and certifies submitted updates with the master's key
// at once, so the real write rules apply.
type fakeDaemon struct {
	mu      sync.Mutex
	self    *identity.PrivateKey // the host the daemon runs as
	master  *identity.PrivateKey // nil: no master reachable
	state   *collections.State
	epoch   uint64
	seq     uint64
	queue   bool                 // Submit answers Queued
	reject  error                // Submit fails with this
	elect   int                  // Status says "candidate", with no master, this many more times
	reelect bool                 // after a chain change: an election (elect, and the next Domain Submit refused)
	refuse  int                  // refuse this many more Domain Submits with a NotMasterError naming no master
	submits []collections.Update // every update submitted, as given
}

func newFakeDaemon(t *testing.T, self string) *fakeDaemon {
	t.Helper()
	st, err := collections.NewState(testGenesis(t))
	if err != nil {
		t.Fatal(err)
	}
	return &fakeDaemon{self: identitytest.Key(self), master: identitytest.Key("s1"), state: st, epoch: 3}
}

// set changes the daemon under its lock.
func (f *fakeDaemon) set(change func(f *fakeDaemon)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// as makes the daemon run as host name.
func (f *fakeDaemon) as(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.self = identitytest.Key(name)
}

func (f *fakeDaemon) ID() lpeer.ID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.self.ID()
}

func (f *fakeDaemon) name(id lpeer.ID) string {
	if r, ok := f.state.HostByID(id); ok {
		return r.Name
	}
	return ""
}

func (f *fakeDaemon) Status(context.Context) (peer.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := peer.Status{
		Name:        f.name(f.self.ID()),
		ID:          f.self.ID().String(),
		Role:        "slave",
		Epoch:       f.epoch,
		Domain:      f.state.DomainInfo().Name,
		Listen:      []string{"/ip4/127.0.0.1/tcp/40001"},
		Peers:       []peer.PeerStatus{{ID: identitytest.Key("s3").ID().String(), Name: "s3", Addr: "/ip4/10.0.0.3/tcp/7400", Network: "private"}},
		Collections: map[string]peer.CollectionStatus{},
		Outbox:      2,
		Quarantined: []peer.QuarantineEvent{},
	}
	switch {
	case f.elect > 0:
		f.elect--
		st.Role = "candidate"
	case f.master != nil:
		st.Master, st.MasterName = f.master.ID().String(), f.name(f.master.ID())
		if f.master.ID() == f.self.ID() {
			st.Role = "master"
		}
	}
	for _, k := range collections.Kinds {
		d := f.state.Digest(k)
		st.Collections[k.String()] = peer.CollectionStatus{Records: f.state.Count(k), Digest: hex.EncodeToString(d[:]), LastUpdate: testNow}
	}
	return st, nil
}

func (f *fakeDaemon) State(context.Context) (*collections.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Clone(), nil
}

func (f *fakeDaemon) Submit(_ context.Context, u collections.Update) (peer.Receipt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.submits = append(f.submits, u)
	if u.Collection == collections.Domain && (f.master == nil || f.master.ID() != f.self.ID()) {
		nm := &peer.NotMasterError{}
		if f.master != nil {
			nm.Master, nm.MasterName = f.master.ID(), f.name(f.master.ID())
		}
		return peer.Receipt{}, nm
	}
	if f.reject != nil {
		return peer.Receipt{}, f.reject
	}
	if f.refuse > 0 && u.Collection == collections.Domain {
		f.refuse--
		return peer.Receipt{}, &peer.NotMasterError{}
	}
	if f.queue || f.master == nil {
		return peer.Receipt{Queued: true}, nil
	}
	u = f.state.Prepare(f.self.ID(), u, testNow)
	su, err := collections.SignUpdate(f.self, u)
	if err != nil {
		return peer.Receipt{}, fmt.Errorf("%w: %v", peer.ErrRejected, err)
	}
	p, err := f.state.VerifyProposal(su, f.master.ID())
	if err != nil {
		return peer.Receipt{}, fmt.Errorf("%w: %v", peer.ErrRejected, err)
	}
	f.seq++
	c, v, err := p.Certify(f.master, f.epoch, f.seq)
	if err != nil {
		return peer.Receipt{}, err
	}
	if vd := f.state.Apply(v); vd.Outcome != collections.Accepted {
		return peer.Receipt{}, fmt.Errorf("%w: %v", peer.ErrRejected, vd.Err)
	}
	if f.reelect && u.Key == collections.ChainKey {
		f.elect, f.refuse = 2, 1
	}
	return peer.Receipt{Certified: c}, nil
}

// lastSubmits returns the updates submitted since the last call.
func (f *fakeDaemon) takeSubmits() []collections.Update {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.submits
	f.submits = nil
	return s
}

// serveFake serves the control API for d on home's socket until the test
// ends.
func serveFake(t *testing.T, home string, d daemon) {
	t.Helper()
	if err := makeHome(home); err != nil {
		t.Fatal(err)
	}
	ln, err := listenControl(home)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := &controlServer{
		d:       d,
		dataDir: filepath.Join(home, dataDirName),
		now:     func() time.Time { return testNow },
		rand:    rand.Reader,
		log:     slog.New(slog.DiscardHandler),
	}
	go func() { done <- serveControl(ctx, ln, srv) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serveControl: %v", err)
		}
	})
}

// fakeNode is a fakeDaemon that runs, for 'baton run' tests.
type fakeNode struct {
	*fakeDaemon
	cfg     peer.Config
	started chan struct{}
	runErr  error // returned by Run at once, if set
}

func (n *fakeNode) Started() <-chan struct{} { return n.started }

func (n *fakeNode) Run(ctx context.Context) error {
	if n.runErr != nil {
		return n.runErr
	}
	close(n.started)
	<-ctx.Done()
	return nil
}
