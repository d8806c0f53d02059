package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// TestBinary builds the real baton binary and checks exit codes, stdout and
// stderr end to end, as a shell would see them.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "baton")
	build := exec.Command(gobin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// A clean environment: no BATON_* from the caller, a private HOME.
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BATON_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			environ = append(environ, kv)
		}
	}
	environ = append(environ, "HOME="+filepath.Join(dir, "user"))

	baton := func(args ...string) (code int, stdout, stderr string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = environ
		cmd.Stdin = strings.NewReader("") // not a terminal
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit):
			code = exit.ExitCode()
		default:
			t.Fatalf("running baton %s: %v", strings.Join(args, " "), err)
		}
		return code, out.String(), errb.String()
	}

	home := filepath.Join(dir, "home")
	if code, _, stderr := baton("keys", "gen", "--home", home, "--name", "e2e"); code != 0 {
		t.Fatalf("baton keys gen: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr := baton("keys", "show", "--json", "--home", home)
	if code != 0 || stderr != "" {
		t.Fatalf("baton keys show --json: exit %d, stderr %q", code, stderr)
	}
	var ki keyInfo
	if err := json.Unmarshal([]byte(stdout), &ki); err != nil {
		t.Fatalf("baton keys show --json printed %q: %v", stdout, err)
	}
	if ki.Name != "e2e" || !strings.HasPrefix(ki.ID, "12D3KooW") || ki.Encrypted {
		t.Errorf("baton keys show --json = %+v; want name e2e, an Ed25519 peer ID, not encrypted", ki)
	}

	// The default home is under $HOME when XDG_CONFIG_HOME is unset.
	if code, _, stderr := baton("keys", "gen"); code != 0 {
		t.Fatalf("baton keys gen (default home): exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "user", ".config", "baton", "host.key")); err != nil {
		t.Errorf("default home: %v", err)
	}

	for _, tc := range []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"keys", "show", "--home", filepath.Join(dir, "nowhere")}, 1, "no host key in " + filepath.Join(dir, "nowhere")},
		{[]string{"keys", "gen", "--home", home}, 1, "already exists"},
		{[]string{"keys", "show", "--jsn", "--home", home}, 2, "unknown flag: --jsn"},
		{[]string{"kees"}, 2, `unknown command "kees"`},
		{[]string{"status", "--home", home}, 1, "no daemon running in " + home},
		{[]string{"run", "--home", home}, 1, "no domain in " + home},
	} {
		code, stdout, stderr := baton(tc.args...)
		name := "baton " + strings.Join(tc.args, " ")
		if code != tc.code {
			t.Errorf("%s: exit %d; want %d", name, code, tc.code)
		}
		if stdout != "" {
			t.Errorf("%s: stdout %q; want nothing", name, stdout)
		}
		if !strings.HasPrefix(stderr, "baton: ") || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.contains) {
			t.Errorf("%s: stderr %q; want one line \"baton: ...%s...\"", name, stderr, tc.contains)
		}
	}
}

// TestBinaryLogin runs 'baton login' from the real binary against a real
// server in this process: a wrong password is one line and exit 1; the
// right one saves the certificate.
func TestBinaryLogin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts a server")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "baton")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	c := peertest.NewPublicCluster(t, 1, collections.DefaultFailover(1))
	c.Configure = func(_ *peertest.Member, cfg *peer.Config) { cfg.PasswordKDF = identitytest.FastKDF }
	c.StartAll()
	c.WaitMaster(20 * time.Second)
	u, err := collections.Put(collections.User{Name: "ann", HomeServer: c.Members[0].Key.ID().String()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(0, u); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Node(0).SetPassword(ctx, "ann", []byte("right")); err != nil {
		t.Fatal(err)
	}

	home := filepath.Join(dir, "home")
	baton := func(args ...string) (code int, stdout, stderr string) {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--home", home)...)
		cmd.Env = append(os.Environ(), "HOME="+filepath.Join(dir, "user"), "BATON_HOME=", "BATON_PASSWORD=", "BATON_PASSPHRASE=")
		cmd.Stdin = strings.NewReader("")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("running baton %s: %v", strings.Join(args, " "), err)
		}
		return code, out.String(), errb.String()
	}
	if code, _, stderr := baton("init", "--agent", "--name", "lap"); code != 0 {
		t.Fatalf("init --agent: exit %d, %s", code, stderr)
	}
	wrong := filepath.Join(dir, "wrong")
	right := filepath.Join(dir, "right")
	os.WriteFile(wrong, []byte("guess\n"), 0o600)
	os.WriteFile(right, []byte("right\n"), 0o600)
	target := "ann@" + c.PublicP2P(0)

	code, stdout, stderr := baton("login", target, "--password-file", wrong)
	if code != 1 || stdout != "" || stderr != "baton: login: wrong user name or password\n" {
		t.Errorf("login with a wrong password: exit %d, stdout %q, stderr %q; want 1 and one line", code, stdout, stderr)
	}
	code, stdout, stderr = baton("login", "ann@/ip4/127.0.0.1/tcp/1", "--password-file", right)
	if code != 2 || !strings.HasPrefix(stderr, "baton: login: address") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("login without /p2p/: exit %d, stderr %q; want 2 and one line", code, stderr)
	}
	code, stdout, stderr = baton("login", target, "--password-file", right)
	if code != 0 || !strings.HasPrefix(stdout, "logged in as ann on device 12D3KooW") || !strings.Contains(stdout, "(home server s1), certificate valid until ") {
		t.Fatalf("login: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(home, deviceCertFile)); err != nil {
		t.Errorf("no device certificate after login: %v", err)
	}
}
