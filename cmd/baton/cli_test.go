package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer"
)

// fastKDF keeps argon2id cheap in tests.
var fastKDF = identity.KDFParams{Time: 1, Memory: 64, Threads: 1}

var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// cli runs baton commands in-process against one temporary home.
type cli struct {
	t       *testing.T
	home    string
	cfgDir  string            // what userConfigDir returns
	vars    map[string]string // the environment; BATON_HOME is set to home
	stdin   string
	answers []string // answers typed at the terminal prompt, in order
	tty     bool     // whether stdin is a terminal (prompt is non-nil)
	prompts []string // prompts shown

	newNode func(peer.Config) (node, error) // what 'baton run' runs; nil: the real node
	login   loginFunc                       // what 'baton login' calls; nil: peer.Login
	ttyOut  bool                            // whether stdout is a terminal
	openURL func(string) (bool, error)      // how 'baton gui' opens a browser; nil: none
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	return &cli{
		t:      t,
		home:   home,
		cfgDir: filepath.Join(dir, "config"),
		vars:   map[string]string{"BATON_HOME": home},
	}
}

type result struct {
	code           int
	stdout, stderr string
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	return c.runCtx(context.Background(), args...)
}

// runCtx runs args with ctx as the command's context (a signal cancels it).
func (c *cli) runCtx(ctx context.Context, args ...string) result {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	env := &cliEnv{
		stdin:         strings.NewReader(c.stdin),
		stdout:        &stdout,
		stderr:        &stderr,
		getenv:        func(k string) string { return c.vars[k] },
		userConfigDir: func() (string, error) { return c.cfgDir, nil },
		hostname:      func() (string, error) { return "Test Box!", nil },
		kdf:           fastKDF,
		rand:          rand.Reader,
		now:           func() time.Time { return testNow },
		newNode:       c.newNode,
		login:         c.login,
		stdoutTTY:     c.ttyOut,
	}
	env.gui.open = c.openURL
	if env.gui.open == nil {
		env.gui.open = func(string) (bool, error) { return false, nil }
	}
	if c.tty {
		env.prompt = func(_ context.Context, msg string) ([]byte, error) {
			c.prompts = append(c.prompts, msg)
			if len(c.answers) == 0 {
				c.t.Fatalf("baton %s: unexpected prompt %q", strings.Join(args, " "), msg)
			}
			a := c.answers[0]
			c.answers = c.answers[1:]
			return []byte(a), nil
		}
	}
	code := execute(ctx, env, args)
	return result{code, stdout.String(), stderr.String()}
}

