package multiprocess

// A hosting server that lost its folders' data rebuilds them, with real
// binaries.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer/folderstore"
)

// wipeFolders deletes what s keeps of its folders (it must be stopped):
// every folder's directory, the folder sync engine's index database and
// the folder store (blocks and snapshots), as after the loss of the disk
// that held them; or, if only is given, those paths under its data
// directory alone.
func (d *syncDomain) wipeFolders(s *server, only ...string) {
	d.t.Helper()
	data := filepath.Join(s.home, "data")
	paths := []string{"folders", "folders.db", "store"}
	if len(only) > 0 {
		paths = only
	}
	for _, p := range paths {
		if _, err := os.Lstat(filepath.Join(data, p)); err != nil {
			d.t.Fatalf("%s's %s before the wipe: %v", s.name, p, err)
		}
		if err := os.RemoveAll(filepath.Join(data, p)); err != nil {
			d.t.Fatal(err)
		}
	}
	d.t.Logf("deleted %s's %s", s.name, strings.Join(paths, ", "))
}

// waitExport waits until 'folder export NAME' on the server s writes
// exactly want: the latest snapshot of its folder store holds the tree.
func (d *syncDomain) waitExport(s *server, name string, want tree) {
	d.t.Helper()
	n := 0
	d.waitFor(arriveTimeout, fmt.Sprintf("%s's store of %s to hold the tree", s.name, name), func() (bool, string) {
		n++
		out := filepath.Join(d.dir, fmt.Sprintf("export-%s-%s-%d", s.name, name, n))
		if r := d.runFor(s.node, time.Minute, "folder", "export", name, out); r.code != 0 || !strings.HasPrefix(r.stdout, "ok: ") {
			return false, r.String()
		}
		got, err := readTree(out, true)
		if err != nil {
			return false, err.Error()
		}
		if diff := want.diff(got); diff != "" {
			return false, diff
		}
		return true, ""
	})
}

// verifyStore opens the folder store of the stopped server s, trusting
// its key, and checks all of it (folderstore.Store.Verify); it returns the
// folder's snapshots.
func (d *syncDomain) verifyStore(s *server, folder string) []folderstore.Snapshot {
	d.t.Helper()
	id, err := lpeer.Decode(s.id)
	if err != nil {
		d.t.Fatal(err)
	}
	pub, err := identity.PublicKeyFromID(id)
	if err != nil {
		d.t.Fatal(err)
	}
	dir := filepath.Join(s.home, "data", "store")
	st, err := folderstore.Open(filepath.Join(dir, "snapshots.db"), folderstore.NewDisk(filepath.Join(dir, "blocks")), folderstore.WithTrustedKeys(pub))
	if err != nil {
		d.t.Fatalf("opening %s's store: %v", s.name, err)
	}
	defer st.Close()
	if err := st.Verify(); err != nil {
		d.t.Errorf("%s's store does not verify: %v", s.name, err)
	}
	snaps, err := st.Snapshots(folder)
	if err != nil {
		d.t.Fatalf("%s's snapshots of %s: %v", s.name, folder, err)
	}
	return snaps
}

// newHomeS2Pair makes a domain of servers s1 to sN (N at least 2), users
// alice and bob of home server s2, and their laptops, logged in at s2.
func newHomeS2Pair(t *testing.T, servers int) (d *syncDomain, alice, bob *agent) {
	t.Helper()
	d = newSyncDomain(t, servers)
	s2 := d.servers[1]
	apw := d.addUser("alice", s2)
	bpw := d.addUser("bob", s2)
	alice = d.addAgent("alice-laptop", "alice", apw, s2, s2)
	bob = d.addAgent("bob-laptop", "bob", bpw, s2, s2)
	return d, alice, bob
}

