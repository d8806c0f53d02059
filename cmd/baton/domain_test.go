package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/baton-sync/baton/identity"
)

// initJSON runs 'init --json' with args and decodes its output.
func (c *cli) initJSON(args ...string) initInfo {
	c.t.Helper()
	out := c.ok(append([]string{"init", "--json"}, args...)...)
	var info initInfo
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&info); err != nil {
		c.t.Fatalf("init --json: %v\n%s", err, out)
	}
	return info
}

func TestInit(t *testing.T) {
	c := newCLI(t)
	out := c.ok("init", "--server", "--name", "s1", "--listen", "/ip4/127.0.0.1/tcp/0", "--private-addr", "/ip4/10.0.0.1/tcp/7400")
	key, err := identity.LoadKeyFile(c.keyPath(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "  id:          "+key.ID().String()+"\n") || !strings.Contains(out, "server s1") {
		t.Errorf("init printed\n%s\nwant the ID %s on its own line and 'server s1'", out, key.ID())
	}
	var cfg hostConfig
	data, err := os.ReadFile(filepath.Join(c.home, hostConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := toml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "s1" || cfg.Role != identity.RoleServer || strings.Join(cfg.Listen, " ") != "/ip4/127.0.0.1/tcp/0" ||
		strings.Join(cfg.PrivateAddrs, " ") != "/ip4/10.0.0.1/tcp/7400" || len(cfg.PublicAddrs) != 0 {
		t.Errorf("host.toml after init = %+v", cfg)
	}
	if ki := c.showJSON(); ki.ID != key.ID().String() || ki.Name != "s1" || ki.Role != "server" {
		t.Errorf("keys show after init = %+v", ki)
	}

	c.fail(1, []string{"init", "--server"}, "already exists", key.ID().String(), "--force")
	info := c.initJSON("--agent", "--force")
	if info.ID == key.ID().String() || info.Role != "agent" || info.Name != "s1" || info.Home != c.home ||
		strings.Join(info.Listen, " ") != "/ip4/127.0.0.1/tcp/0" {
		t.Errorf("init --json --agent --force = %+v; want a new agent key, name and listen kept", info)
	}
	if _, err := os.Stat(c.keyPath() + ".old-" + key.ID().String()); err != nil {
		t.Errorf("init --force did not keep the old key: %v", err)
	}

	// Default listen addresses by role.
	for role, want := range map[string]string{"--server": defaultServerListen, "--agent": defaultAgentListen} {
		c := newCLI(t)
		if info := c.initJSON(role); strings.Join(info.Listen, " ") != want || info.Name != "Test-Box" {
			t.Errorf("init %s: listen %v, name %q; want %s, Test-Box", role, info.Listen, info.Name, want)
		}
	}

	c2 := newCLI(t)
	pass := writeFile(t, filepath.Join(t.TempDir(), "pass"), "pw\n")
	if info := c2.initJSON("--server", "--encrypt", "--passphrase-file", pass); !info.Encrypted {
		t.Error("init --encrypt: not encrypted")
	}
	for _, tc := range []struct {
		args     []string
		contains []string
	}{
		{[]string{"init"}, []string{"--server", "--agent"}},
		{[]string{"init", "--server", "--agent"}, []string{"not both"}},
		{[]string{"init", "--server", "--listen", "localhost:7400"}, []string{"listen address", "localhost:7400"}},
		{[]string{"init", "--server", "--name", "no way"}, []string{"--name"}},
		{[]string{"init", "--server", "--passphrase-file", pass}, []string{"--encrypt"}},
	} {
		newCLI(t).fail(2, tc.args, tc.contains...)
	}
}

// server is one host set up through the CLI: init and keys export.
type server struct {
	*cli
	id   string
	host string // its exported host record file
}

func newServer(t *testing.T, name, role string) server {
	t.Helper()
	c := newCLI(t)
	info := c.initJSON("--"+role, "--name", name, "--listen", "/ip4/127.0.0.1/tcp/0")
	host := filepath.Join(t.TempDir(), name+".host")
	c.ok("keys", "export", "-o", host)
	return server{c, info.ID, host}
}

func TestDomainCreateExportJoin(t *testing.T) {
	s1, s2, s3 := newServer(t, "s1", "server"), newServer(t, "s2", "server"), newServer(t, "s3", "server")
	lap := newServer(t, "lap", "agent")
	late := newServer(t, "late", "server")
	stray := newServer(t, "stray", "agent")

	out := s1.ok("domain", "create", "--name", "example", "--chain", s1.host, "--chain", s2.host, "--chain", s3.host, "--host", lap.host)
	g, err := loadGenesis(s1.home)
	if err != nil {
		t.Fatal(err)
	}
	short := shortHash(g.Hash())
	for _, want := range []string{"Created domain example (" + short + ")", "1. s1 " + s1.id, "2. s2 " + s2.id, "3. s3 " + s3.id, "majority"} {
		if !strings.Contains(out, want) {
			t.Errorf("domain create printed\n%s\nwant it to contain %q", out, want)
		}
	}
	if g.Domain.Name != "example" || strings.Join(g.Chain.Servers, ",") != s1.id+","+s2.id+","+s3.id ||
		!g.Domain.Settings.Majority || len(g.Hosts) != 4 || !g.CreatedAt().Equal(testNow) {
		t.Errorf("genesis = %+v", g)
	}
	armored := s1.ok("domain", "export")
	if !strings.HasPrefix(armored, "-----BEGIN "+armorType+"-----\n") {
		t.Errorf("domain export = %q; want armored", armored)
	}
	file := filepath.Join(t.TempDir(), "example.genesis")
	s1.ok("domain", "export", "-o", file)
	if v := s1.ok("keys", "verify", file); !strings.Contains(v, string(identity.PurposeGenesis)) || !strings.Contains(v, s1.id) {
		t.Errorf("keys verify on the genesis printed %q", v)
	}

	if out := s2.ok("domain", "join", file); !strings.Contains(out, "Joined domain example ("+short+") as server 2 of the chain") {
		t.Errorf("domain join at s2 printed\n%s", out)
	}
	if out := s2.ok("domain", "join", file); !strings.Contains(out, "Already a member of domain example") {
		t.Errorf("domain join again printed %q", out)
	}
	if out := lap.ok("domain", "join", file); !strings.Contains(out, "as member host") {
		t.Errorf("domain join at lap printed %q", out)
	}
	if g2, err := loadGenesis(s2.home); err != nil || g2.Hash() != g.Hash() {
		t.Errorf("s2's genesis: %v, %v; want the same as s1's", g2.Hash(), err)
	}
	// A server added later joins with a warning; an unknown agent is refused.
	r := late.run("domain", "join", file)
	if r.code != 0 || !strings.Contains(r.stderr, "warning: this host ("+late.id+") is not in the genesis of domain example") {
		t.Errorf("domain join at a server not in the genesis: exit %d, stderr %q; want a warning", r.code, r.stderr)
	}
	stray.fail(1, []string{"domain", "join", file}, "this host ("+stray.id+") is not a member of domain example")
	if _, err := os.Stat(filepath.Join(stray.home, genesisFile)); err == nil {
		t.Error("refused domain join saved the genesis")
	}

	// domain show, human and JSON.
	show := s2.ok("domain", "show")
	for _, want := range []string{"domain:   example", "lap", "agent", s3.id} {
		if !strings.Contains(show, want) {
			t.Errorf("domain show printed\n%s\nwant %q", show, want)
		}
	}
	var dj domainJSON
	if err := json.Unmarshal([]byte(s2.ok("domain", "show", "--json")), &dj); err != nil {
		t.Fatal(err)
	}
	if dj.Name != "example" || len(dj.Chain) != 3 || len(dj.Hosts) != 4 || dj.Hosts[3].Name != "lap" || !dj.Failover.Majority ||
		!strings.HasPrefix(dj.Hash, short) {
		t.Errorf("domain show --json = %+v", dj)
	}

	// Another domain: refused without --force.
	two := filepath.Join(t.TempDir(), "two.genesis")
	s2.ok("domain", "create", "--force", "--name", "two", "--chain", s2.host, "--chain", s3.host)
	s2.ok("domain", "export", "-o", two)
	g2, _ := loadGenesis(s2.home)
	if g2.Domain.Settings.Majority {
		t.Error("two servers with --majority auto: majority on; want off")
	}
	s3.ok("domain", "join", file)
	s3.fail(1, []string{"domain", "join", two}, "already belongs to domain example", "--force")
	s3.ok("domain", "join", "--force", two)
}

func TestDomainCreateErrors(t *testing.T) {
	s1, s2, s3 := newServer(t, "s1", "server"), newServer(t, "s2", "server"), newServer(t, "s3", "server")
	lap := newServer(t, "lap", "agent")
	garbage := writeFile(t, filepath.Join(t.TempDir(), "garbage.host"), "not a record")
	tampered := tamper(t, s2.host, func(e *identity.Envelope) { e.Payload[len(e.Payload)-1] ^= 1 })

	for _, tc := range []struct {
		code     int
		args     []string
		contains []string
	}{
		{1, []string{"--chain", s2.host, "--chain", s1.host}, []string{s2.host, "not of this host (" + s1.id + ")", "first --chain record must be this host's own"}},
		{1, []string{"--chain", s1.host, "--chain", garbage}, []string{garbage, "not a signed host record"}},
		{1, []string{"--chain", s1.host, "--chain", tampered}, []string{tampered}},
		{1, []string{"--chain", s1.host, "--chain", lap.host}, []string{"lap", "role agent"}},
		{1, []string{"--chain", s1.host, "--chain", s2.host, "--chain", s2.host}, []string{"both the host record of s2"}},
		{1, []string{"--chain", s1.host, "--chain", filepath.Join(t.TempDir(), "none.host")}, []string{"none.host"}},
		{2, []string{"--chain", s1.host, "--chain", s2.host, "--chain", s3.host, "--majority", "off"}, []string{"3 servers needs majority"}},
		{2, []string{"--chain", s1.host, "--majority", "maybe"}, []string{`--majority "maybe"`}},
		{2, []string{}, []string{"--chain"}},
	} {
		args := append([]string{"domain", "create", "--name", "d"}, tc.args...)
		s1.fail(tc.code, args, tc.contains...)
	}
	s1.fail(2, []string{"domain", "create", "--name", "bad name", "--chain", s1.host}, "--name")
	if _, err := os.Stat(filepath.Join(s1.home, genesisFile)); err == nil {
		t.Fatal("a failed domain create wrote the genesis")
	}

	s1.ok("domain", "create", "--name", "d", "--chain", s1.host, "--majority", "on")
	if g, _ := loadGenesis(s1.home); !g.Domain.Settings.Majority || len(g.Chain.Servers) != 1 {
		t.Errorf("--majority on with one server: %+v", g.Domain)
	}
	s1.fail(1, []string{"domain", "create", "--name", "e", "--chain", s1.host}, "already belongs to domain d", "--force")

	// No genesis: the commands that need one say how to get one.
	want := "no domain in " + s2.home + ": run 'baton domain create' or 'baton domain join'"
	for _, args := range [][]string{{"domain", "show"}, {"domain", "export"}, {"run"}} {
		s2.fail(1, args, want)
	}
	// join refuses what is not a genesis.
	s2.fail(1, []string{"domain", "join", s1.host}, "not a baton domain genesis", string(identity.PurposeHostRecord))
	s2.fail(1, []string{"domain", "join", garbage}, "not a baton domain genesis")
	genesis := filepath.Join(s1.home, genesisFile)
	data, _ := os.ReadFile(genesis)
	e, err := decodeEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	e.Payload[len(e.Payload)-1] ^= 1
	bad, _ := armorEnvelope(e)
	s2.fail(1, []string{"domain", "join", writeFile(t, filepath.Join(t.TempDir(), "bad.genesis"), string(bad))}, "invalid domain genesis")
	// A corrupt stored genesis is reported with its path.
	writeFile(t, genesis, "junk")
	s1.fail(1, []string{"domain", "show"}, genesis)
}

func TestRecordAddrs(t *testing.T) {
	for s, want := range map[string]bool{
		"/ip4/127.0.0.1/tcp/7400":     true,
		"/ip4/0.0.0.0/tcp/7400":       false,
		"/ip4/127.0.0.1/tcp/0":        false,
		"/dns4/a.example.com/tcp/1":   true,
		"/ip6/::/udp/5/quic-v1":       false,
		"/ip6/::1/udp/5/quic-v1":      true,
		"/ip4/10.0.0.1":               false,
		"not a multiaddr":             false,
		"/ip4/10.0.0.1/tcp/1/p2p-foo": false,
	} {
		if got := dialable(s); got != want {
			t.Errorf("dialable(%q) = %v; want %v", s, got, want)
		}
	}

	c := newCLI(t)
	c.ok("init", "--server", "--listen", "/ip4/127.0.0.1/tcp/7411", "--listen", "/ip4/0.0.0.0/tcp/7412")
	r := c.run("keys", "export")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("keys export: exit %d, stderr %q", r.code, r.stderr)
	}
	e, err := decodeEnvelope([]byte(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := identity.OpenHostRecord(e)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rec.PrivateAddrs, " ") != "/ip4/127.0.0.1/tcp/7411" || len(rec.PublicAddrs) != 0 {
		t.Errorf("exported record addrs: public %v, private %v; want private /ip4/127.0.0.1/tcp/7411 only", rec.PublicAddrs, rec.PrivateAddrs)
	}

	c = newCLI(t)
	c.ok("init", "--server", "--listen", "/ip4/127.0.0.1/tcp/0")
	if r := c.run("keys", "export"); r.code != 0 || !strings.Contains(r.stderr, "warning: the host record has no addresses") {
		t.Errorf("keys export with no dialable address: exit %d, stderr %q; want a warning", r.code, r.stderr)
	}
}