// ok runs args and fails the test unless they succeed.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("baton %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// fail runs args, expects exit code want and a one-line error containing
// every string in contains, and returns that line.
func (c *cli) fail(want int, args []string, contains ...string) string {
	c.t.Helper()
	r := c.run(args...)
	cmd := "baton " + strings.Join(args, " ")
	if r.code != want {
		c.t.Fatalf("%s: exit %d, want %d (stdout %q, stderr %q)", cmd, r.code, want, r.stdout, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "baton: ") || !strings.HasSuffix(r.stderr, "\n") || strings.Count(r.stderr, "\n") != 1 {
		c.t.Fatalf("%s: stderr = %q; want one line starting \"baton: \"", cmd, r.stderr)
	}
	for _, s := range contains {
		if !strings.Contains(r.stderr, s) {
			c.t.Errorf("%s: stderr = %q; want it to contain %q", cmd, r.stderr, s)
		}
	}
	return r.stderr
}

func (c *cli) keyPath() string { return filepath.Join(c.home, hostKeyFile) }

func (c *cli) showJSON() keyInfo {
	c.t.Helper()
	out := c.ok("keys", "show", "--json")
	var ki keyInfo
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ki); err != nil {
		c.t.Fatalf("keys show --json: %v\n%s", err, out)
	}
	return ki
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestGenShowExportVerify(t *testing.T) {
	c := newCLI(t)
	out := c.ok("keys", "gen", "--name", "alpha", "--role", "agent",
		"--public-addr", "/dns4/alpha.example.com/tcp/4001", "--public-addr", "/ip4/192.0.2.1/udp/4001/quic-v1",
		"--private-addr", "/ip4/10.0.0.1/tcp/4001")
	if got, want := mode(t, c.home), os.FileMode(0o700); got != want {
		t.Errorf("home mode = %04o; want %04o", got, want)
	}
	if got, want := mode(t, c.keyPath()), os.FileMode(0o600); got != want {
		t.Errorf("host.key mode = %04o; want %04o", got, want)
	}
	key, err := identity.LoadKeyFile(c.keyPath(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{key.ID().String(), key.Fingerprint(), "not encrypted", "alpha (agent)"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys gen printed %q; want it to contain %q", out, want)
		}
	}

	show := c.ok("keys", "show")
	for _, want := range []string{key.ID().String(), key.Fingerprint(), "encrypted:     no", "alpha", "agent", "/ip4/10.0.0.1/tcp/4001"} {
		if !strings.Contains(show, want) {
			t.Errorf("keys show printed %q; want it to contain %q", show, want)
		}
	}

	ki := c.showJSON()
	want := keyInfo{
		ID:           key.ID().String(),
		Fingerprint:  key.Fingerprint(),
		PublicKey:    "", // checked below
		Encrypted:    false,
		Name:         "alpha",
		Role:         "agent",
		PublicAddrs:  []string{"/dns4/alpha.example.com/tcp/4001", "/ip4/192.0.2.1/udp/4001/quic-v1"},
		PrivateAddrs: []string{"/ip4/10.0.0.1/tcp/4001"},
	}
	pub := ki.PublicKey
	ki.PublicKey = ""
	if fmt.Sprint(ki) != fmt.Sprint(want) {
		t.Errorf("keys show --json = %+v; want %+v", ki, want)
	}
	if !strings.Contains(show, pub) {
		t.Errorf("keys show does not print the public key %s from --json", pub)
	}

	// The raw JSON has exactly the documented field names.
	var fields map[string]any
	if err := json.Unmarshal([]byte(c.ok("keys", "show", "--json")), &fields); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"id", "fingerprint", "public_key", "encrypted", "name", "role", "public_addrs", "private_addrs"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("keys show --json lacks field %q", f)
		}
	}

	armored := c.ok("keys", "export")
	if !strings.HasPrefix(armored, "-----BEGIN BATON SIGNED RECORD-----\n") ||
		!strings.HasSuffix(armored, "-----END BATON SIGNED RECORD-----\n") {
		t.Fatalf("keys export = %q; want an armored record", armored)
	}
	recPath := filepath.Join(t.TempDir(), "alpha.host")
	c.ok("keys", "export", "-o", recPath)
	verified := c.ok("keys", "verify", recPath)
	for _, want := range []string{"valid host record", "alpha", key.ID().String(), key.Fingerprint(), "agent", "/dns4/alpha.example.com/tcp/4001", "/ip4/10.0.0.1/tcp/4001"} {
		if !strings.Contains(verified, want) {
			t.Errorf("keys verify printed %q; want it to contain %q", verified, want)
		}
	}

	// The record is the one identity reads.
	data, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	e, err := decodeEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := identity.OpenHostRecord(e)
	if err != nil {
		t.Fatalf("OpenHostRecord(exported) = %v", err)
	}
	if rec.Name != "alpha" || rec.Role != identity.RoleAgent || rec.ID() != key.ID() || !rec.IssuedAt().Equal(testNow) {
		t.Errorf("exported record = %+v; want alpha, agent, %s, issued %v", rec, key.ID(), testNow)
	}

	// Verify also reads stdin and raw CBOR.
	raw, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c.stdin = string(raw)
	if out := c.ok("keys", "verify", "-"); !strings.Contains(out, "alpha") {
		t.Errorf("keys verify - (raw CBOR) = %q; want it to name alpha", out)
	}
}

