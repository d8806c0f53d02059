package multiprocess

// A chain that lost its majority for good is brought back by an operator:
// 'baton server promote --force' on a survivor.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestForcedPromotion: s3 misses a change s1 and s2 commit, then s1 and s2
// are lost. s3 alone takes nothing until it is promoted by force; then it
// takes changes alone. When s1 and s2 come back they take s3's history,
// each reports the change it held that s3 lacks, they become voters again,
// and s1 leads again.
func TestForcedPromotion(t *testing.T) {
	c, s, agent := newDomain(t, domainOptions{servers: 3, agent: true})
	s1, s2, s3 := s[0], s[1], s[2]
	e1 := c.waitMaster(s1, s, 0)
	c.write(s1, "user", "add", "ann", "--home-server", "s2")
	c.converge(s...)

	c.freeze(s3)
	// s1 and s2 take the term past s3's, and the agent follows: the
	// promoted s3 will lead at a lower term than the agent has seen.
	for range 2 {
		c.kill(s1)
		c.start(s1)
		e1 = c.waitMaster(s1, []*node{s1, s2}, e1)
	}
	c.waitFor(settleTimeout, "the agent to follow a master above s3's term", func() (bool, string) {
		st, err := c.status(agent)
		return err == nil && st.Epoch >= e1 && st.Master == s1.id, fmt.Sprint(st, err)
	})
	// Committed by s1 and s2 alone: after the promotion it is not in the
	// chain's history, and both must say so.
	bob := c.cli(s1, "user", "add", "bob", "--home-server", "s1")
	if bob.code != 0 || !okLine.MatchString(bob.stdout) {
		t.Fatalf("user add bob with s3 frozen: %v", bob)
	}
	c.kill(s1)
	c.kill(s2)
	c.thaw(s3)
	c.waitNoMaster(s3)

	if r := c.cli(s3, "server", "promote"); r.code == 0 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("server promote without --force: %v; want a refusal naming --force", r)
	}
	out := c.mustCLI(s3, "server", "promote", "--force")
	c.forgetEpochs()
	if !strings.HasPrefix(out, "ok: this server is the chain's only voter (generation 1") {
		t.Errorf("server promote --force printed %q", out)
	}
	c.waitMaster(s3, []*node{s3}, 0)
	c.waitAgentFollows(agent, s3)
	c.write(s3, "user", "add", "cat", "--home-server", "s3")
	if r := c.cli(s3, "server", "promote", "--force"); r.code == 0 {
		t.Errorf("a second promotion at the master: %v; want a refusal", r)
	}

	c.start(s1)
	c.start(s2)
	c.waitMembership(s3, []string{"s1", "s2", "s3"}, []string{})
	c.waitMaster(s1, s, 0)
	c.converge(s...)
	final, _ := c.finalUsers(s)
	if _, ok := final["bob"]; ok {
		t.Errorf("bob, never on s3, is in the chain's history after the promotion: %v", final)
	}
	for _, n := range []*node{s1, s2} {
		v, err := c.chainView(n)
		if err != nil {
			t.Fatal(err)
		}
		if v.Chain.Generation != 1 || !strings.Contains(v.Chain.Warning, "1 changes this server had committed") {
			t.Errorf("%s: generation %d, warning %q; want generation 1 and the change it lost", n.name, v.Chain.Generation, v.Chain.Warning)
		}
		b, err := os.ReadFile(filepath.Join(n.home, "data", "forced-promotion-1.json"))
		if err != nil {
			t.Fatalf("%s: %v", n.name, err)
		}
		var rep struct {
			Checked bool `json:"checked"`
			Updates []struct {
				Key       string `json:"key"`
				Committed bool   `json:"committed_here"`
			} `json:"updates"`
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatalf("%s: report: %v", n.name, err)
		}
		var keys []string
		for _, u := range rep.Updates {
			if u.Committed {
				keys = append(keys, u.Key)
			}
		}
		if !rep.Checked || !slices.Equal(keys, []string{"user/bob"}) {
			t.Errorf("%s: report checked %v, committed and lost %v; want user/bob", n.name, rep.Checked, keys)
		}
		if m, _ := filepath.Glob(filepath.Join(n.home, "data", "raft-generation-0*.db")); len(m) != 1 {
			t.Errorf("%s: copies of the replaced log: %v; want one", n.name, m)
		}
	}
	c.write(s1, "user", "add", "dan", "--home-server", "s1")
	c.converge(s...)
}
