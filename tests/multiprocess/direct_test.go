package multiprocess

// Member devices syncing with each other directly, with real binaries.

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listenOn returns n's listen address on 127.0.0.1 with its /p2p/ID, as
// 'status --json' shows it.
func (d *syncDomain) listenOn(n *node) string {
	d.t.Helper()
	st := d.mustStatus(n)
	for _, a := range st.Listen {
		// Its own address, not one through a server's relay (which
		// starts the same way).
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") && !strings.Contains(a, "/p2p-circuit") {
			return a + "/p2p/" + n.id
		}
	}
	d.t.Fatalf("%s listens on no 127.0.0.1 address: %v", n.name, st.Listen)
	return ""
}

// restartAgent kills a's daemon and starts it with the 'baton run' flags
// args, and waits until it answers.
func (d *syncDomain) restartAgent(a *agent, args ...string) {
	d.t.Helper()
	d.kill(a.node)
	a.runArgs = args
	d.start(a.node)
}

// Alice and bob share a read-write folder hosted on s1, the only server.
// With s1 frozen (SIGSTOP), then killed, their agents, which reach each other over loopback (bob's
// address given to alice with --peer; mDNS off), still sync changes both
// ways; when s1 returns it takes their changes, and both are in sync with
// it again.
func TestDevicesSyncWithServerDown(t *testing.T) {
	d, alice, bob := newPairDomain(t)
	s1 := d.servers[0]
	p := d.sharePair(alice, bob, "Trip", "rw", map[string]string{"plan.txt": "day 1: fly\n"})
	want := d.mustTree(p.aDir)

	d.restartAgent(bob, "--no-lan")
	d.restartAgent(alice, "--no-lan", "--peer", d.listenOn(bob.node))
	d.waitFor(settleTimeout, "alice connected to bob directly", func() (bool, string) {
		st, err := d.status(alice.node)
		if err != nil {
			return false, err.Error()
		}
		return st.hasPeer(bob.id), st.String()
	})

	// s1 frozen (its connections stay open, unanswered), then killed.
	d.freeze(s1.node)
	want["from-bob.txt"] = d.writeFile(p.bDir, "from-bob.txt", []byte("bob, with the server frozen\n"))
	took := d.waitTree(arriveTimeout, "bob's new file on alice with s1 frozen", want, p.both()...)
	d.t.Logf("device to device, server frozen: a new small file reached the other device in %v", took.Round(time.Millisecond))
	d.kill(s1.node)
	want["plan.txt"] = d.writeFile(p.aDir, "plan.txt", []byte("day 1: fly\nday 2: walk\n"))
	took = d.waitTree(arriveTimeout, "alice's edit on bob with s1 killed", want, p.both()...)
	d.t.Logf("device to device, server killed: an edit reached the other device in %v", took.Round(time.Millisecond))

	// s1 returns: it takes both devices' changes, and both are in sync
	// with it, with nothing else (no conflict copy).
	d.start(s1.node)
	d.waitTree(arriveTimeout, "s1's copy caught up", want, filepath.Join(s1.home, "data", "folders", p.id))
	for _, a := range []*agent{alice, bob} {
		d.waitInSync(a, p.name, arriveTimeout)
	}
	if diff := want.diff(d.mustTree(p.aDir)); diff != "" {
		t.Errorf("alice's copy after s1 returned:\n%s", diff)
	}
	if diff := want.diff(d.mustTree(p.bDir)); diff != "" {
		t.Errorf("bob's copy after s1 returned:\n%s", diff)
	}
}

// multicastInterface reports whether the machine has an interface up with
// multicast other than loopback, which mDNS needs.
func multicastInterface() bool {
	ifs, err := net.Interfaces()
	if err != nil {
		return false
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagMulticast != 0 && i.Flags&net.FlagLoopback == 0 {
			return true
		}
	}
	return false
}