func TestGenDefaultsAndHomes(t *testing.T) {
	c := newCLI(t)
	delete(c.vars, "BATON_HOME")
	c.ok("keys", "gen")
	defaultHome := filepath.Join(c.cfgDir, "baton")
	if _, err := os.Stat(filepath.Join(defaultHome, hostKeyFile)); err != nil {
		t.Fatalf("keys gen without --home or BATON_HOME: %v", err)
	}
	ki := c.showJSON()
	if ki.Name != "Test-Box" || ki.Role != "server" {
		t.Errorf("default name, role = %q, %q; want %q, %q", ki.Name, ki.Role, "Test-Box", "server")
	}

	// BATON_HOME beats the default, --home beats BATON_HOME.
	envHome := filepath.Join(t.TempDir(), "env-home")
	c.vars["BATON_HOME"] = envHome
	c.ok("keys", "gen", "--name", "from-env")
	flagHome := filepath.Join(t.TempDir(), "flag-home")
	c.ok("--home", flagHome, "keys", "gen", "--name", "from-flag")
	c.ok("keys", "gen", "--home", flagHome, "--force", "--role", "agent")
	if ki := c.showJSON(); ki.Name != "from-env" {
		t.Errorf("with BATON_HOME, name = %q; want from-env", ki.Name)
	}
	out := c.ok("keys", "show", "--json", "--home", flagHome)
	var fromFlag keyInfo
	if err := json.Unmarshal([]byte(out), &fromFlag); err != nil {
		t.Fatal(err)
	}
	// gen --force keeps the saved name and changes only what was given.
	if fromFlag.Name != "from-flag" || fromFlag.Role != "agent" {
		t.Errorf("with --home, name, role = %q, %q; want from-flag, agent", fromFlag.Name, fromFlag.Role)
	}
}

func TestGenRefusesToOverwrite(t *testing.T) {
	c := newCLI(t)
	c.ok("keys", "gen")
	first := c.showJSON()
	c.fail(1, []string{"keys", "gen"}, c.keyPath(), "already exists", first.ID, "--force")
	if got := c.showJSON(); got.ID != first.ID {
		t.Fatalf("refused keys gen changed the key from %s to %s", first.ID, got.ID)
	}
	out := c.ok("keys", "gen", "--force")
	second := c.showJSON()
	if second.ID == first.ID {
		t.Fatal("keys gen --force kept the same key")
	}
	old := c.keyPath() + ".old-" + first.ID
	if !strings.Contains(out, old) {
		t.Errorf("keys gen --force printed %q; want it to name the kept old key %s", out, old)
	}
	k, err := identity.LoadKeyFile(old, nil)
	if err != nil || k.ID().String() != first.ID {
		t.Errorf("kept old key: %v, %v; want %s", k, err, first.ID)
	}
}

func TestEncryptedKey(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	pass := writeFile(t, filepath.Join(dir, "pass"), "correct horse\n")
	wrong := writeFile(t, filepath.Join(dir, "wrong"), "battery staple\n")

	c.fail(2, []string{"keys", "gen", "--passphrase-file", pass}, "--encrypt")
	c.fail(1, []string{"keys", "gen", "--encrypt"}, "--passphrase-file", "BATON_PASSPHRASE")
	out := c.ok("keys", "gen", "--encrypt", "--passphrase-file", pass)
	if !strings.Contains(out, "(encrypted)") {
		t.Errorf("keys gen --encrypt printed %q; want it to say encrypted", out)
	}
	if _, err := identity.LoadKeyFile(c.keyPath(), []byte("correct horse")); err != nil {
		t.Fatalf("loading the key with the first line of the passphrase file: %v", err)
	}

	// show needs no passphrase.
	if ki := c.showJSON(); !ki.Encrypted {
		t.Error("keys show --json: encrypted = false; want true")
	}
	c.fail(1, []string{"keys", "export"}, "host key "+c.keyPath()+" is encrypted", "--passphrase-file", "BATON_PASSPHRASE")
	c.fail(1, []string{"keys", "export", "--passphrase-file", wrong}, c.keyPath(), "wrong passphrase", wrong)
	c.fail(1, []string{"keys", "export", "--passphrase-file", filepath.Join(dir, "missing")}, "passphrase file", "missing")
	c.ok("keys", "export", "--passphrase-file", pass)

	c.vars["BATON_PASSPHRASE"] = "battery staple"
	c.fail(1, []string{"keys", "export"}, "wrong passphrase", "BATON_PASSPHRASE")
	c.vars["BATON_PASSPHRASE"] = "correct horse"
	c.ok("keys", "export")
	// The flag wins over the environment.
	c.fail(1, []string{"keys", "export", "--passphrase-file", wrong}, "wrong passphrase")
}

