package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// fakeLogin is a home server s2 that knows ann with password "right":
// it certifies the device for a week from testNow.
func fakeLogin(t *testing.T, g collections.Genesis, calls *[]string) loginFunc {
	return func(_ context.Context, key *identity.PrivateKey, addr, user string, password []byte, deviceName string) (peer.LoginResult, error) {
		*calls = append(*calls, user+"@"+addr+" as "+deviceName)
		if user != "ann" || string(password) != "right" {
			return peer.LoginResult{}, peer.ErrLoginDenied
		}
		expires := testNow.Add(7 * 24 * time.Hour)
		cert, err := collections.IssueDeviceCert(identitytest.Key("s2"), collections.DeviceCert{
			User: user, Device: key.ID().String(), Name: deviceName, Server: id("s2"),
			Issued: testNow.UnixNano(), Expires: expires.UnixNano(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return peer.LoginResult{Cert: cert, Genesis: g.Marshal(), HomeServer: identitytest.Key("s2").ID(),
			HomeAddrs: []string{"/ip4/192.0.2.1/tcp/7400"}, User: user, Expires: expires}, nil
	}
}

const s1Addr = "/ip4/192.0.2.1/tcp/7400/p2p/"

func TestLogin(t *testing.T) {
	g := testGenesis(t)
	var calls []string
	c := newCLI(t)
	c.login = fakeLogin(t, g, &calls)
	lap := c.initJSON("--agent", "--name", "lap")
	addr := s1Addr + id("s1")
	right := writeFile(t, filepath.Join(t.TempDir(), "pw"), "right\n")
	wrong := writeFile(t, filepath.Join(t.TempDir(), "pw"), "wrong\n")

	// A wrong password: one line, exit 1, nothing saved.
	c.fail(1, []string{"login", "ann@" + addr, "--password-file", wrong}, "login: wrong user name or password")
	for _, f := range []string{deviceCertFile, genesisFile, loginFile} {
		if _, err := os.Stat(filepath.Join(c.home, f)); err == nil {
			t.Errorf("a failed login saved %s", f)
		}
	}

	out := c.ok("login", "ann@"+addr, "--password-file", right)
	want := "logged in as ann on device " + lap.ID + " (home server s2), certificate valid until 2026-03-11T05:06:07Z\n"
	if out != want {
		t.Errorf("login printed %q; want %q", out, want)
	}
	if calls[len(calls)-1] != "ann@"+addr+" as lap" {
		t.Errorf("login called %q; want the address and the host name as device name", calls[len(calls)-1])
	}
	cert, ok, err := loadDeviceCert(c.home)
	if err != nil || !ok {
		t.Fatalf("device.cert: %v, %v", ok, err)
	}
	if dc, _ := collections.OpenDeviceCert(cert); dc.User != "ann" || dc.Device != lap.ID {
		t.Errorf("saved certificate %+v", dc)
	}
	if got := mode(t, filepath.Join(c.home, deviceCertFile)); got != 0o600 {
		t.Errorf("device.cert mode %04o; want 0600", got)
	}
	if saved, err := loadGenesis(c.home); err != nil || saved.Hash() != g.Hash() {
		t.Errorf("domain.genesis: %v", err)
	}
	li, err := os.ReadFile(filepath.Join(c.home, loginFile))
	if err != nil || !bytes.Contains(li, []byte(`home_server = '`+id("s2")+`'`)) || !bytes.Contains(li, []byte(`user = 'ann'`)) {
		t.Errorf("login.toml (%v):\n%s", err, li)
	}

	// --json, a device name, the password from the environment.
	c.vars["BATON_PASSWORD"] = "right"
	var res loginResultJSON
	if err := json.Unmarshal([]byte(c.ok("login", "ann@"+addr, "--device-name", "Ann's laptop", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.User != "ann" || res.DeviceName != "Ann's laptop" || res.HomeServerName != "s2" || res.Domain != "test" || res.Home != c.home {
		t.Errorf("login --json = %+v", res)
	}
	delete(c.vars, "BATON_PASSWORD")

	// At a terminal the password is asked once.
	c.tty = true
	c.answers = []string{"right"}
	c.ok("login", "ann@"+addr)
	if c.prompts[len(c.prompts)-1] != "Password for ann: " {
		t.Errorf("prompts %q", c.prompts)
	}
	c.tty = false

	c.fail(1, []string{"login", "ann@" + addr}, "no password: give --password-file FILE or set BATON_PASSWORD")
	c.fail(2, []string{"login", "ann"}, "want USER@ADDRESS")
	c.fail(2, []string{"login", "ann@/ip4/192.0.2.1/tcp/7400"}, "ending in /p2p/<server ID>")
	c.fail(2, []string{"login", "a b@" + addr}, "user name")

	// Another domain is refused without --force.
	other := newCLI(t)
	other.ok("init", "--server", "--name", "x1", "--listen", "/ip4/127.0.0.1/tcp/0")
	x1Host := filepath.Join(t.TempDir(), "x1.host")
	other.ok("keys", "export", "-o", x1Host)
	other.ok("domain", "create", "--name", "elsewhere", "--chain", x1Host)
	og, err := loadGenesis(other.home)
	if err != nil {
		t.Fatal(err)
	}
	c.login = fakeLogin(t, og, &calls)
	c.fail(1, []string{"login", "ann@" + addr, "--password-file", right}, "this agent already belongs to domain test", "give --force")
	c.ok("login", "ann@"+addr, "--password-file", right, "--force")

	// Servers do not log in.
	s := newCLI(t)
	s.login = c.login
	s.ok("init", "--server", "--name", "s9", "--listen", "/ip4/127.0.0.1/tcp/0")
	s.fail(1, []string{"login", "ann@" + addr, "--password-file", right}, "this host is a server; users log in on desktop agents")
	// No key at all.
	n := newCLI(t)
	n.fail(1, []string{"login", "ann@" + addr, "--password-file", right}, "no host key")
}

// TestRunAgent: 'baton run' on a logged-in agent passes the device
// certificate, saves renewed ones, and gives the node the synced folders.
func TestRunAgent(t *testing.T) {
	g := testGenesis(t)
	var calls []string
	c := newCLI(t)
	c.login = fakeLogin(t, g, &calls)
	c.ok("init", "--agent", "--name", "lap", "--listen", "/ip4/127.0.0.1/tcp/0")

	// Not logged in: run says how to.
	c.fail(1, []string{"run"}, "this agent is not logged in: run 'baton login USER@ADDRESS --home "+c.home+"' first")

	c.vars["BATON_PASSWORD"] = "right"
	c.ok("login", "ann@"+s1Addr+id("s1"))
	cert, _, _ := loadDeviceCert(c.home)
	photos := t.TempDir()
	if err := control.SaveFolders(c.home, []control.LocalFolder{{ID: "00000000000000aa", Name: "Photos", Owner: "ann", Path: photos}}); err != nil {
		t.Fatal(err)
	}

	nodes := make(chan *fakeNode, 1)
	c.newNode = func(cfg peer.Config) (node, error) {
		fd := newFakeDaemon(t, "lap")
		fd.agent, fd.user = true, "ann"
		n := &fakeNode{fakeDaemon: fd, cfg: cfg, started: make(chan struct{})}
		nodes <- n
		return n, nil
	}
	stop := startRun(t, c)
	var n *fakeNode
	select {
	case n = <-nodes:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not build a node")
	}
	if !bytes.Equal(n.cfg.DeviceCert, cert) || n.cfg.OnDeviceCert == nil || n.cfg.Role != identity.RoleAgent || len(n.cfg.PublicListen) != 0 {
		t.Fatalf("run built the agent with DeviceCert %d bytes, OnDeviceCert %v, role %s", len(n.cfg.DeviceCert), n.cfg.OnDeviceCert != nil, n.cfg.Role)
	}
	if got := n.cfg.Folders["00000000000000aa"]; got != photos || len(n.cfg.Folders) != 1 {
		t.Errorf("run gave the node the folders %v; want Photos at %s", n.cfg.Folders, photos)
	}
	// A renewed certificate replaces device.cert.
	renewed, err := collections.IssueDeviceCert(identitytest.Key("s2"), collections.DeviceCert{
		User: "ann", Device: id("lap"), Name: "lap", Server: id("s2"),
		Issued: testNow.Add(time.Hour).UnixNano(), Expires: testNow.Add(8 * 24 * time.Hour).UnixNano(),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.cfg.OnDeviceCert(renewed)
	waitFor(t, "the renewed certificate saved", func() bool {
		got, _, _ := loadDeviceCert(c.home)
		return bytes.Equal(got, renewed)
	})
	// Agent folder commands reach this daemon.
	if out := c.ok("folder", "list"); !strings.Contains(out, "no folders") {
		t.Errorf("folder list against the agent daemon printed %q", out)
	}
	if r := stop(); r.code != 0 {
		t.Fatalf("run: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestRunPublicListen: a server's public_listen reaches the node.
func TestRunPublicListen(t *testing.T) {
	c := newCLI(t)
	info := c.initJSON("--server", "--name", "s1", "--listen", "/ip4/127.0.0.1/tcp/0", "--public-listen", "/ip4/127.0.0.1/tcp/7401")
	if strings.Join(info.PublicListen, " ") != "/ip4/127.0.0.1/tcp/7401" {
		t.Errorf("init --json public_listen = %v", info.PublicListen)
	}
	host := filepath.Join(t.TempDir(), "s1.host")
	c.ok("keys", "export", "-o", host)
	c.ok("domain", "create", "--name", "example", "--chain", host)
	nodes := make(chan *fakeNode, 1)
	c.newNode = func(cfg peer.Config) (node, error) {
		n := &fakeNode{fakeDaemon: newFakeDaemon(t, "s1"), cfg: cfg, started: make(chan struct{})}
		nodes <- n
		return n, nil
	}
	stop := startRun(t, c)
	select {
	case n := <-nodes:
		if strings.Join(n.cfg.PublicListen, " ") != "/ip4/127.0.0.1/tcp/7401" || n.cfg.DeviceCert != nil {
			t.Errorf("run built the server with PublicListen %v", n.cfg.PublicListen)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not build a node")
	}
	stop()

	a := newCLI(t)
	a.fail(2, []string{"init", "--agent", "--public-listen", "/ip4/127.0.0.1/tcp/7401"}, "--public-listen is for servers")
	a.fail(2, []string{"init", "--server", "--public-listen", "nonsense"}, "public listen address")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAgentEndToEnd: a real agent node through the CLI against a real
// server: log in, run, create and share a folder, list it.
func TestAgentEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts libp2p nodes")
	}
	cl := peertest.NewPublicCluster(t, 1, collections.DefaultFailover(1))
	cl.Configure = func(_ *peertest.Member, cfg *peer.Config) { cfg.PasswordKDF = identitytest.FastKDF }
	cl.StartAll()
	cl.WaitMaster(20 * time.Second)
	for _, name := range []string{"ann", "bob"} {
		if _, err := cl.Submit(0, mustPut(t, collections.User{Name: name, HomeServer: cl.Members[0].Key.ID().String()})); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Node(0).SetPassword(ctx, "ann", []byte("right")); err != nil {
		t.Fatal(err)
	}

	c := newCLI(t)
	c.ok("init", "--agent", "--name", "lap", "--listen", "/ip4/127.0.0.1/tcp/0")
	c.vars["BATON_PASSWORD"] = "right"
	c.ok("login", "ann@"+cl.PublicP2P(0))
	stop := startRun(t, c)
	waitFor(t, "the agent daemon to be accepted", func() bool {
		r := c.run("folder", "list")
		return r.code == 0
	})
	photos := filepath.Join(t.TempDir(), "Photos")
	var r result
	deadline := time.Now().Add(15 * time.Second)
	for {
		// The agent learns its user's home server by anti-entropy.
		r = c.run("folder", "create", "Photos", photos)
		if r.code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: folder Photos (") {
		t.Fatalf("folder create: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if out := c.ok("folder", "share", "Photos", "bob", "--rights", "ro"); !strings.HasPrefix(out, "ok: folder Photos (") {
		t.Errorf("folder share printed %q", out)
	}
	c.fail(1, []string{"folder", "leave", "Photos"}, "ann owns folder Photos and cannot leave it")
	list := c.ok("folder", "list")
	if !strings.Contains(list, "Photos") || !strings.Contains(list, photos) {
		t.Errorf("folder list printed\n%s", list)
	}
	st := cl.State(0)
	found := false
	for _, f := range st.Folders() {
		found = found || f.Name == "Photos" && f.Owner == "ann" && f.Members["bob"] == collections.RightReadOnly
	}
	if !found {
		t.Errorf("the server's Catalog lacks ann's Photos shared with bob: %+v", st.Folders())
	}
	if r := stop(); r.code != 0 {
		t.Errorf("run: exit %d, stderr %q", r.code, r.stderr)
	}
}