// Alice and bob, of home server s2 in a chain s1, s2, s3, share a folder
// (s3 is its replica). s2 loses its folders' data (directory, index
// database and store) and restarts: it rebuilds the folder from the
// replica and the devices, and deletes nothing on them; its store holds
// the tree and verifies. Then the replica s3 loses its data while s2 is
// down: with no other server up, it rebuilds from the member devices
// alone.
func TestServerRebuildsLostFolders(t *testing.T) {
	skipIfShort(t)
	d, alice, bob := newHomeS2Pair(t, 3)
	s2, s3 := d.servers[1], d.servers[2]
	p := d.sharePair(alice, bob, "Trip", "rw", map[string]string{"plan.txt": "day 1: fly\n", "maps/day2.txt": "the coast road\n"})
	want := d.mustTree(p.aDir)
	want["photos/big.bin"] = d.writeFile(p.aDir, "photos/big.bin", randomBytes(3<<20+12345))
	want["photos"] = entry{dir: true}
	homeDir := filepath.Join(s2.home, "data", "folders", p.id)
	replicaDir := filepath.Join(s3.home, "data", "folders", p.id)
	d.waitTree(arriveTimeout, "every copy", want, p.aDir, p.bDir, homeDir, replicaDir)
	d.waitExport(s2, "Trip", want)

	// The home server loses its disk; the replica is up.
	d.kill(s2.node)
	d.wipeFolders(s2)
	d.start(s2.node)
	d.waitTree(arriveTimeout, "s2's copy rebuilt", want, homeDir)
	// A change after the rebuild reaches everyone: any deletion s2 had
	// sent would have reached the devices before it.
	want["after.txt"] = d.writeFile(p.aDir, "after.txt", []byte("after s2's rebuild\n"))
	d.waitTree(arriveTimeout, "a change after s2's rebuild everywhere", want, p.bDir, homeDir, replicaDir)
	for name, dir := range map[string]string{"alice's": p.aDir, "bob's": p.bDir} {
		if diff := want.diff(d.mustTree(dir)); diff != "" {
			t.Errorf("%s copy after s2's rebuild:\n%s", name, diff)
		}
	}
	d.waitExport(s2, "Trip", want)
	d.kill(s2.node)
	if snaps := d.verifyStore(s2, p.id); len(snaps) == 0 {
		t.Errorf("s2's rebuilt store holds no snapshot of %s", p.id)
	}
	if !loggedSince(t, s2.node, 2, "versions from before it, if the folder had any, are kept by its other hosting servers") {
		t.Errorf("s2 did not log, after its restart, that the folder's history before its rebuild is on the other hosting servers")
	}

	// The replica loses its disk while the home server is down: only the
	// devices hold the files.
	d.kill(s3.node)
	d.wipeFolders(s3)
	d.start(s3.node)
	d.waitTree(arriveTimeout, "s3's copy rebuilt from the devices", want, replicaDir)
	want["later.txt"] = d.writeFile(p.bDir, "later.txt", []byte("after s3's rebuild\n"))
	d.waitTree(arriveTimeout, "a change after s3's rebuild", want, p.aDir, replicaDir)
	if diff := want.diff(d.mustTree(p.bDir)); diff != "" {
		t.Errorf("bob's copy after s3's rebuild:\n%s", diff)
	}
	d.waitExport(s3, "Trip", want)
	d.start(s2.node)
	d.waitTree(arriveTimeout, "s2 back, in step", want, homeDir)
	d.kill(s3.node)
	if snaps := d.verifyStore(s3, p.id); len(snaps) == 0 {
		t.Errorf("s3's rebuilt store holds no snapshot of %s", p.id)
	}
}

// The home server s2 (replica s1) loses a folder's directory and its
// store, but not the index database that lists the folder's files: it
// must not take the files for deleted (and delete them on every device),
// nor stop the folder as emptied as a device would: it rebuilds it from
// the replica and the devices.
func TestServerRebuildsLostFolderDirectory(t *testing.T) {
	skipIfShort(t)
	d, alice, bob := newHomeS2Pair(t, 2)
	s1, s2 := d.servers[0], d.servers[1]
	p := d.sharePair(alice, bob, "Notes", "rw", map[string]string{"a.txt": "alpha\n", "sub/b.txt": "beta\n"})
	want := d.mustTree(p.aDir)
	homeDir := filepath.Join(s2.home, "data", "folders", p.id)
	replicaDir := filepath.Join(s1.home, "data", "folders", p.id)
	d.waitTree(arriveTimeout, "every copy", want, p.aDir, p.bDir, homeDir, replicaDir)

	d.kill(s2.node)
	d.wipeFolders(s2, filepath.Join("folders", p.id), "store")
	d.start(s2.node)
	d.waitTree(arriveTimeout, "s2's copy rebuilt", want, homeDir)
	want["after.txt"] = d.writeFile(p.bDir, "after.txt", []byte("after s2's rebuild\n"))
	d.waitTree(arriveTimeout, "a change after s2's rebuild everywhere", want, p.aDir, homeDir, replicaDir)
	if diff := want.diff(d.mustTree(p.bDir)); diff != "" {
		t.Errorf("bob's copy after s2's rebuild:\n%s", diff)
	}
	d.waitExport(s2, "Notes", want)
}