func TestTerminalPassphrase(t *testing.T) {
	c := newCLI(t)
	c.tty = true

	c.answers = []string{"one", "two"}
	c.fail(1, []string{"keys", "gen", "--encrypt"}, "do not match")
	if _, err := os.Stat(c.keyPath()); err == nil {
		t.Fatal("keys gen with mismatched passphrases wrote a key")
	}
	c.answers = []string{"s3cret", "s3cret"}
	c.ok("keys", "gen", "--encrypt")
	if len(c.answers) != 0 {
		t.Fatalf("keys gen --encrypt left answers %q", c.answers)
	}

	// A wrong passphrase at the terminal is asked again.
	c.answers = []string{"nope", "s3cret"}
	r := c.run("keys", "export")
	if r.code != 0 || !strings.Contains(r.stderr, "try again") {
		t.Errorf("keys export after one wrong passphrase: exit %d, stderr %q; want success after a retry", r.code, r.stderr)
	}
	c.answers = []string{"a", "b", "c"}
	r = c.run("keys", "export")
	if r.code != 1 || strings.Count(r.stderr, "try again") != 2 || !strings.HasSuffix(r.stderr, "wrong passphrase\n") {
		t.Errorf("keys export with three wrong passphrases: exit %d, stderr %q; want two retries, then exit 1", r.code, r.stderr)
	}

	// passwd: the old passphrase, then the new one twice.
	c.prompts = nil
	c.answers = []string{"s3cret", "n3w", "n3w"}
	c.ok("keys", "passwd")
	if len(c.prompts) != 3 || !strings.Contains(c.prompts[1], "New passphrase") {
		t.Errorf("keys passwd prompts = %q; want old, new, repeat", c.prompts)
	}
	if _, err := identity.LoadKeyFile(c.keyPath(), []byte("n3w")); err != nil {
		t.Errorf("after passwd: %v", err)
	}
}

func TestKeyFileErrors(t *testing.T) {
	c := newCLI(t)
	missing := []string{"no host key in " + c.home, "run 'baton keys gen --home " + c.home + "'"}
	for _, args := range [][]string{
		{"keys", "show"}, {"keys", "export"}, {"keys", "rotate"}, {"keys", "passwd"},
	} {
		c.fail(1, args, missing...)
	}
	if _, err := os.Stat(c.home); err == nil {
		t.Error("commands on a missing home created it")
	}

	c.ok("keys", "gen")
	if err := os.Chmod(c.keyPath(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"keys", "show"}, {"keys", "export"}} {
		c.fail(1, args, c.keyPath(), "chmod 600 "+c.keyPath())
	}
	if err := os.Chmod(c.keyPath(), 0o600); err != nil {
		t.Fatal(err)
	}

	writeFile(t, c.keyPath(), "{ this is not a key")
	for _, args := range [][]string{{"keys", "show"}, {"keys", "export"}, {"keys", "rotate"}} {
		c.fail(1, args, c.keyPath(), "corrupt key file")
	}
}

// tamper rewrites the armored record at path after change edits its envelope.
func tamper(t *testing.T, path string, change func(e *identity.Envelope)) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := decodeEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	change(e)
	out, err := armorEnvelope(e)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "tampered")
	return writeFile(t, bad, string(out))
}