// Agents find each other on the local network with mDNS, on by default:
// with no address given and s1 killed, alice's and bob's agents (listening
// on 127.0.0.1, announced over the machine's multicast interface) connect
// and sync a change.
func TestDevicesFindEachOtherOnLAN(t *testing.T) {
	if !multicastInterface() {
		t.Skip("no multicast interface: mDNS cannot run here (TestDevicesSyncWithServerDown uses --peer)")
	}
	d, alice, bob := newPairDomain(t)
	s1 := d.servers[0]
	p := d.sharePair(alice, bob, "Trip", "rw", map[string]string{"plan.txt": "day 1: fly\n"})
	want := d.mustTree(p.aDir)
	d.waitFor(settleTimeout, "alice's and bob's agents connected (mDNS)", func() (bool, string) {
		st, err := d.status(alice.node)
		if err != nil {
			return false, err.Error()
		}
		return st.hasPeer(bob.id), st.String()
	})
	d.kill(s1.node)
	want["from-bob.txt"] = d.writeFile(p.bDir, "from-bob.txt", []byte("found on the LAN\n"))
	d.waitTree(arriveTimeout, "bob's new file on alice with s1 down", want, p.both()...)
}

// waitConnected waits until a's daemon has a connection to each of peers.
func (d *syncDomain) waitConnected(a *agent, peers ...*agent) {
	d.t.Helper()
	d.waitFor(settleTimeout, a.name+" connected to the other devices", func() (bool, string) {
		st, err := d.status(a.node)
		if err != nil {
			return false, err.Error()
		}
		for _, p := range peers {
			if !st.hasPeer(p.id) {
				return false, st.String()
			}
		}
		return true, ""
	})
}

// Carol, a read-only member, cannot push a change through another device:
// with s1 killed, her agent comes back holding a file she wrote while it
// was stopped and connects to alice's and bob's; both look at what she
// has as they connect, and take nothing of hers, while they and carol
// exchange their own changes. s1, back, does not have it either.
func TestReadOnlyMemberCannotPushThroughDevice(t *testing.T) {
	d := newSyncDomain(t, 1)
	s1 := d.servers[0]
	alice := d.addAgent("alice-laptop", "alice", d.addUser("alice", s1), s1, s1)
	bob := d.addAgent("bob-laptop", "bob", d.addUser("bob", s1), s1, s1)
	carol := d.addAgent("carol-laptop", "carol", d.addUser("carol", s1), s1, s1)
	p := d.sharePair(alice, bob, "Team", "rw", map[string]string{"plan.txt": "the plan\n"})
	cDir := filepath.Join(d.dir, "carol-Team")
	d.share(alice, p.name, p.id, "carol", "ro")
	d.accept(carol, p.name, p.id, "alice", "ro", cDir)
	d.waitInSync(carol, p.name, arriveTimeout)
	want := d.mustTree(p.aDir)

	d.restartAgent(bob, "--no-lan")
	d.restartAgent(alice, "--no-lan", "--peer", d.listenOn(bob.node))
	d.waitConnected(alice, bob)
	d.kill(carol.node)
	d.kill(s1.node)
	d.writeFile(cDir, "from-carol.txt", []byte("a read-only member's file\n"))
	carol.runArgs = []string{"--no-lan", "--peer", d.listenOn(alice.node), "--peer", d.listenOn(bob.node)}
	d.start(carol.node)
	d.waitConnected(carol, alice, bob)

	// Changes of the writers still reach everyone, carol included.
	want["from-bob.txt"] = d.writeFile(p.bDir, "from-bob.txt", []byte("bob's\n"))
	d.waitTree(arriveTimeout, "bob's new file on alice", want, p.both()...)
	want["from-alice.txt"] = d.writeFile(p.aDir, "from-alice.txt", []byte("alice's\n"))
	d.waitTree(arriveTimeout, "alice's new file on bob", want, p.both()...)
	withCarols := d.mustTree(p.aDir)
	withCarols["from-carol.txt"] = entry{size: int64(len("a read-only member's file\n")), hash: hashOf([]byte("a read-only member's file\n"))}
	d.waitTree(arriveTimeout, "the writers' files on carol, with her own", withCarols, cDir)

	d.start(s1.node)
	d.waitTree(arriveTimeout, "s1's copy caught up, without carol's file", want, filepath.Join(s1.home, "data", "folders", p.id))
	for _, dir := range p.both() {
		if diff := want.diff(d.mustTree(dir)); diff != "" {
			t.Errorf("%s took the read-only member's file:\n%s", dir, diff)
		}
	}
}