// Alice and bob, of home server s2 (replica s3), share a folder; their
// agents do not reach each other. Alice writes a 64 MiB file; once bob's
// laptop has begun writing it (its temporary file is there, the file not
// yet), s2 is killed with SIGKILL: bob's laptop finishes the file through
// the replica, and it is alice's, byte for byte.
func TestHomeServerKilledMidTransfer(t *testing.T) {
	skipIfShort(t)
	d, alice, bob := newHomeS2Pair(t, 3)
	s2, s3 := d.servers[1], d.servers[2]
	p := d.sharePair(alice, bob, "Video", "rw", map[string]string{"notes.txt": "cut 3 is the one\n"})
	want := d.mustTree(p.aDir)
	d.restartAgent(bob, "--no-lan")
	d.restartAgent(alice, "--no-lan")
	for _, a := range []*agent{alice, bob} {
		d.waitInSync(a, p.name, arriveTimeout)
	}

	const name = "cut3.mov"
	want[name] = d.writeFile(p.aDir, name, randomBytes(64<<20))
	final := filepath.Join(p.bDir, name)
	began := time.Now()
	// Polled often, with no command run: the transfer takes about a
	// second.
	for deadline := time.Now().Add(arriveTimeout); !writing(t, p.bDir, final); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("bob's laptop did not begin writing %s within %v", name, arriveTimeout)
		}
	}
	d.kill(s2.node)
	partial := tree{}
	if got, err := readTree(p.bDir, false); err == nil {
		partial = got
	}
	if _, ok := partial[name]; ok {
		t.Fatalf("%s was whole on bob's laptop as s2 was killed (%v after it was written): the transfer ended first", name, time.Since(began).Round(time.Millisecond))
	}
	t.Logf("s2 killed %v after alice wrote %s, bob's laptop writing it", time.Since(began).Round(time.Millisecond), name)
	took := d.waitTree(2*arriveTimeout, name+" whole on bob's laptop through the replica", want, p.bDir)
	st := d.waitStatus(bob, p.name, "syncing with s3 only", func(st folderStatus) bool { return syncsWith(st, "s3") })
	t.Logf("the rest of %s reached bob's laptop through s3 in %v; bytes fetched %d, resumed from the temporary file %d", name, took.Round(time.Millisecond), st.Fetched, st.Resumed)
	if diff := want.diff(d.mustTree(filepath.Join(s3.home, "data", "folders", p.id))); diff != "" {
		t.Errorf("the replica's copy:\n%s", diff)
	}
}

// writing reports whether dir holds a temporary file of the engine and no
// file at final yet; it fails the test if final is there: the transfer
// ended unseen.
func writing(t *testing.T, dir, final string) bool {
	t.Helper()
	if _, err := os.Stat(final); err == nil {
		t.Fatalf("%s arrived whole before its transfer was seen under way: nothing was interrupted", final)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			return true
		}
	}
	return false
}

// loggedSince reports whether n's log holds text after the start-th
// start of its daemon (the harness marks each start in the log).
func loggedSince(t *testing.T, n *node, start int, text string) bool {
	t.Helper()
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), fmt.Sprintf("=== harness: start %d of %s ", start, n.name))
	return ok && strings.Contains(after, text)
}

// The directory of a folder on its home server s2 (replica s1) is removed
// while s2 runs (rm -rf): s2 makes it again and fills it from the replica
// and the devices; no file is deleted on the devices.
func TestServerFolderDirectoryRemovedWhileRunning(t *testing.T) {
	skipIfShort(t)
	d, alice, bob := newHomeS2Pair(t, 2)
	s1, s2 := d.servers[0], d.servers[1]
	files := map[string]string{"a.txt": "alpha\n", "sub/b.txt": "beta\n"}
	for i := range 20 {
		files[fmt.Sprintf("many/f%02d.txt", i)] = fmt.Sprintf("file %d\n", i)
	}
	p := d.sharePair(alice, bob, "Notes", "rw", files)
	want := d.mustTree(p.aDir)
	homeDir := filepath.Join(s2.home, "data", "folders", p.id)
	replicaDir := filepath.Join(s1.home, "data", "folders", p.id)
	d.waitTree(arriveTimeout, "every copy", want, p.aDir, p.bDir, homeDir, replicaDir)

	if err := os.RemoveAll(homeDir); err != nil {
		t.Fatal(err)
	}
	t.Logf("removed s2's directory of the folder while s2 runs")
	d.waitTree(arriveTimeout, "s2's copy made again", want, homeDir)
	want["after.txt"] = d.writeFile(p.bDir, "after.txt", []byte("after s2's loss\n"))
	d.waitTree(arriveTimeout, "a change after s2's loss everywhere", want, p.aDir, homeDir, replicaDir)
	if diff := want.diff(d.mustTree(p.bDir)); diff != "" {
		t.Errorf("bob's copy after s2's loss:\n%s", diff)
	}
}