func TestVerifyRejectsTampering(t *testing.T) {
	c := newCLI(t)
	c.ok("keys", "gen", "--name", "alpha")
	rec := filepath.Join(t.TempDir(), "alpha.host")
	c.ok("keys", "export", "-o", rec)

	other, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(e *identity.Envelope){
		"payload": func(e *identity.Envelope) { e.Payload[len(e.Payload)-1] ^= 1 },
		"signature": func(e *identity.Envelope) {
			e.Signatures[0].Sig[0] ^= 0x80
		},
		"signer": func(e *identity.Envelope) {
			// Re-signed by another key: the signature holds but the signer is not the host.
			sig, err := other.Sign(e.Purpose, e.Payload)
			if err != nil {
				t.Fatal(err)
			}
			e.Signatures = []identity.Signature{{Signer: other.Public(), Sig: sig}}
		},
		"purpose": func(e *identity.Envelope) { e.Purpose = identity.PurposeRotation },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			bad := tamper(t, rec, change)
			c.fail(1, []string{"keys", "verify", bad}, "baton: "+bad+": ")
		})
	}
	// A flipped signature bit is named as such.
	bad := tamper(t, rec, cases["signature"])
	c.fail(1, []string{"keys", "verify", bad}, bad+": signature does not verify")
	bad = tamper(t, rec, cases["payload"])
	c.fail(1, []string{"keys", "verify", bad}, bad+": signature does not verify")

	junk := writeFile(t, filepath.Join(t.TempDir(), "junk"), "hello\n")
	c.fail(1, []string{"keys", "verify", junk}, junk, "not a baton signed record")
	c.fail(1, []string{"keys", "verify", filepath.Join(t.TempDir(), "absent")}, "absent")
}

func TestVerifyOtherPurposes(t *testing.T) {
	c := newCLI(t)
	a, _ := identity.Generate(rand.Reader)
	b, _ := identity.Generate(rand.Reader)
	e, err := identity.Seal(identity.PurposeHeartbeat, []byte("beat"), a, b)
	if err != nil {
		t.Fatal(err)
	}
	data, err := armorEnvelope(e)
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, filepath.Join(t.TempDir(), "hb"), "some text before\n"+string(data))
	out := c.ok("keys", "verify", path)
	for _, want := range []string{string(identity.PurposeHeartbeat), a.ID().String(), b.ID().String(), b.Fingerprint()} {
		if !strings.Contains(out, want) {
			t.Errorf("keys verify printed %q; want it to contain %q", out, want)
		}
	}
}

func TestRotate(t *testing.T) {
	c := newCLI(t)
	pass := writeFile(t, filepath.Join(t.TempDir(), "pass"), "rotate me\n")
	c.ok("keys", "gen", "--name", "alpha", "--encrypt", "--passphrase-file", pass)
	before := c.showJSON()

	out := c.ok("keys", "rotate", "--passphrase-file", pass)
	after := c.showJSON()
	if after.ID == before.ID {
		t.Fatal("keys rotate kept the same ID")
	}
	if !after.Encrypted || after.Name != "alpha" {
		t.Errorf("after rotate: encrypted %v, name %q; want true, alpha", after.Encrypted, after.Name)
	}
	if _, err := identity.LoadKeyFile(c.keyPath(), []byte("rotate me")); err != nil {
		t.Errorf("the new key does not open with the old passphrase: %v", err)
	}
	old := c.keyPath() + ".old-" + before.ID
	if got := mode(t, old); got != 0o600 {
		t.Errorf("old key mode = %04o; want 0600", got)
	}
	if k, err := identity.LoadKeyFile(old, []byte("rotate me")); err != nil || k.ID().String() != before.ID {
		t.Errorf("old key: %v, %v; want %s", k, err, before.ID)
	}
	if _, err := os.Stat(c.keyPath() + ".new"); err == nil {
		t.Error("keys rotate left host.key.new behind")
	}

	rot := filepath.Join(c.home, rotationsDir, "20260304T050607Z-"+before.ID+".rot")
	if !strings.Contains(out, rot) {
		t.Fatalf("keys rotate printed %q; want the statement's path %s", out, rot)
	}
	verified := c.ok("keys", "verify", rot)
	want := fmt.Sprintf("rotation of alpha from %s (%s) to %s (%s), signed by both", before.ID, before.Fingerprint, after.ID, after.Fingerprint)
	if !strings.Contains(verified, want) {
		t.Errorf("keys verify %s = %q; want it to contain %q", rot, verified, want)
	}

	// The old key signing alone is not a rotation.
	bad := tamper(t, rot, func(e *identity.Envelope) { e.Signatures = e.Signatures[:1] })
	c.fail(1, []string{"keys", "verify", bad}, "signature does not verify")
}

