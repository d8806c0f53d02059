package multiprocess

// The failover scenarios of the design (DESIGN.md §1, "Chain-of-
// responsibility failover"), with writes during every outage. Each ends
// with converge: every acknowledged (or queued) update on every live
// server, equal digests; and status checks every epoch it sees.

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// observe is how long a scenario watches that "nothing changes": longer
// than the default fail-after period (1.5 s), so a server that wrongly
// took a failure for the master's would have acted.
const observe = 2 * time.Second

// checkEpoch fails the test if a write was certified at another epoch.
func checkEpoch(t *testing.T, what string, got, want uint64) {
	t.Helper()
	if got != want {
		t.Errorf("%s certified at epoch %d; want %d", what, got, want)
	}
}

// Scenario 1: a desktop agent fails. The servers keep their master and
// epoch, and writes keep working; the agent comes back to the same master
// and catches up the users added while it was down.
func TestAgentFails(t *testing.T) {
	c, s, agent := newDomain(t, domainOptions{servers: 3, agent: true})
	s1, s2, s3 := s[0], s[1], s[2]
	epoch := c.waitMaster(s1, s, 0)
	c.write(s1, "user", "add", "ann", "--home-server", "s2")
	c.converge(s...)

	c.kill(agent)
	checkEpoch(t, "user add at the master", c.write(s1, "user", "add", "bob", "--home-server", "s3"), epoch)
	checkEpoch(t, "folder create at slave s2", c.write(s2, "folder", "create", "Photos", "--owner", "ann"), epoch)
	checkEpoch(t, "report generate at slave s3", c.write(s3, "report", "generate"), epoch)
	c.holdStill(observe, s1, epoch, s)
	c.converge(s...)

	c.start(agent)
	if st := c.waitAgentFollows(agent, s1); st.Epoch != epoch {
		t.Errorf("the restarted agent follows %s at epoch %d; want %d", st.MasterName, st.Epoch, epoch)
	}
	// It catches up the Domain (the users it missed) from the servers.
	digest := c.mustStatus(s1).Collections["domain"].Digest
	c.waitFor(settleTimeout, "the agent to catch up the Domain", func() (bool, string) {
		st, err := c.status(agent)
		if err != nil {
			return false, err.Error()
		}
		return st.Collections["domain"].Digest == digest, fmt.Sprintf("%v; s1's domain digest %.12s", st, digest)
	})
	checkEpoch(t, "user add after the agent's return", c.write(s1, "user", "add", "cy", "--home-server", "s1"), epoch)
	c.holdStill(observe/4, s1, epoch, s)
	c.converge(s...)
}

// Scenario 2: a slave fails. The master and epoch stay, writes at the
// master and a Catalog write at the other slave are acknowledged, and the
// restarted slave catches up.
func TestSlaveFails(t *testing.T) {
	c, s, _ := newDomain(t, domainOptions{servers: 3})
	s1, s2, s3 := s[0], s[1], s[2]
	epoch := c.waitMaster(s1, s, 0)
	c.write(s1, "user", "add", "ann", "--home-server", "s2")
	c.write(s1, "user", "add", "cid", "--home-server", "s3")
	c.converge(s...)

	c.kill(s3)
	checkEpoch(t, "user add at the master", c.write(s1, "user", "add", "bob", "--home-server", "s2"), epoch)
	checkEpoch(t, "folder create at slave s2", c.write(s2, "folder", "create", "Photos", "--owner", "ann"), epoch)
	checkEpoch(t, "report generate at slave s2", c.write(s2, "report", "generate"), epoch)
	checkEpoch(t, "report generate at the master", c.write(s1, "report", "generate"), epoch)
	c.holdStill(observe, s1, epoch, s[:2])
	c.converge(s1, s2)

	c.start(s3)
	if got := c.waitMaster(s1, s, 0); got != epoch {
		t.Errorf("after s3's restart s1 is master at epoch %d; want %d (unchanged)", got, epoch)
	}
	c.converge(s...)
	checkEpoch(t, "folder create at the restarted slave", c.write(s3, "folder", "create", "Docs", "--owner", "cid"), epoch)
	c.converge(s...)
}

