package multiprocess

// Devices that cannot reach each other, joined by a server's relay, with
// real binaries and the network cut by iptables.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// relayedTo reports whether a's daemon is connected to b through a relay
// only, with a's status for the log.
func (d *syncDomain) relayedTo(a, b *agent) (bool, string) {
	st, err := d.status(a.node)
	if err != nil {
		return false, err.Error()
	}
	return slices.ContainsFunc(st.Peers, func(p peerStatus) bool { return p.ID == b.id && p.Relayed }), fmt.Sprintf("%s: peers %+v", a.name, st.Peers)
}

// Alice's and bob's agents, each on a loopback address of its own, share a
// folder hosted on s2 (their home server) and s3, its replica; iptables
// drops everything between the two agents, and both reach every server.
// They connect through a server's relay. With s2 and s3 killed, s1 (which
// hosts nothing of the folder) still relays: bob's new file reaches
// alice's agent as an index (her folder needs it) but its blocks do not go
// over the relay; once s2 is back, the file arrives from it.
func TestDevicesThroughServerRelay(t *testing.T) {
	d := newSyncDomain(t, 3)
	nc := newNetCut(t)
	s2, s3 := d.servers[1], d.servers[2]
	apw := d.addUser("alice", s2)
	bpw := d.addUser("bob", s2)
	alice := d.addAgentAt("alice-laptop", "alice", apw, s2, s2, "127.0.0.21")
	bob := d.addAgentAt("bob-laptop", "bob", bpw, s2, s2, "127.0.0.22")
	nc.isolate(alice.node, bob.node)
	d.restartAgent(bob, "--no-lan")
	d.restartAgent(alice, "--no-lan", "--peer", fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", bob.ip, bob.port, bob.id))

	p := d.sharePair(alice, bob, "Trip", "rw", map[string]string{"plan.txt": "day 1: fly\n"})
	want := d.mustTree(p.aDir)
	d.waitTree(arriveTimeout, "the folder on both laptops", want, p.both()...)
	for _, pair := range [][2]*agent{{alice, bob}, {bob, alice}} {
		d.waitFor(settleTimeout, pair[0].name+" connected to "+pair[1].name+" through a relay", func() (bool, string) { return d.relayedTo(pair[0], pair[1]) })
	}

	d.kill(s2.node)
	d.kill(s3.node)
	for _, pair := range [][2]*agent{{alice, bob}, {bob, alice}} {
		d.waitFor(settleTimeout, pair[0].name+" connected to "+pair[1].name+" through s1's relay", func() (bool, string) { return d.relayedTo(pair[0], pair[1]) })
	}
	newFile := d.writeFile(p.bDir, "from-bob.txt", []byte("bob, through s1's relay\n"))
	d.waitStatus(alice, p.name, "bob's index taken, from-bob.txt needed and not to be had", func(st folderStatus) bool {
		if st.NeedFiles == 0 {
			return false
		}
		for _, f := range st.Failed {
			if f.Path == "from-bob.txt" {
				return true
			}
		}
		return false
	})
	if _, err := os.Stat(filepath.Join(p.aDir, "from-bob.txt")); err == nil {
		t.Fatal("from-bob.txt reached alice's laptop while only s1's relay joined it to bob's: its blocks went over the relay")
	}
	if ok, st := d.relayedTo(alice, bob); !ok {
		t.Fatalf("alice's laptop is no longer joined to bob's through the relay only: %s", st)
	}

	d.start(s2.node)
	want["from-bob.txt"] = newFile
	took := d.waitTree(arriveTimeout, "from-bob.txt on alice's laptop, its blocks from s2", want, p.aDir)
	t.Logf("after s2's restart, bob's file reached alice's laptop in %v", took)
}