func TestPasswd(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	p1 := writeFile(t, filepath.Join(dir, "p1"), "first\r\nignored second line\n")
	p2 := writeFile(t, filepath.Join(dir, "p2"), "second")
	c.ok("keys", "gen")
	id := c.showJSON().ID

	encrypted := func(want bool) {
		t.Helper()
		if ki := c.showJSON(); ki.Encrypted != want || ki.ID != id {
			t.Fatalf("keys show: encrypted %v, id %s; want %v, %s", ki.Encrypted, ki.ID, want, id)
		}
	}
	c.fail(1, []string{"keys", "passwd"}, "--new-passphrase-file")
	c.fail(2, []string{"keys", "passwd", "--remove", "--new-passphrase-file", p1}, "--remove")

	c.ok("keys", "passwd", "--new-passphrase-file", p1)
	encrypted(true)
	if _, err := identity.LoadKeyFile(c.keyPath(), []byte("first")); err != nil {
		t.Fatalf("after adding a passphrase: %v", err)
	}
	c.fail(1, []string{"keys", "passwd", "--passphrase-file", p2, "--new-passphrase-file", p1}, "wrong passphrase")

	c.ok("keys", "passwd", "--passphrase-file", p1, "--new-passphrase-file", p2)
	encrypted(true)
	if _, err := identity.LoadKeyFile(c.keyPath(), []byte("second")); err != nil {
		t.Fatalf("after changing the passphrase: %v", err)
	}
	if got := mode(t, c.keyPath()); got != 0o600 {
		t.Errorf("key mode after passwd = %04o; want 0600", got)
	}

	c.vars["BATON_PASSPHRASE"] = "second"
	c.ok("keys", "passwd", "--remove")
	encrypted(false)
	if out := c.ok("keys", "passwd", "--remove"); !strings.Contains(out, "not encrypted") {
		t.Errorf("second keys passwd --remove printed %q; want it to say there is nothing to do", out)
	}
}

func TestImport(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	key, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "other.key")
	if err := identity.SaveKeyFileKDF(src, key, []byte("elsewhere"), fastKDF); err != nil {
		t.Fatal(err)
	}
	pass := writeFile(t, filepath.Join(dir, "pass"), "elsewhere\n")
	wrong := writeFile(t, filepath.Join(dir, "wrong"), "here\n")

	c.fail(2, []string{"keys", "import"}, "keys import", "1 arg")
	c.fail(1, []string{"keys", "import", filepath.Join(dir, "absent.key")}, "absent.key")
	c.fail(1, []string{"keys", "import", src}, "key file "+src+" is encrypted")
	c.fail(1, []string{"keys", "import", src, "--passphrase-file", wrong}, "wrong passphrase")
	c.ok("keys", "import", src, "--passphrase-file", pass, "--name", "moved")

	ki := c.showJSON()
	if ki.ID != key.ID().String() || !ki.Encrypted || ki.Name != "moved" {
		t.Errorf("after import: %+v; want ID %s, encrypted, name moved", ki, key.ID())
	}
	got, _ := os.ReadFile(c.keyPath())
	want, _ := os.ReadFile(src)
	if !bytes.Equal(got, want) {
		t.Error("imported key file differs from the source")
	}

	c.ok("keys", "gen", "--home", filepath.Join(dir, "h2"))
	other := filepath.Join(dir, "h2", hostKeyFile)
	c.fail(1, []string{"keys", "import", other}, "already exists", "--force")
	c.ok("keys", "import", "--force", other)
	if ki := c.showJSON(); ki.Encrypted || ki.ID == key.ID().String() {
		t.Errorf("after import --force: %+v; want the unencrypted key from %s", ki, other)
	}
	c.fail(1, []string{"keys", "import", c.keyPath()}, "already this host's key")

	loose := filepath.Join(dir, "loose.key")
	if err := identity.SaveKeyFileKDF(loose, key, nil, fastKDF); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	c.fail(1, []string{"keys", "import", "--force", loose}, "chmod 600 "+loose)
}

