package multiprocess

// The chain's membership in the consensus engine: the first five servers
// vote, the others are learners; servers added and removed with the CLI
// join and leave the raft configuration one change at a time.

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// chainView is the consensus part of 'status --json'.
type chainView struct {
	Role  string `json:"role"`
	Chain *struct {
		Term       uint64   `json:"term"`
		Commit     uint64   `json:"commit"`
		Leader     string   `json:"leader"`
		Voters     []string `json:"voters"`
		Learners   []string `json:"learners"`
		Warning    string   `json:"warning"`
		Generation uint64   `json:"generation"`
	} `json:"chain"`
}

func (c *cluster) chainView(n *node) (chainView, error) {
	r := c.cli(n, "status", "--json")
	if r.code != 0 {
		return chainView{}, fmt.Errorf("status on %s: %v", n.name, r)
	}
	var v chainView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		return chainView{}, fmt.Errorf("status --json on %s: %w", n.name, err)
	}
	if v.Chain == nil {
		return chainView{}, fmt.Errorf("status --json on %s has no chain view: %s", n.name, r.stdout)
	}
	return v, nil
}

// waitMembership waits until n reports exactly these voters and learners.
func (c *cluster) waitMembership(n *node, voters, learners []string) {
	c.t.Helper()
	c.waitFor(settleTimeout, fmt.Sprintf("%s to report voters %v and learners %v", n.name, voters, learners), func() (bool, string) {
		v, err := c.chainView(n)
		if err != nil {
			return false, err.Error()
		}
		ok := slices.Equal(v.Chain.Voters, voters) && slices.Equal(v.Chain.Learners, learners)
		return ok, fmt.Sprintf("voters %v, learners %v", v.Chain.Voters, v.Chain.Learners)
	})
}

// TestChainMembership: servers added to a three-server chain join the
// consensus (s4 and s5 as voters, s6 as a learner); they all hold what was
// written, a learner included; the master's failure is survived by the
// voters; a removed server leaves the configuration.
func TestChainMembership(t *testing.T) {
	c, s, _ := newDomain(t, domainOptions{servers: 3})
	s1 := s[0]
	c.write(s1, "user", "add", "ann", "--home-server", "s2")
	c.waitMembership(s1, []string{"s1", "s2", "s3"}, []string{})

	genesis := filepath.Join(c.dir, "test.genesis")
	all := slices.Clone(s)
	for _, name := range []string{"s4", "s5", "s6"} {
		n := c.addHost(name, "--server")
		c.mustCLI(n, "domain", "join", genesis)
		out := c.mustCLI(s1, "server", "add", n.record)
		if !strings.HasPrefix(out, "ok: ") {
			t.Fatalf("server add %s: %q", name, out)
		}
		c.start(n)
		all = append(all, n)
	}
	c.waitMembership(s1, []string{"s1", "s2", "s3", "s4", "s5"}, []string{"s6"})
	c.write(s1, "user", "add", "bob", "--home-server", "s5")
	c.converge(all...)
	if v, err := c.chainView(all[5]); err != nil || v.Role == "master" {
		t.Errorf("the learner s6: %+v, %v; want a slave", v, err)
	}

	// Two of five voters down: the other three still commit.
	c.kill(s1)
	c.kill(all[1])
	live := []*node{all[2], all[3], all[4], all[5]}
	c.waitMaster(all[2], live, 0)
	c.write(all[2], "user", "add", "cy", "--home-server", "s3")
	c.converge(live...)

	c.start(s1)
	c.start(all[1])
	c.waitMaster(s1, all, 0)
	out := c.mustCLI(s1, "server", "remove", "s6")
	if !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("server remove s6: %q", out)
	}
	c.waitMembership(s1, []string{"s1", "s2", "s3", "s4", "s5"}, []string{})
	c.write(s1, "user", "add", "dee", "--home-server", "s4")
	c.converge(all[:5]...)
}
