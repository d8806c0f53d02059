package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/internal/console"
	"github.com/baton-sync/baton/peer"
)

// runFake starts 'baton run args' for a one-server domain on a fake node
// and waits until the node has started.
func runFake(t *testing.T, args ...string) (server, *fakeNode, func() result) {
	t.Helper()
	s1 := newServer(t, "s1", "server")
	s1.ok("domain", "create", "--name", "example", "--chain", s1.host)
	nodes := make(chan *fakeNode, 1)
	s1.newNode = func(cfg peer.Config) (node, error) {
		n := &fakeNode{fakeDaemon: newFakeDaemon(t, "s1"), cfg: cfg, started: make(chan struct{})}
		nodes <- n
		return n, nil
	}
	stop := startRun(t, s1.cli, args...)
	select {
	case n := <-nodes:
		select {
		case <-n.started:
			return s1, n, stop
		case <-time.After(10 * time.Second):
		}
	case <-time.After(10 * time.Second):
	}
	r := stop()
	t.Fatalf("run did not start the node: exit %d, stderr %s", r.code, r.stderr)
	return server{}, nil, nil
}

// TestRunServesConsole: 'baton run' serves the console on loopback with
// the control API behind the token; 'baton gui' prints its URL and opens
// a browser logged in with a one-time code.
func TestRunServesConsole(t *testing.T) {
	s1, n, stop := runFake(t)
	if n.cfg.OnCommit == nil {
		t.Error("run did not give the node the console's commit observer")
	}
	u, err := console.ReadURL(s1.home)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Errorf("console URL %q; want loopback", u)
	}
	if got := mode(t, filepath.Join(s1.home, console.TokenFile)); got != 0o600 {
		t.Errorf("token file mode = %04o; want 0600", got)
	}
	out := s1.ok("gui", "--no-browser")
	if !strings.Contains(out, u) || !strings.Contains(out, filepath.Join(s1.home, console.TokenFile)) {
		t.Errorf("gui printed\n%s\nwant the URL %s and the token file", out, u)
	}

	// The control API over the console: refused without the token, the
	// same status as the socket with it.
	resp, err := http.Get(u + "v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v1/status without the token: %d; want 401", resp.StatusCode)
	}
	tok, err := console.ReadToken(s1.home)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", u+"v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var st peer.Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Name != "s1" || st.Role != "master" {
		t.Errorf("GET /v1/status with the token: %+v, %v; want s1's status", st, err)
	}

	// 'baton gui' opens a browser on a login URL that logs it in.
	var opened string
	s1.openURL = func(url string) (bool, error) { opened = url; return true, nil }
	if out := s1.ok("gui"); !strings.Contains(out, "Opened in your browser") {
		t.Errorf("gui printed\n%s", out)
	}
	if !strings.HasPrefix(opened, u+"login?code=") {
		t.Fatalf("gui opened %q; want %slogin?code=...", opened, u)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err = browser.Get(opened)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "<title>baton: s1</title>") || !strings.Contains(string(page), "<h2>Users</h2>") {
		t.Errorf("the opened URL: %d\n%.300s\nwant the server's page", resp.StatusCode, page)
	}
	// No browser: still fine, and says so.
	s1.openURL = func(string) (bool, error) { return false, nil }
	if out := s1.ok("gui"); !strings.Contains(out, "No browser found") {
		t.Errorf("gui without a browser printed\n%s", out)
	}

	if r := stop(); r.code != 0 {
		t.Fatalf("run: exit %d, stderr %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(s1.home, console.URLFile)); err == nil {
		t.Error("the URL file is left after the daemon stopped")
	}
	s1.fail(1, []string{"gui"}, "no console running")
}

func TestRunGUIOffAndRefused(t *testing.T) {
	s1, _, stop := runFake(t, "--gui", "off")
	if _, err := console.ReadURL(s1.home); err == nil {
		t.Error("--gui off: a console URL was written")
	}
	stop()

	s2 := newServer(t, "s2", "server")
	s2.ok("domain", "create", "--name", "example", "--chain", s2.host)
	s2.newNode = func(cfg peer.Config) (node, error) {
		return &fakeNode{fakeDaemon: newFakeDaemon(t, "s2"), cfg: cfg, started: make(chan struct{})}, nil
	}
	s2.fail(1, []string{"run", "--gui", "0.0.0.0:0"}, "--gui-tls")
	// Without a password check at the home servers (this fake node has
	// none), a console stays on loopback, even with TLS.
	s2.fail(1, []string{"run", "--gui", "0.0.0.0:0", "--gui-tls"}, "password checked at the home server", "SSH tunnel")
}