// Scenario 3: the master fails. s2 is promoted with a higher epoch and
// accepts Domain changes. Then s2 fails too: s3 alone is not a majority of
// three, so it knows no master, refuses Domain changes and only queues
// Catalog and Report writes. s2's return makes a majority again and the
// queued writes are delivered; s1's return hands the baton back.
func TestMasterFails(t *testing.T) {
	c, s, _ := newDomain(t, domainOptions{servers: 3})
	s1, s2, s3 := s[0], s[1], s[2]
	e1 := c.waitMaster(s1, s, 0)
	c.write(s1, "user", "add", "ann", "--home-server", "s2")
	c.write(s1, "user", "add", "cid", "--home-server", "s3")
	c.converge(s...)

	c.kill(s1)
	// Written during the election: certified by the new master once it
	// has taken over, or queued in s3's outbox.
	c.writeAcceptQueued(s3, "folder", "create", "Early", "--owner", "cid")
	e2 := c.waitMaster(s2, s[1:], e1)
	if got := c.write(s2, "user", "add", "bob", "--home-server", "s3"); got != e2 {
		t.Errorf("user add at the promoted s2 certified at epoch %d; want %d", got, e2)
	}
	c.write(s3, "report", "generate")
	c.write(s2, "folder", "create", "Photos", "--owner", "ann")
	c.converge(s2, s3)

	c.kill(s2)
	c.waitNoMaster(s3)
	msg := c.refuse(s3, "user", "dan", "user", "add", "dan", "--home-server", "s3", "--wait", "2s")
	if !strings.Contains(msg, "no master is reachable") {
		t.Errorf("user add at s3 with no master said %q; want it to say no master is reachable", msg)
	}
	c.writeQueued(s3, "folder", "create", "Late", "--owner", "cid", "--wait", "2s")
	c.writeQueued(s3, "report", "generate", "--wait", "1s")
	if st := c.mustStatus(s3); st.Outbox == 0 || st.Role == "master" {
		t.Errorf("s3 alone: %v; want a slave (no majority) with the queued updates in its outbox", st)
	}

	c.start(s2)
	e3 := c.waitMaster(s2, s[1:], e2)
	c.converge(s2, s3)
	c.write(s2, "user", "add", "eve", "--home-server", "s2")

	c.start(s1)
	c.waitMaster(s1, s, e3)
	c.converge(s...)
}

// Scenario 3 with two servers: a change needs a majority of the chain,
// so when s1 fails s2 does not take over (a master alone could acknowledge
// what s1, cut off rather than dead, contradicts); it says so, and takes
// no change. s1 returns and the domain carries on with everything
// acknowledged before.
func TestTwoServerMasterFails(t *testing.T) {
	c, s, _ := newDomain(t, domainOptions{servers: 2})
	s1, s2 := s[0], s[1]
	e1 := c.waitMaster(s1, s, 0)
	c.write(s1, "user", "add", "ann", "--home-server", "s2")
	c.converge(s...)

	c.kill(s1)
	c.waitNoMaster(s2)
	st := c.mustStatus(s2)
	if st.Role == "master" {
		t.Fatalf("s2 became master alone: %v", st)
	}
	if out := c.mustCLI(s2, "status"); !strings.Contains(out, "two servers cannot fail over") || !strings.Contains(out, "baton init --witness") {
		t.Errorf("s2's status does not warn that two servers cannot fail over, offering a witness:\n%s", out)
	}
	c.refuse(s2, "user", "bob", "user", "add", "bob", "--home-server", "s2")

	c.start(s1)
	e3 := c.waitMaster(s1, s, e1)
	checkEpoch(t, "user add at s1 after it returned", c.write(s1, "user", "add", "cy", "--home-server", "s1"), e3)
	c.converge(s...)
}

// Scenario 4: the old master returns. It catches up from the interim
// master s2 — nothing s2 acknowledged is lost, a removal included — and
// takes the role back with a higher epoch; s2 is a slave again.
func TestOldMasterReturns(t *testing.T) {
	c, s, _ := newDomain(t, domainOptions{servers: 3})
	s1, s2, s3 := s[0], s[1], s[2]
	e1 := c.waitMaster(s1, s, 0)
	c.write(s1, "user", "add", "ann", "--home-server", "s2")
	c.write(s1, "user", "add", "cid", "--home-server", "s3")
	c.write(s1, "user", "add", "tmp", "--home-server", "s1")
	c.write(s2, "folder", "create", "Photos", "--owner", "ann")
	c.converge(s...)

	c.kill(s1)
	e2 := c.waitMaster(s2, s[1:], e1)
	checkEpoch(t, "user add at the interim master", c.write(s2, "user", "add", "bob", "--home-server", "s2"), e2)
	checkEpoch(t, "user remove at the interim master", c.removeUser(s2, "tmp"), e2)
	checkEpoch(t, "folder create at slave s3", c.write(s3, "folder", "create", "Docs", "--owner", "cid"), e2)
	checkEpoch(t, "report generate at the interim master", c.write(s2, "report", "generate"), e2)
	c.converge(s2, s3)

	c.start(s1)
	e3 := c.waitMaster(s1, s, e2) // and s2, s3 slaves at e3
	c.converge(s...)
	checkEpoch(t, "user add at s1 after the handback", c.write(s1, "user", "add", "eve", "--home-server", "s1"), e3)
	checkEpoch(t, "folder create at s2, a slave again", c.write(s2, "folder", "create", "Music", "--owner", "bob"), e3)
	c.converge(s...)
}
