package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
)

// startRun runs 'baton run' in the background until the returned stop is
// called; stop returns its result.
func startRun(t *testing.T, c *cli, args ...string) (stop func() result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan result, 1)
	go func() { res <- c.runCtx(ctx, append([]string{"run"}, args...)...) }()
	var r *result
	t.Cleanup(func() {
		cancel()
		if r == nil {
			<-res
		}
	})
	return func() result {
		cancel()
		got := <-res
		r = &got
		return got
	}
}

func TestRunWiring(t *testing.T) {
	s1 := newServer(t, "s1", "server")
	s1.ok("domain", "create", "--name", "example", "--chain", s1.host)
	g, err := loadGenesis(s1.home)
	if err != nil {
		t.Fatal(err)
	}
	nodes := make(chan *fakeNode, 1)
	s1.newNode = func(cfg peer.Config) (node, error) {
		n := &fakeNode{fakeDaemon: newFakeDaemon(t, "s1"), cfg: cfg, started: make(chan struct{})}
		nodes <- n
		return n, nil
	}
	stop := startRun(t, s1.cli, "--log-level", "debug")
	var n *fakeNode
	select {
	case n = <-nodes:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not build a node")
	}
	select {
	case <-n.started:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not start the node")
	}

	cfg := n.cfg
	if cfg.Key.ID().String() != s1.id || cfg.Name != "s1" || cfg.Role != "server" || cfg.Genesis.Hash() != g.Hash() ||
		cfg.DataDir != filepath.Join(s1.home, dataDirName) || strings.Join(cfg.Listen, " ") != "/ip4/127.0.0.1/tcp/0" ||
		len(cfg.PublicAddrs) != 0 || len(cfg.PrivateAddrs) != 0 || cfg.Logger == nil {
		t.Errorf("run built the node with %+v", cfg)
	}
	if got := mode(t, cfg.DataDir); got != 0o700 {
		t.Errorf("data dir mode = %04o; want 0700", got)
	}
	if got := mode(t, control.SocketPath(s1.home)); got != 0o600 {
		t.Errorf("control socket mode = %04o; want 0600", got)
	}
	if out := s1.ok("status"); !strings.Contains(out, "role:        master") {
		t.Errorf("status against the running daemon printed\n%s", out)
	}
	s1.okMutation("user", "add", "ann", "--home-server", "s2")
	s1.fail(1, []string{"run"}, "a baton daemon is already running in "+s1.home)

	r := stop()
	if r.code != 0 {
		t.Fatalf("run after cancel: exit %d, stderr %q; want 0", r.code, r.stderr)
	}
	for _, want := range []string{"msg=starting", "msg=started", "msg=stopped", s1.id, "control: user ann added"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("run logged\n%s\nwant %q", r.stderr, want)
		}
	}
	if _, err := os.Stat(control.SocketPath(s1.home)); err == nil {
		t.Error("run left the control socket behind")
	}

	// A node that fails: exit 1, socket removed.
	s1.newNode = func(cfg peer.Config) (node, error) {
		return &fakeNode{fakeDaemon: newFakeDaemon(t, "s1"), started: make(chan struct{}), runErr: errors.New("boom")}, nil
	}
	s1.fail(1, []string{"run", "--log-level", "warn"}, "daemon: boom")
	if _, err := os.Stat(control.SocketPath(s1.home)); err == nil {
		t.Error("a failed run left the control socket behind")
	}
	s1.fail(2, []string{"run", "--log-level", "loud"}, "--log-level")
}

// TestRunNode runs the real node through the CLI: a one-server domain whose
// server becomes master and takes a user.
func TestRunNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a libp2p node")
	}
	s1 := newServer(t, "s1", "server")
	s1.ok("domain", "create", "--name", "solo", "--chain", s1.host)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan result, 1)
	go func() { res <- s1.runCtx(ctx, "run") }()

	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-res:
			if strings.Contains(r.stderr, "not implemented") {
				t.Skipf("peer.Node.Run: %s", r.stderr)
			}
			t.Fatalf("run ended early: exit %d, stderr %q", r.code, r.stderr)
		case <-deadline:
			cancel()
			t.Fatalf("the daemon did not become master; last run output: %v", <-res)
		case <-tick.C:
		}
		r := s1.run("status", "--json")
		if r.code != 0 {
			continue
		}
		var st peer.Status
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("status --json: %v", err)
		}
		if st.Role == "master" {
			if st.ID != s1.id || st.Master != s1.id || st.Epoch == 0 {
				t.Errorf("status --json = %+v; want s1 master at an epoch", st)
			}
			break
		}
	}
	if out := s1.ok("user", "add", "ann", "--home-server", "s1"); !strings.HasPrefix(out, "ok: user ann added") {
		t.Errorf("user add printed %q", out)
	}
	cancel()
	r := <-res
	if r.code != 0 || !strings.Contains(r.stderr, "msg=stopped") {
		t.Errorf("run after cancel: exit %d, stderr %q; want 0 and 'stopped'", r.code, r.stderr)
	}
	if _, err := os.Stat(control.SocketPath(s1.home)); err == nil {
		t.Error("run left the control socket behind")
	}
}

// TestRunLogFormatJSON: with --log-format json every line of the daemon's
// log is a JSON object with its level and message.
func TestRunLogFormatJSON(t *testing.T) {
	s1 := newServer(t, "s1", "server")
	s1.ok("domain", "create", "--name", "example", "--chain", s1.host)
	started := make(chan struct{})
	s1.newNode = func(cfg peer.Config) (node, error) {
		return &fakeNode{fakeDaemon: newFakeDaemon(t, "s1"), cfg: cfg, started: started}, nil
	}
	stop := startRun(t, s1.cli, "--log-format", "json", "--gui", "off")
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not start the node")
	}
	r := stop()
	if r.code != 0 {
		t.Fatalf("run after cancel: exit %d, stderr %q; want 0", r.code, r.stderr)
	}
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if rec.Level == "" || rec.Msg == "" {
			t.Errorf("log line %q: no level or msg", line)
		}
		msgs = append(msgs, rec.Msg)
	}
	for _, want := range []string{"starting", "started", "stopped"} {
		if !slices.Contains(msgs, want) {
			t.Errorf("logged messages %q; want %q", msgs, want)
		}
	}
	s1.fail(2, []string{"run", "--log-format", "xml"}, "--log-format")
}
