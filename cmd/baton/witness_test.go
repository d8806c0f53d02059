package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/baton-sync/baton/identity"
)

// TestInitWitness: 'init --witness' makes a server whose host.toml says
// witness = true; its host record is a server's, so it goes in the chain,
// and a chain of two servers and a witness gets no failover warning while
// two servers alone are told to add a witness.
func TestInitWitness(t *testing.T) {
	w := newCLI(t)
	info := w.initJSON("--witness", "--name", "w", "--listen", "/ip4/127.0.0.1/tcp/0")
	if !info.Witness || info.Role != string(identity.RoleServer) {
		t.Errorf("init --witness --json = %+v; want role server, witness true", info)
	}
	data, err := os.ReadFile(filepath.Join(w.home, hostConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg hostConfig
	if err := toml.Unmarshal(data, &cfg); err != nil || !cfg.Witness || cfg.Role != identity.RoleServer {
		t.Errorf("host.toml after init --witness: %+v, %v\n%s", cfg, err, data)
	}
	if out := w.ok("init", "--witness", "--name", "w", "--force"); !strings.Contains(out, "Initialized witness server w") {
		t.Errorf("init --witness said:\n%s", out)
	}
	// init --server on the same home makes it an ordinary server again.
	if info := w.initJSON("--server", "--name", "w", "--force"); info.Witness {
		t.Errorf("init --server after --witness: %+v; want no witness", info)
	}
	for _, tc := range []struct {
		args     []string
		contains []string
	}{
		{[]string{"init", "--witness", "--agent"}, []string{"not both"}},
		{[]string{"init", "--witness", "--public-listen", "/ip4/127.0.0.1/tcp/7412"}, []string{"witness takes none"}},
	} {
		newCLI(t).fail(2, tc.args, tc.contains...)
	}

	s1, s2 := newServer(t, "s1", "server"), newServer(t, "s2", "server")
	wit := newServer(t, "w", "witness")
	out := s1.ok("domain", "create", "--name", "d", "--chain", s1.host, "--chain", s2.host, "--chain", wit.host)
	if strings.Contains(out, "Warning") {
		t.Errorf("domain create with two servers and a witness warns:\n%s", out)
	}
	out = s1.ok("domain", "create", "--force", "--name", "d", "--chain", s1.host, "--chain", s2.host)
	if !strings.Contains(out, "cannot fail over") || !strings.Contains(out, "add a third server or a witness ('baton init --witness'") {
		t.Errorf("domain create with two servers does not offer a witness:\n%s", out)
	}
}
