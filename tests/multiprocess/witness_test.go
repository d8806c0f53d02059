package multiprocess

// Two servers and a witness: the witness votes, so either server may
// fail, and it never keeps the master role.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// witnessView is the witness part of 'status --json'.
type witnessView struct {
	Witness bool `json:"witness"`
	Chain   *struct {
		Witnesses []string `json:"witnesses"`
		Warning   string   `json:"warning"`
	} `json:"chain"`
}

func (c *cluster) witnessView(n *node) (witnessView, string) {
	c.t.Helper()
	out := c.mustCLI(n, "status", "--json")
	var v witnessView
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Chain == nil {
		c.t.Fatalf("status --json on %s: %v in %s", n.name, err, out)
	}
	return v, out
}

// TestWitness: a domain of s1, a witness w and s2. s1 is master; killed,
// s2 takes over and acknowledges changes, and the witness never keeps the
// role; s1 returns and is master again. Then the witness is made to win an
// election (it alone holds the last change when s2 restarts): it hands the
// role to s2 as soon as s2 has caught up. A witness cannot be a user's
// home server.
func TestWitness(t *testing.T) {
	c := newCluster(t)
	s1, s2 := c.addHost("s1", "--server"), c.addHost("s2", "--server")
	w := c.addWitness("w")
	if toml, err := os.ReadFile(filepath.Join(w.home, "host.toml")); err != nil || !strings.Contains(string(toml), "witness = true") {
		t.Fatalf("w's host.toml does not record witness = true (%v):\n%s", err, toml)
	}
	// The witness second in the chain, where a server would be handed
	// the master role back: it must pass it on to s2 (and s2 must not
	// hand it the role).
	out := c.mustCLI(s1, "domain", "create", "--name", "test", "--chain", s1.record, "--chain", w.record, "--chain", s2.record)
	if strings.Contains(out, "cannot fail over") {
		t.Errorf("domain create with two servers and a witness warns:\n%s", out)
	}
	genesis := filepath.Join(c.dir, "test.genesis")
	c.mustCLI(s1, "domain", "export", "-o", genesis)
	c.mustCLI(s2, "domain", "join", genesis)
	c.mustCLI(w, "domain", "join", genesis)
	all := []*node{s1, s2, w}
	for _, n := range all {
		c.start(n)
	}
	e1 := c.waitMaster(s1, all, 0)

	if v, _ := c.witnessView(w); !v.Witness {
		t.Errorf("w's status does not say it is a witness: %+v", v)
	}
	if out := c.mustCLI(w, "status"); !strings.Contains(out, "witness:     yes") {
		t.Errorf("w's status text does not say it is a witness:\n%s", out)
	}
	c.waitFor(settleTimeout, "s1 to know w is a witness", func() (bool, string) {
		v, out := c.witnessView(s1)
		return slices.Equal(v.Chain.Witnesses, []string{"w"}) && !v.Witness && v.Chain.Warning == "", out
	})
	c.write(s1, "user", "add", "ann", "--home-server", "s2")
	msg := c.refuse(s1, "user", "wes", "user", "add", "wes", "--home-server", "w")
	if !strings.Contains(msg, "w (") || !strings.Contains(msg, "is a witness") {
		t.Errorf("user add --home-server w said %q; want it to say w is a witness", msg)
	}
	c.converge(all...)

	// s1 fails: s2 and the witness are a majority, and s2 is master.
	c.kill(s1)
	e2 := c.waitMaster(s2, []*node{s2, w}, e1)
	c.write(s2, "user", "add", "bob", "--home-server", "s2")
	c.holdStill(2e9, s2, e2, []*node{s2, w})
	c.converge(s2, w)

	c.start(s1)
	e3 := c.waitMaster(s1, all, e2)
	c.write(s1, "user", "add", "cy", "--home-server", "s1")
	c.converge(all...)

	// The witness wins an election: s2 is down while s1 and w commit a
	// change, then s1 fails and s2 returns without it, so only w can be
	// elected. It brings s2 up to date and hands it the role.
	c.kill(s2)
	c.write(s1, "user", "add", "dee", "--home-server", "s1")
	c.kill(s1)
	c.start(s2)
	e4 := c.waitMaster(s2, []*node{s2, w}, e3)
	if !logContains(w, "promoted to master") {
		t.Errorf("w's log does not show it led (the scenario meant it to win the election)")
	}
	c.write(s2, "user", "add", "eve", "--home-server", "s2")
	c.holdStill(2e9, s2, e4, []*node{s2, w})

	c.start(s1)
	c.waitMaster(s1, all, e4)
	c.converge(all...)
}