func TestUsageErrors(t *testing.T) {
	c := newCLI(t)
	c.ok("keys", "gen")
	for _, tc := range []struct {
		args     []string
		contains []string
	}{
		{[]string{"--bogus"}, []string{"unknown flag: --bogus"}},
		{[]string{"keys", "gen", "--bogus"}, []string{"keys gen: unknown flag: --bogus", "baton keys gen --help"}},
		{[]string{"keys", "show", "-x"}, []string{"unknown shorthand flag: 'x'"}},
		{[]string{"frobnicate"}, []string{`unknown command "frobnicate" for "baton"`}},
		{[]string{"keys", "shwo"}, []string{`unknown command "shwo" for "baton keys"`, `did you mean "show"`}},
		{[]string{"keys", "show", "extra"}, []string{"keys show", "extra"}},
		{[]string{"keys", "verify"}, []string{"keys verify", "1 arg"}},
		{[]string{"keys", "gen", "--force", "--role", "boss"}, []string{"--role", "boss"}},
		{[]string{"keys", "gen", "--force", "--name", "-bad"}, []string{"--name"}},
		{[]string{"keys", "gen", "--force", "--public-addr", "example.com:4001"}, []string{"example.com:4001", "multiaddr"}},
		{[]string{"--home"}, []string{"flag needs an argument"}},
	} {
		c.fail(2, tc.args, tc.contains...)
	}
}

func TestHelp(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{
		{}, {"keys"},
		{"keys", "gen"}, {"keys", "show"}, {"keys", "export"}, {"keys", "import"},
		{"keys", "passwd"}, {"keys", "rotate"}, {"keys", "verify"},
		{"init"}, {"run"}, {"status"},
		{"domain"}, {"domain", "create"}, {"domain", "export"}, {"domain", "join"}, {"domain", "show"},
		{"user"}, {"user", "add"}, {"user", "remove"}, {"user", "list"},
		{"server"}, {"server", "add"}, {"server", "remove"}, {"server", "list"},
		{"folder"}, {"folder", "create"}, {"folder", "share"}, {"folder", "list"},
		{"report"}, {"report", "generate"}, {"report", "list"}, {"report", "show"},
	} {
		for _, help := range []string{"--help", "-h"} {
			r := c.run(append(append([]string{}, args...), help)...)
			if r.code != 0 || !strings.Contains(r.stdout, "Usage:") || r.stderr != "" {
				t.Errorf("baton %s %s: exit %d, stdout %q, stderr %q; want usage on stdout", strings.Join(args, " "), help, r.code, r.stdout, r.stderr)
			}
		}
	}
	// A bare group prints its help too.
	if r := c.run("keys"); r.code != 0 || !strings.Contains(r.stdout, "rotate") {
		t.Errorf("baton keys: exit %d, stdout %q; want the list of key commands", r.code, r.stdout)
	}
	if _, err := os.Stat(c.home); err == nil {
		t.Error("help created the home")
	}
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{
		"alpha":                  "alpha",
		"alpha.example.com":      "alpha.example.com",
		"My Laptop (2)":          "My-Laptop--2",
		"--x":                    "x",
		"":                       "baton-host",
		"...":                    "baton-host",
		"héllo":                  "h-llo",
		strings.Repeat("a", 100): strings.Repeat("a", 64),
	} {
		got := sanitizeName(in)
		if got != want {
			t.Errorf("sanitizeName(%q) = %q; want %q", in, got, want)
		}
		if err := identity.ValidateName(got); err != nil {
			t.Errorf("sanitizeName(%q) = %q, which is invalid: %v", in, got, err)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/baton":  "/tmp/baton",
		"/tmp/my dir": "'/tmp/my dir'",
		"it's":        `'it'\''s'`,
		"":            "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestOneLine(t *testing.T) {
	if got, want := oneLine("a\nb\r\nc\n"), "a; b; c"; got != want {
		t.Errorf("oneLine = %q; want %q", got, want)
	}
}
