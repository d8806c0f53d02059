package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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
	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
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
	mu sync.Mutex
	// usage is what FolderHistoryUsage answers (nil: no history here).
	usage  *peer.HistoryUsage
	self   *identity.PrivateKey // the host the daemon runs as
	master *identity.PrivateKey // nil: no master reachable
	state  *collections.State
	// certExpires is the device certificate's expiry DeviceStatus gives.
	certExpires time.Time
	epoch       uint64
	seq         uint64
	queue       bool // Submit answers Queued
	// revoking is the devices whose revocation Submit queued.
	revoking map[lpeer.ID]bool
	reject   error                // Submit fails with this
	elect    int                  // Status says "candidate", with no master, this many more times
	reelect  bool                 // after a chain change: an election (elect, and the next Domain Submit refused)
	refuse   int                  // refuse this many more Domain Submits with a NotMasterError naming no master
	submits  []collections.Update // every update submitted, as given

	// Users and devices.
	passwords map[string]string // set by SetPassword

	// An agent: agent makes Status say so; user is the logged-in user
	// ("" for none); agentErr, if set, is what the hosting server answers
	// every folder change with (peer.ErrQueued makes the change anyway).
	agent    bool
	user     string
	agentErr error
	// The sync engine.
	synced    map[string]string         // the last SetFolders
	statuses  []foldersync.FolderStatus // FolderStatus answers, in turn; the last one repeats
	reverted  []string                  // RevertFolder calls
	rescanned []string                  // RescanFolder calls
}

func newFakeDaemon(t *testing.T, self string) *fakeDaemon {
	t.Helper()
	st, err := collections.NewState(testGenesis(t))
	if err != nil {
		t.Fatal(err)
	}
	return &fakeDaemon{self: identitytest.Key(self), master: identitytest.Key("s1"), state: st, epoch: 3, revoking: map[lpeer.ID]bool{}}
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
	case f.agent:
		st.Role = "agent"
		if f.master != nil {
			st.Master, st.MasterName = f.master.ID().String(), f.name(f.master.ID())
		}
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
	c, err := f.certifyAs(f.self, u)
	if err != nil {
		return peer.Receipt{}, err
	}
	if f.reelect && u.Key == collections.ChainKey {
		f.elect, f.refuse = 2, 1
	}
	return peer.Receipt{Certified: c}, nil
}

