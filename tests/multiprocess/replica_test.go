package multiprocess

// A folder's replica server, with real binaries.

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// syncsWith reports whether st lists exactly the servers names as those
// the device syncs with.
func syncsWith(st folderStatus, names ...string) bool {
	var got []string
	for _, s := range st.Servers {
		got = append(got, s.Name)
	}
	return slices.Equal(got, names)
}

// Alice and bob, both of home server s2 in a chain s1, s2, s3, share a
// folder: s2 hosts it, and s3, the next server of the chain, is its
// replica with a copy of its own. Their agents do not reach each other
// (mDNS off, no --peer). With s2 killed, bob's change reaches alice through
// s3, and 'folder status' says they sync with s3 only; when s2 returns it
// catches up from the replica, and both laptops sync with both servers
// again.
func TestReplicaWhileHomeServerDown(t *testing.T) {
	d := newSyncDomain(t, 3)
	s2, s3 := d.servers[1], d.servers[2]
	apw := d.addUser("alice", s2)
	bpw := d.addUser("bob", s2)
	alice := d.addAgent("alice-laptop", "alice", apw, s2, s2)
	bob := d.addAgent("bob-laptop", "bob", bpw, s2, s2)
	p := d.sharePair(alice, bob, "Trip", "rw", map[string]string{"plan.txt": "day 1: fly\n"})
	want := d.mustTree(p.aDir)
	homeDir := filepath.Join(s2.home, "data", "folders", p.id)
	replicaDir := filepath.Join(s3.home, "data", "folders", p.id)
	d.waitTree(arriveTimeout, "the copies on s2 and on its replica s3", want, homeDir, replicaDir)

	d.restartAgent(bob, "--no-lan")
	d.restartAgent(alice, "--no-lan")
	for _, a := range []*agent{alice, bob} {
		d.waitStatus(a, p.name, "syncing with s2 and s3", func(st folderStatus) bool { return syncsWith(st, "s2", "s3") })
	}

	d.kill(s2.node)
	want["from-bob.txt"] = d.writeFile(p.bDir, "from-bob.txt", []byte("bob, with s2 down\n"))
	took := d.waitTree(arriveTimeout, "bob's new file on alice through the replica", want, p.both()...)
	t.Logf("through the replica, home server killed: a new small file reached the other device in %v", took.Round(time.Millisecond))
	// The target is 2 s (a figure, logged above); a test does not assert
	// wall-clock speed on a shared machine, but ten times it is a fault.
	if took > 10*replicaTarget {
		t.Errorf("bob's new file took %v to reach alice through the replica: more than ten times the %v target", took.Round(time.Millisecond), replicaTarget)
	}
	if st := d.mustStatus(alice.node); st.hasPeer(bob.id) {
		t.Errorf("alice's laptop is connected to bob's: the change may have gone directly (%v)", st)
	}
	d.waitStatus(alice, p.name, "syncing with s3 only", func(st folderStatus) bool { return syncsWith(st, "s3") })

	d.start(s2.node)
	d.waitTree(arriveTimeout, "s2's copy caught up from the replica", want, homeDir)
	for _, a := range []*agent{alice, bob} {
		d.waitStatus(a, p.name, "syncing with s2 and s3 again", func(st folderStatus) bool { return syncsWith(st, "s2", "s3") })
		d.waitInSync(a, p.name, arriveTimeout)
	}
	for name, dir := range map[string]string{"alice's": p.aDir, "bob's": p.bDir, "s3's": replicaDir} {
		if diff := want.diff(d.mustTree(dir)); diff != "" {
			t.Errorf("%s copy at the end:\n%s", name, diff)
		}
	}
	d.waitSameSnapshot(p.name, s2, s3)
}

// replicaTarget is the time the issue sets for a change to reach another
// member through the replica while the home server is down.
const replicaTarget = 2 * time.Second

// waitSameSnapshot waits until the latest snapshots of folder name in the
// stores of servers a and b hold the same tree: 'folder status --json' on
// each shows the same history.tree (folderstore.TreeDigest: the entries
// and their versions, not the servers' own sequence and times).
func (d *syncDomain) waitSameSnapshot(name string, a, b *server) {
	d.t.Helper()
	d.waitFor(arriveTimeout, fmt.Sprintf("%s's and %s's latest snapshots of %s to hold the same tree", a.name, b.name, name), func() (bool, string) {
		var trees []string
		for _, s := range []*server{a, b} {
			st, err := parseFolderStatus(d.cli(s.node, "folder", "status", name, "--json"))
			if err != nil {
				return false, err.Error()
			}
			if st.History == nil || st.History.Tree == "" {
				return false, fmt.Sprintf("%s shows no tree: %v", s.name, st)
			}
			trees = append(trees, st.History.Tree)
		}
		return trees[0] == trees[1], fmt.Sprintf("%s: %.16s, %s: %.16s", a.name, trees[0], b.name, trees[1])
	})
}
