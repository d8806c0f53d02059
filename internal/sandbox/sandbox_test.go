package sandbox_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/internal/sandbox"
	"github.com/baton-sync/baton/peer"
)

// newSandbox starts a sandbox of n servers for a test, closed (and checked
// gone) at its end.
func newSandbox(t *testing.T, ctx context.Context, n int) *sandbox.Sandbox {
	t.Helper()
	o := sandbox.Options{
		Servers: n,
		Dir:     t.TempDir(),
		Configure: func(c *peer.Config) {
			c.PasswordKDF = identitytest.FastKDF
		},
	}
	if os.Getenv("BATON_TEST_LOG") != "" {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	sb, err := sandbox.New(ctx, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, err := os.Stat(sb.Root()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Close, stat %s: %v; want it gone", sb.Root(), err)
		}
	})
	return sb
}

// TestShareAndSyncBothWays: three servers, alice (home s1) and bob (home
// s2) each on a laptop; alice shares a folder read-write with bob, a file
// written on either side arrives on the other.
func TestShareAndSyncBothWays(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a domain of three servers and two agents")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sb := newSandbox(t, ctx, 3)

	if m, epoch, err := sb.Master(ctx); err != nil || m != 0 || epoch == 0 {
		t.Fatalf("Master = %d, epoch %d, %v; want s1 (0)", m, epoch, err)
	}
	if _, err := sb.AddUser(ctx, "alice", 0, "alice's password"); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.AddUser(ctx, "bob", 1, "bob's password"); err != nil {
		t.Fatal(err)
	}
	alice, err := sb.AddAgent(ctx, "alice-laptop", "alice", "alice's password")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := sb.AddAgent(ctx, "bob-laptop", "bob", "bob's password")
	if err != nil {
		t.Fatal(err)
	}
	if bob.LoginServer != "s1" || bob.HomeServer != "s2" {
		t.Errorf("bob logged in at %s, home %s; want at s1, redirected to s2", bob.LoginServer, bob.HomeServer)
	}
	if _, err := sb.AddAgent(ctx, "eve-laptop", "alice", "wrong"); !errors.Is(err, peer.ErrLoginDenied) {
		t.Errorf("AddAgent with a wrong password: %v; want ErrLoginDenied", err)
	}

	id, aliceDir, err := alice.CreateFolder(ctx, "Projects")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Share(ctx, id, "bob", collections.RightReadWrite); err != nil {
		t.Fatal(err)
	}
	bobDir, err := bob.Accept(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if bobDir != filepath.Join(bob.FoldersDir, "Projects") {
		t.Errorf("Accept = %s; want %s", bobDir, filepath.Join(bob.FoldersDir, "Projects"))
	}

	hello := []byte("hello from alice\n")
	if err := os.WriteFile(filepath.Join(aliceDir, "hello.txt"), hello, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sandbox.WaitFile(ctx, filepath.Join(bobDir, "hello.txt"), hello); err != nil {
		t.Fatal(err)
	}
	reply := []byte("and back from bob\n")
	if err := os.MkdirAll(filepath.Join(bobDir, "notes"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bobDir, "notes", "reply.txt"), reply, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sandbox.WaitFile(ctx, filepath.Join(aliceDir, "notes", "reply.txt"), reply); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*sandbox.Agent{alice, bob} {
		if err := a.WaitInSync(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMasterStopAndReturn: with s1 stopped, another takes over in a higher epoch
// and accepts a user; s1 restarted from its data takes the role back and
// has that user.
func TestMasterStopAndReturn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a domain of three servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sb := newSandbox(t, ctx, 3)
	_, e1, err := sb.Master(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.StopServer(0); err != nil {
		t.Fatal(err)
	}
	if err := sb.StopServer(0); err != nil {
		t.Errorf("StopServer of a stopped server: %v", err)
	}
	// Usually s2, next in the chain; s3 when s1 stops so soon after its
	// election that s3 has not yet heard s2 say it holds epoch e1's data
	// (role.Machine.rightful).
	m, e2, err := sb.Master(ctx)
	if err != nil || m == 0 || e2 <= e1 {
		t.Fatalf("after stopping s1: master %d, epoch %d, %v; want s2 or s3 above epoch %d", m, e2, err, e1)
	}
	if _, err := sb.AddUser(ctx, "carol", 2, "carol's password"); err != nil {
		t.Fatal(err)
	}
	if err := sb.StartServer(ctx, 0); err != nil {
		t.Fatal(err)
	}
	e3, err := sb.WaitMaster(ctx, 0)
	if err != nil || e3 <= e2 {
		t.Fatalf("after restarting s1: epoch %d, %v; want s1 master above epoch %d", e3, err, e2)
	}
	st, err := sb.ServerState(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.User("carol"); !ok {
		t.Error("s1 took the role back without carol, added while it was down")
	}
	if err := sb.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCloseTwiceAndKeep: Close is idempotent; with Keep the directory stays.
func TestCloseTwiceAndKeep(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a domain")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sb, err := sandbox.New(ctx, sandbox.Options{Servers: 1, Dir: t.TempDir(), Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sb.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(sb.Root(), "s1")); err != nil {
		t.Errorf("with Keep, s1's directory: %v", err)
	}
	if err := sb.StartServer(ctx, 0); !errors.Is(err, sandbox.ErrClosed) {
		t.Errorf("StartServer after Close: %v; want ErrClosed", err)
	}
	if _, err := sb.AddAgent(ctx, "late", "nobody", "x"); !errors.Is(err, sandbox.ErrClosed) {
		t.Errorf("AddAgent after Close: %v; want ErrClosed", err)
	}
}

// TestNewCancelled: a cancelled context fails New and leaves nothing behind.
func TestNewCancelled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sandbox.New(ctx, sandbox.Options{Servers: 2, Dir: dir}); !errors.Is(err, context.Canceled) {
		t.Fatalf("New with a cancelled context: %v; want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

// TestMakeStartsNothing: Make builds the domain Options describe (servers
// s1..sN in the chain, genesis agents a1..aN outside it, the given keys and
// time, one address each with OneAddress) and starts no node.
func TestMakeStartsNothing(t *testing.T) {
	created := time.Date(2025, time.June, 1, 12, 0, 0, 0, time.UTC)
	sb, err := sandbox.Make(sandbox.Options{
		Servers: 2, GenesisAgents: 1, OneAddress: true, Key: identitytest.Key, Created: created, Dir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	want := []struct {
		name string
		role identity.Role
	}{{"s1", identity.RoleServer}, {"s2", identity.RoleServer}, {"a1", identity.RoleAgent}}
	if len(sb.Hosts()) != len(want) || len(sb.Servers()) != 2 {
		t.Fatalf("%d hosts, %d servers; want 3 hosts, 2 servers", len(sb.Hosts()), len(sb.Servers()))
	}
	for i, w := range want {
		h := sb.Server(i)
		if h.Name != w.name || h.Role != w.role || !h.Key.Equal(identitytest.Key(w.name)) {
			t.Errorf("host %d: %s, role %s, ID %s; want %s, role %s, its test key", i, h.Name, h.Role, h.ID(), w.name, w.role)
		}
		if h.PrivateAddr != h.PublicAddr {
			t.Errorf("%s: private %s, public %s; want one address", h.Name, h.PrivateAddr, h.PublicAddr)
		}
		if st, err := os.Stat(h.DataDir); err != nil || !st.IsDir() {
			t.Errorf("%s: data directory %s: %v", h.Name, h.DataDir, err)
		}
	}
	g := sb.Genesis()
	chain := []string{sb.Server(0).ID().String(), sb.Server(1).ID().String()}
	if !slices.Equal(g.Chain.Servers, chain) || len(g.Hosts) != 3 || !g.CreatedAt().Equal(created) {
		t.Errorf("genesis: chain %v, %d hosts, created %v; want %v, 3, %v", g.Chain.Servers, len(g.Hosts), g.CreatedAt(), chain, created)
	}
	if r := sb.Running(); len(r) != 0 {
		t.Errorf("Running after Make = %v; want none", r)
	}
}