// certifyAs signs u as author, certifies it as the master and applies it,
// under f.mu.
func (f *fakeDaemon) certifyAs(author *identity.PrivateKey, u collections.Update) (collections.Certified, error) {
	u = f.state.Prepare(author.ID(), u, testNow)
	su, err := collections.SignUpdate(author, u)
	if err != nil {
		return collections.Certified{}, fmt.Errorf("%w: %v", peer.ErrRejected, err)
	}
	p, err := f.state.VerifyProposal(su, f.master.ID())
	if err != nil {
		return collections.Certified{}, fmt.Errorf("%w: %v", peer.ErrRejected, err)
	}
	f.seq++
	c, v, err := p.Certify(f.master, f.epoch, f.seq)
	if err != nil {
		return collections.Certified{}, err
	}
	if vd := f.state.Apply(v); vd.Outcome != collections.Accepted {
		return collections.Certified{}, fmt.Errorf("%w: %v", peer.ErrRejected, vd.Err)
	}
	return c, nil
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
func serveFake(t *testing.T, home string, d control.Daemon) {
	t.Helper()
	if err := makeHome(home); err != nil {
		t.Fatal(err)
	}
	ln, err := control.Listen(home)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := control.Config{
		Daemon:  d,
		DataDir: filepath.Join(home, dataDirName),
		Now:     func() time.Time { return testNow },
		Rand:    rand.Reader,
		Log:     slog.New(slog.DiscardHandler),
	}
	if f, ok := d.(*fakeDaemon); ok && f.agent {
		cfg.Home = home
	}
	srv := control.NewServer(cfg)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serving the control API: %v", err)
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

// --- users and devices ---

func (f *fakeDaemon) SetPassword(_ context.Context, user string, password []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	home, ok := f.state.HomeServer(user)
	switch {
	case !ok:
		return fmt.Errorf("%w: %s is not a user of the domain", peer.ErrNoSuchUser, user)
	case home != f.self.ID():
		return &peer.NotHomeServerError{User: user, Home: home, HomeName: f.name(home)}
	}
	if f.passwords == nil {
		f.passwords = map[string]string{}
	}
	f.passwords[user] = string(password)
	return nil
}

// addDevice publishes a device record of user, named name, certified by
// the user's home server, valid for a week from testNow.
func (f *fakeDaemon) addDevice(t *testing.T, user, device, name string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	home, ok := f.state.HomeServer(user)
	if !ok {
		t.Fatalf("addDevice: no user %s", user)
	}
	homeKey := identitytest.Key(f.name(home))
	cert, err := collections.IssueDeviceCert(homeKey, collections.DeviceCert{
		User: user, Device: identitytest.Key(device).ID().String(), Name: name, Server: home.String(),
		Issued: testNow.Add(-time.Hour).UnixNano(), Expires: testNow.Add(7 * 24 * time.Hour).UnixNano(),
	})
	if err != nil {
		t.Fatal(err)
	}
	u, err := collections.Put(collections.Device{Cert: cert})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.certifyAs(homeKey, u); err != nil {
		t.Fatalf("addDevice: %v", err)
	}
}

func (f *fakeDaemon) Devices(_ context.Context, user string) ([]peer.DeviceInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []peer.DeviceInfo
	for _, dev := range f.state.Devices() {
		c, err := dev.Open()
		if err != nil || user != "" && c.User != user {
			continue
		}
		_, valid := f.state.ValidDevice(c.DeviceID(), testNow)
		out = append(out, peer.DeviceInfo{
			ID: c.Device, User: c.User, Name: c.Name, Server: c.Server, ServerName: f.name(c.ServerID()),
			Issued: c.IssuedAt(), Expires: c.ExpiresAt(), Revoked: dev.Revoked, Valid: valid,
			RevocationQueued: !dev.Revoked && f.revoking[c.DeviceID()],
		})
	}
	return out, nil
}

func (f *fakeDaemon) RevokeDevice(ctx context.Context, id lpeer.ID) (peer.Receipt, error) {
	f.mu.Lock()
	dev, c, ok := f.state.Device(id)
	if !ok {
		f.mu.Unlock()
		return peer.Receipt{}, fmt.Errorf("%w: %s", peer.ErrNoSuchDevice, id)
	}
	home, _ := f.state.HomeServer(c.User)
	if home != f.self.ID() {
		f.mu.Unlock()
		return peer.Receipt{}, &peer.NotHomeServerError{User: c.User, Home: home, HomeName: f.name(home)}
	}
	f.mu.Unlock()
	if dev.Revoked {
		return peer.Receipt{}, nil
	}
	dev.Revoked = true
	u, err := collections.Put(dev)
	if err != nil {
		return peer.Receipt{}, err
	}
	r, err := f.Submit(ctx, u)
	if err == nil && r.Queued {
		f.mu.Lock()
		f.revoking[id] = true
		f.mu.Unlock()
	}
	return r, err
}

func (f *fakeDaemon) DeviceStatus(context.Context) (peer.DeviceStatus, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.user == "" {
		return peer.DeviceStatus{}, false, nil
	}
	home, _ := f.state.HomeServer(f.user)
	return peer.DeviceStatus{User: f.user, Device: f.self.ID().String(), HomeServer: home.String(), Accepted: true, Expires: f.certExpires}, true, nil
}

// --- agent folder changes, made as the hosting server would ---

// folderChange certifies folder as its hosting server, unless agentErr
// says otherwise.
func (f *fakeDaemon) folderChange(folder collections.Folder) error {
	if f.agentErr != nil && !errors.Is(f.agentErr, peer.ErrQueued) {
		return f.agentErr
	}
	srv, err := lpeer.Decode(folder.Server)
	if err != nil {
		return err
	}
	u, err := collections.Put(folder)
	if err != nil {
		return err
	}
	if _, err := f.certifyAs(identitytest.Key(f.name(srv)), u); err != nil {
		return err
	}
	return f.agentErr
}

func (f *fakeDaemon) CreateFolder(ctx context.Context, name string) (collections.Folder, error) {
	return f.CreateFolderWith(ctx, name, collections.OptionsPatch{})
}

// CreateFolderWith makes the folder as the home server does, with the
// collections' builder.
func (f *fakeDaemon) CreateFolderWith(_ context.Context, name string, p collections.OptionsPatch) (collections.Folder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.user == "" {
		return collections.Folder{}, peer.ErrNotLoggedIn
	}
	home, _ := f.state.HomeServer(f.user)
	var b [8]byte
	rand.Read(b[:])
	_, folder, err := f.state.CreateFolderWith(hex.EncodeToString(b[:]), name, f.user, home, p)
	if err != nil {
		return collections.Folder{}, err
	}
	return folder, f.folderChange(folder)
}

// SetFolderOptions sets folder id's options as its owner may, with the
// collections' builder as the home server does.
func (f *fakeDaemon) SetFolderOptions(_ context.Context, id string, p collections.OptionsPatch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	folder, ok := f.state.Folder(id)
	if !ok {
		return fmt.Errorf("%w: %s", peer.ErrNoSuchFolder, id)
	}
	if folder.Owner != f.user {
		return fmt.Errorf("%w: only the owner of folder %s, %s, sets its options", peer.ErrFolderDenied, folder.Name, folder.Owner)
	}
	_, folder, err := f.state.SetFolderOptions(id, f.user, p)
	if err != nil {
		return err
	}
	return f.folderChange(folder)
}

// memberChange changes folder id's members as user asks, checking what
// the hosting server checks.
func (f *fakeDaemon) memberChange(id string, ownerOnly bool, change func(m map[string]collections.Right)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	folder, ok := f.state.Folder(id)
	if !ok {
		return fmt.Errorf("%w: %s", peer.ErrNoSuchFolder, id)
	}
	if ownerOnly && folder.Owner != f.user {
		return fmt.Errorf("%w: only the owner of folder %s, %s, shares it", peer.ErrFolderDenied, folder.Name, folder.Owner)
	}
	m := map[string]collections.Right{}
	for u, r := range folder.Members {
		m[u] = r
	}
	change(m)
	folder.Members = m
	return f.folderChange(folder)
}

func (f *fakeDaemon) ShareFolder(_ context.Context, id, user string, right collections.Right) error {
	return f.memberChange(id, true, func(m map[string]collections.Right) { m[user] = right })
}

func (f *fakeDaemon) UnshareFolder(_ context.Context, id, user string) error {
	return f.memberChange(id, true, func(m map[string]collections.Right) { delete(m, user) })
}

func (f *fakeDaemon) LeaveFolder(_ context.Context, id string) error {
	return f.memberChange(id, false, func(m map[string]collections.Right) { delete(m, f.user) })
}

// --- the sync engine ---

func (f *fakeDaemon) SetFolders(_ context.Context, m map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.synced = m
	return nil
}

func (f *fakeDaemon) FolderStatus(_ context.Context, id string) (foldersync.FolderStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.syncs(id) {
		return foldersync.FolderStatus{}, fmt.Errorf("%w: %s", foldersync.ErrUnknownFolder, id)
	}
	if len(f.statuses) == 0 {
		return foldersync.FolderStatus{ID: id, State: foldersync.StateIdle, InSync: true}, nil
	}
	st := f.statuses[0]
	if len(f.statuses) > 1 {
		f.statuses = f.statuses[1:]
	}
	st.ID = id
	return st, nil
}

func (f *fakeDaemon) FolderHistory(context.Context, string, string) ([]peer.FolderVersion, error) {
	return nil, peer.ErrNoHistory
}

func (f *fakeDaemon) FolderHistoryUsage(context.Context, string) (peer.HistoryUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.usage == nil {
		return peer.HistoryUsage{}, peer.ErrNoHistory
	}
	return *f.usage, nil
}

func (f *fakeDaemon) RestoreFolder(context.Context, string, peer.RestoreRequest) (foldersync.RestoreResult, error) {
	return foldersync.RestoreResult{}, peer.ErrNoHistory
}

func (f *fakeDaemon) ExportFolder(context.Context, string, peer.HistoryPoint, string) (uint64, error) {
	return 0, peer.ErrNoHistory
}

func (f *fakeDaemon) RevertFolder(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reverted = append(f.reverted, id)
	return nil
}

func (f *fakeDaemon) RescanFolder(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.syncs(id) {
		return fmt.Errorf("%w: %s", foldersync.ErrUnknownFolder, id)
	}
	f.rescanned = append(f.rescanned, id)
	return nil
}

// syncs reports whether the engine syncs folder id: an agent's folder it
// was given, or a folder a server hosts (as its home server or its
// replica). Under f.mu.
func (f *fakeDaemon) syncs(id string) bool {
	if f.agent {
		_, ok := f.synced[id]
		return ok
	}
	fo, ok := f.state.Folder(id)
	return ok && f.state.Hosting(fo, f.self.ID())
}

// PromoteForce refuses: the fake has no consensus log (the real one is
// tested with real daemons).
func (f *fakeDaemon) PromoteForce(context.Context) (peer.Promotion, error) {
	return peer.Promotion{}, fmt.Errorf("%w: the test daemon is its own master", peer.ErrHasMaster)
}
