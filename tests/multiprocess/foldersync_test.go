package multiprocess

// Folder sync with real binaries: users log in from desktop agents with
// 'baton login', create, share and accept folders with the folder
// commands, and every check reads the synced directories themselves
// (names, sizes, SHA-256 of contents) or 'folder status --json'.

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sharedPair is a folder alice created and shared with bob, who accepted
// it: both agents' directories.
type sharedPair struct {
	alice, bob *agent
	name, id   string
	aDir, bDir string
}

// sharePair creates the folder name on alice (synced in a directory 'baton
// folder create' makes), writes the files of before in it and waits until
// her status counts them and is in sync (the server has them), shares the
// folder with bob with rights, accepts it on bob (also in a directory the
// command makes) and waits with 'folder status --wait' until bob's copy is
// in sync: it must then hold exactly before's files, with no further wait.
func (d *syncDomain) sharePair(alice, bob *agent, name, rights string, before map[string]string) *sharedPair {
	d.t.Helper()
	p := &sharedPair{alice: alice, bob: bob, name: name,
		aDir: filepath.Join(d.dir, "alice-"+name), bDir: filepath.Join(d.dir, "bob-"+name)}
	p.id = d.createFolder(alice, name, p.aDir)
	if fi, err := os.Stat(p.aDir); err != nil || !fi.IsDir() {
		d.t.Fatalf("'folder create' did not make %s: %v", p.aDir, err)
	}
	want := tree{}
	for rel, data := range before {
		want[rel] = d.writeFile(p.aDir, rel, []byte(data))
		for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
			want[dir] = entry{dir: true}
		}
	}
	d.waitStatus(alice, name, fmt.Sprintf("%d files scanned, in sync", len(before)), func(st folderStatus) bool {
		return st.InSync && st.LocalFiles == len(before) && st.LocalBytes == sumSizes(want) && st.LocalChanges == 0
	})
	d.share(alice, name, p.id, bob.user, rights)
	d.accept(bob, name, p.id, alice.user, rights, p.bDir)
	start := time.Now()
	if st := d.waitInSync(bob, name, arriveTimeout); st.ID != p.id || st.Role != rights || st.Root != p.bDir || st.LocalFiles != len(before) {
		d.t.Errorf("bob's status of %s after accepting: %v; want id %s, role %s, root %s, %d files", name, st, p.id, rights, p.bDir, len(before))
	}
	if took := time.Since(start); took > 5*time.Second {
		d.t.Logf("NOTE: bob's copy of %s took %v after 'folder accept' to be in sync (a share that reaches the agent's engine after the folder did waits for the 10 s periodic pull)", name, took.Round(time.Millisecond))
	}
	if diff := want.diff(d.mustTree(p.bDir)); diff != "" {
		d.t.Errorf("bob's copy of %s, in sync by 'folder status --wait', differs from alice's:\n%s", name, diff)
	}
	if st := d.waitInSync(alice, name, arriveTimeout); st.Role != "owner" {
		d.t.Errorf("alice's status of %s: %v; want role owner, as 'folder list' says", name, st)
	}
	return p
}

// both is the two directories, alice's first.
func (p *sharedPair) both() []string { return []string{p.aDir, p.bDir} }

// Alice (home server s1) and bob (home server s2, logging in at s1, which
// sends him on to s2) share a read-write folder and change it from both
// sides: new files and nested directories, edits, deletions and renames
// of files and directories, each seen on the other device with the same
// content. Then an edit of one file on both devices while bob's agent is
// killed: after bob's restart both versions are on both devices, one as a
// .sync-conflict- copy.
func TestFolderSyncBothWays(t *testing.T) {
	d := newSyncDomain(t, 2)
	s1, s2 := d.servers[0], d.servers[1]
	apw := d.addUser("alice", s1)
	bpw := d.addUser("bob", s2)
	alice := d.addAgent("alice-laptop", "alice", apw, s1, s1)
	bob := d.addAgent("bob-laptop", "bob", bpw, s1, s2) // sent on to s2
	p := d.sharePair(alice, bob, "Projects", "rw", nil)

	// Both agents list the folder with the right and where it is synced.
	for _, a := range []struct {
		a           *agent
		right, path string
	}{{alice, "owner", p.aDir}, {bob, "rw", p.bDir}} {
		out := d.mustCLI(a.a.node, "folder", "list", "--json")
		want := fmt.Sprintf(`"id":%q`, p.id)
		if !strings.Contains(compactJSON(out), want) || !strings.Contains(out, a.path) || !strings.Contains(out, fmt.Sprintf("%q", a.right)) {
			t.Errorf("folder list --json on %s:\n%s\nwant Projects (%s) with right %s at %s", a.a.name, out, p.id, a.right, a.path)
		}
	}

	want := tree{}
	write := func(root, rel, data string) {
		t.Helper()
		want[rel] = d.writeFile(root, rel, []byte(data))
		for dir := filepath.ToSlash(filepath.Dir(rel)); dir != "."; dir = filepath.ToSlash(filepath.Dir(dir)) {
			want[dir] = entry{dir: true}
		}
	}

	// alice -> bob: files at the top and in nested directories.
	write(p.aDir, "README.txt", "Projects: shared by alice\n")
	write(p.aDir, "docs/plan.md", "# Plan\n\n1. sync\n2. more sync\n")
	write(p.aDir, "docs/notes/2026.txt", "notes for 2026\n")
	d.waitTree(arriveTimeout, "alice's new files on bob", want, p.both()...)

	// bob -> alice: an edit and a new file.
	write(p.bDir, "README.txt", "Projects: shared by alice, edited by bob\n")
	write(p.bDir, "from-bob.txt", "bob was here\n")
	d.waitTree(arriveTimeout, "bob's edit and new file on alice", want, p.both()...)

	// Deletions, one each way.
	remove := func(root, rel string) {
		t.Helper()
		if err := os.RemoveAll(filepath.Join(root, filepath.FromSlash(rel))); err != nil {
			t.Fatal(err)
		}
		for p := range want {
			if p == rel || strings.HasPrefix(p, rel+"/") {
				delete(want, p)
			}
		}
	}
	remove(p.aDir, "docs/plan.md")
	d.waitTree(arriveTimeout, "alice's deletion of docs/plan.md on bob", want, p.both()...)
	remove(p.bDir, "from-bob.txt")
	d.waitTree(arriveTimeout, "bob's deletion of from-bob.txt on alice", want, p.both()...)

	// Renames: a file on alice's side, a directory on bob's. The old names
	// go, the new ones have the same content.
	rename := func(root, from, to string) {
		t.Helper()
		if err := os.Rename(filepath.Join(root, filepath.FromSlash(from)), filepath.Join(root, filepath.FromSlash(to))); err != nil {
			t.Fatal(err)
		}
		for p, e := range want {
			if p == from || strings.HasPrefix(p, from+"/") {
				delete(want, p)
				want[to+strings.TrimPrefix(p, from)] = e
			}
		}
	}
	rename(p.aDir, "README.txt", "README.md")
	d.waitTree(arriveTimeout, "alice's rename of README.txt to README.md on bob", want, p.both()...)
	rename(p.bDir, "docs/notes", "docs/archive")
	d.waitTree(arriveTimeout, "bob's rename of docs/notes to docs/archive on alice", want, p.both()...)

	// mkdir with nested files, and empty directories, on alice; bob then
	// removes a whole subtree.
	for i := range 3 {
		write(p.aDir, fmt.Sprintf("deep/a/b/c/file%d.txt", i), strings.Repeat(fmt.Sprintf("line %d\n", i), 100*(i+1)))
	}
	write(p.aDir, "deep/a/top.txt", "near the top\n")
	for _, dir := range []string{"deep/a/b/empty", "empty"} {
		if err := os.MkdirAll(filepath.Join(p.aDir, filepath.FromSlash(dir)), 0o755); err != nil {
			t.Fatal(err)
		}
		want[dir] = entry{dir: true}
	}
	d.waitTree(arriveTimeout, "alice's nested directories on bob", want, p.both()...)
	remove(p.bDir, "deep/a/b")
	d.waitTree(arriveTimeout, "bob's removal of deep/a/b on alice", want, p.both()...)

	for _, a := range []*agent{alice, bob} {
		if st := d.waitInSync(a, p.name, arriveTimeout); st.LocalChanges != 0 || st.NeedFiles != 0 || st.LastError != "" {
			t.Errorf("%s: %v; want in sync, no local changes, nothing needed, no error", a.name, st)
		}
	}

	// Conflict: bob's agent is down while both edit doc.txt.
	write(p.aDir, "doc.txt", "first version\n")
	d.waitTree(arriveTimeout, "doc.txt on bob", want, p.both()...)
	d.kill(bob.node)
	const aliceEdit, bobEdit = "alice's edit\n", "bob's edit, made offline, which is longer\n"
	d.writeFile(p.aDir, "doc.txt", []byte(aliceEdit))
	d.waitStatus(alice, p.name, "alice's edit of doc.txt at the server", func(st folderStatus) bool {
		return st.InSync && st.LocalChanges == 0 && st.LocalBytes == sumSizes(d.mustTree(p.aDir))
	})
	d.writeFile(p.bDir, "doc.txt", []byte(bobEdit))
	d.start(bob.node)
	d.waitAgentFollows(bob.node, d.master())
	start := time.Now()
	var copyName string
	d.waitFor(arriveTimeout, "both edits of doc.txt on both devices", func() (bool, string) {
		var desc []string
		var ta tree
		for i, root := range p.both() {
			tr, err := readTree(root, true)
			if err != nil {
				return false, err.Error()
			}
			if i == 0 {
				ta = tr
			} else if diff := ta.diff(tr); diff != "" {
				return false, "alice's and bob's folders differ (bob's is \"got\"):\n" + diff
			}
			doc, _ := os.ReadFile(filepath.Join(root, "doc.txt"))
			cc, err := conflictCopies(root, "doc.txt")
			if err != nil {
				return false, err.Error()
			}
			desc = append(desc, fmt.Sprintf("%s: doc.txt %q, conflict copies %q", root, doc, cc))
			contents := map[string]bool{string(doc): true}
			for n, c := range cc {
				contents[c] = true
				copyName = n
			}
			if len(cc) != 1 || len(contents) != 2 || !contents[aliceEdit] || !contents[bobEdit] {
				return false, strings.Join(desc, "\n")
			}
		}
		return true, strings.Join(desc, "\n")
	})
	t.Logf("the conflict resolved on both devices %v after bob's restart: doc.txt and %s", time.Since(start).Round(time.Millisecond), copyName)
	if !strings.HasPrefix(copyName, "doc.sync-conflict-") || !strings.HasSuffix(copyName, ".txt") {
		t.Errorf("conflict copy named %q; want doc.sync-conflict-<time>-<device>.txt", copyName)
	}

	// After the restart, bob's changes still reach alice.
	want = d.mustTree(p.aDir)
	write(p.bDir, "after-restart.txt", "bob after his restart\n")
	d.waitTree(arriveTimeout, "bob's file written after his restart on alice", want, p.both()...)

	// bob deletes everything in the folder as a shell would (rm -rf
	// Projects/*, which leaves dot files, the marker among them): the
	// deletions reach alice like any other.
	ents, err := os.ReadDir(p.bDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			remove(p.bDir, e.Name())
		}
	}
	if len(want) != 0 {
		t.Fatalf("left after deleting everything: %v", want)
	}
	d.waitTree(arriveTimeout, "bob's deletion of every file on alice", want, p.both()...)
	for _, a := range []*agent{alice, bob} {
		if st := d.waitInSync(a, p.name, arriveTimeout); st.LocalChanges != 0 || st.LocalFiles != 0 || st.LastError != "" {
			t.Errorf("%s at the end: %v; want in sync, no files, no local changes, no error", a.name, st)
		}
	}
	for _, dir := range p.both() {
		if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
			t.Errorf("the marker file: %v", err)
		}
	}
}

// Read-only: bob gets alice's files, but his edits and new files never
// reach her; 'folder status' on bob counts them as local changes, and
// 'folder revert' makes his copy alice's again, keeping his content as
// conflict copies beside it. Reverting is refused on the owner's device.
func TestFolderSyncReadOnly(t *testing.T) {
	d, alice, bob := newPairDomain(t)
	// alice shares a folder that has files already.
	p := d.sharePair(alice, bob, "Shared", "ro", map[string]string{"a.txt": "A1 by alice\n", "dir/b.txt": "B1 by alice\n"})
	want := d.mustTree(p.aDir)

	// bob edits a file and adds one: two local changes, on his device only.
	d.writeFile(p.bDir, "a.txt", []byte("bob's change\n"))
	d.writeFile(p.bDir, "bobs-new.txt", []byte("bob's new file\n"))
	d.waitStatus(bob, p.name, "bob's two local changes", func(st folderStatus) bool {
		return st.Role == "ro" && st.LocalChanges == 2
	})
	if out := d.mustCLI(bob.node, "folder", "status", p.name); !strings.Contains(out, "folder revert "+p.name) {
		t.Errorf("folder status on bob with local changes:\n%s\nwant it to say 'baton folder revert %s' undoes them", out, p.name)
	}
	// A later change of alice's reaches bob; by then his changes would have
	// reached her if anyone took them.
	want["c.txt"] = d.writeFile(p.aDir, "c.txt", []byte("C1 by alice\n"))
	d.waitFor(arriveTimeout, "c.txt on bob", func() (bool, string) {
		h, err := fileHash(filepath.Join(p.bDir, "c.txt"))
		return err == nil && h == want["c.txt"].hash, fmt.Sprint(err)
	})
	if st := d.waitInSync(bob, p.name, arriveTimeout); st.LocalChanges != 2 {
		t.Errorf("bob after c.txt arrived: %v; want 2 local changes still", st)
	}
	time.Sleep(time.Second) // a notification in flight would land by now
	if diff := want.diff(d.mustTree(p.aDir)); diff != "" {
		t.Errorf("alice's folder took something of read-only bob's:\n%s", diff)
	}
	if r := d.cli(alice.node, "folder", "revert", p.name); r.code != 1 {
		t.Errorf("folder revert on the owner's device: %v; want it refused (exit 1)", r)
	}

	// Revert: bob's copy is alice's again; his content is kept aside.
	r := d.runFor(bob.node, 2*arriveTimeout, "folder", "revert", p.name)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: ") {
		t.Fatalf("folder revert on bob: %v", r)
	}
	t.Logf("on bob: %s", strings.TrimSpace(r.stdout))
	got := d.mustTree(p.bDir)
	copies := map[string]string{}
	for _, name := range []string{"a.txt", "bobs-new.txt"} {
		cc, err := conflictCopies(p.bDir, name)
		if err != nil {
			t.Fatal(err)
		}
		for n, c := range cc {
			copies[c] = n
			delete(got, n)
		}
	}
	if diff := want.diff(got); diff != "" {
		t.Errorf("bob's folder after the revert, conflict copies aside, differs from alice's:\n%s", diff)
	}
	for _, c := range []string{"bob's change\n", "bob's new file\n"} {
		if copies[c] == "" {
			t.Errorf("after the revert bob's %q is not kept as a conflict copy; copies: %q", c, copies)
		}
	}
	if st := d.waitStatus(bob, p.name, "no local changes after the revert", func(st folderStatus) bool {
		return st.LocalChanges == 0
	}); !st.InSync {
		t.Errorf("bob after the revert: %v; want in sync", st)
	}

	// Alice's folder is unchanged, and her next change still arrives.
	want["d.txt"] = d.writeFile(p.aDir, "d.txt", []byte("D1 by alice\n"))
	d.waitFor(arriveTimeout, "d.txt on bob after the revert", func() (bool, string) {
		h, err := fileHash(filepath.Join(p.bDir, "d.txt"))
		return err == nil && h == want["d.txt"].hash, fmt.Sprint(err)
	})
	if diff := want.diff(d.mustTree(p.aDir)); diff != "" {
		t.Errorf("alice's folder at the end:\n%s", diff)
	}
}

// A folder emptied while its agent was down, its marker file gone too, is
// not taken for deleted (as if its drive were not mounted): the agent stops
// it, 'folder status' says so and how to confirm, and the other device
// keeps its files. 'folder rescan --wait' confirms; then the deletion
// reaches the other device.
func TestFolderSyncEmptied(t *testing.T) {
	d, alice, bob := newPairDomain(t)
	p := d.sharePair(alice, bob, "Emptied", "rw", map[string]string{"a.txt": "A1 by alice\n", "dir/b.txt": "B1 by alice\n"})
	want := d.mustTree(p.bDir)

	d.stop(alice.node) // cleanly: the agent stores what it synced
	entries, err := os.ReadDir(p.aDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(p.aDir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	d.start(alice.node)
	d.waitAgentFollows(alice.node, d.master())
	st := d.waitStatus(alice, p.name, "stopped as emptied", func(st folderStatus) bool {
		return st.State == "error" && st.Emptied
	})
	t.Logf("on alice: %v", st)
	if !strings.HasPrefix(st.LastError, "folder directory emptied") {
		t.Errorf("alice's folder stopped as emptied with last error %q; want it to say the directory was emptied", st.LastError)
	}
	hint := "baton folder rescan " + p.name
	if out := d.mustCLI(alice.node, "folder", "status", p.name); !strings.Contains(out, hint) {
		t.Errorf("folder status of the emptied folder on alice:\n%s\nwant it to say %q confirms", out, hint)
	}
	if r := d.runFor(alice.node, arriveTimeout+cliTimeout, "folder", "status", p.name, "--wait", "--timeout", arriveTimeout.String()); r.code != 1 ||
		!strings.Contains(r.stderr, "folder "+p.name+" is stopped") || !strings.Contains(r.stderr, hint) {
		t.Errorf("folder status --wait of the emptied folder: %v; want exit 1 at once, saying it is stopped and %q confirms", r, hint)
	}
	if diff := want.diff(d.mustTree(p.bDir)); diff != "" {
		t.Errorf("bob's copy changed while alice's folder was stopped as emptied:\n%s", diff)
	}

	r := d.runFor(alice.node, arriveTimeout+cliTimeout, "folder", "rescan", p.name, "--wait", "--timeout", arriveTimeout.String())
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: rescan of folder "+p.name+" ("+p.id+") at "+p.aDir+" requested\n") || !strings.Contains(r.stdout, ": in sync\n") {
		t.Fatalf("folder rescan --wait on alice: %v; want the request, then the folder in sync", r)
	}
	d.waitTree(arriveTimeout, "alice's confirmed emptying on bob", tree{}, p.both()...)
	for _, a := range []*agent{alice, bob} {
		if st := d.waitInSync(a, p.name, arriveTimeout); st.LocalFiles != 0 || st.LastError != "" || st.Emptied {
			t.Errorf("%s after the rescan: %v; want in sync, no files, no error, not emptied", a.name, st)
		}
	}
}

// stop stops n's daemon with SIGTERM, as a user quitting it, and waits for
// it to exit.
func (d *syncDomain) stop(n *node) {
	d.t.Helper()
	if n.proc == nil {
		d.t.Fatalf("stop %s: not running", n.name)
	}
	if err := n.proc.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatalf("stopping %s: %v", n.name, err)
	}
	select {
	case <-n.exited:
	case <-time.After(startTimeout):
		d.kill(n)
		d.t.Fatalf("%s did not stop within %v of SIGTERM", n.name, startTimeout)
	}
	state := n.proc.ProcessState
	n.proc = nil
	d.t.Logf("stopped %s with SIGTERM (%v)", n.name, state)
}

// A 64 MiB file of random bytes arrives intact.
func TestFolderSyncLargeFile(t *testing.T) {
	d, alice, bob := newPairDomain(t)
	p := d.sharePair(alice, bob, "Media", "rw", nil)

	const size = 64 << 20
	want := tree{"big.bin": d.writeFile(p.aDir, "big.bin", randomBytes(size))}
	took := d.waitTree(2*arriveTimeout, "the 64 MiB file on bob", want, p.both()...)
	t.Logf("64 MiB arrived and verified in %v (%.1f MB/s)", took.Round(time.Millisecond), float64(size)/1e6/took.Seconds())
	for _, a := range []*agent{alice, bob} {
		if st := d.waitInSync(a, p.name, arriveTimeout); st.LocalFiles != 1 || st.LocalBytes != size {
			t.Errorf("%s: %v; want one file of %d bytes", a.name, st, size)
		}
	}
}

// Many small files: 10,000 files of 4 KiB in 100 directories, written on
// alice's device, all arrive on bob's with the same content.
func TestFolderSyncManySmallFiles(t *testing.T) {
	const files, timeout = 10000, 3 * time.Minute
	d, alice, bob := newPairDomain(t)
	p := d.sharePair(alice, bob, "Many", "rw", nil)

	want := tree{}
	start := time.Now()
	for i := range files {
		dir := fmt.Sprintf("dir%03d", i%100)
		want[dir] = entry{dir: true}
		rel := fmt.Sprintf("%s/file%05d.dat", dir, i)
		want[rel] = d.writeFile(p.aDir, rel, randomBytes(4<<10))
	}
	t.Logf("wrote %d files of 4 KiB in %v", files, time.Since(start).Round(time.Millisecond))
	took := d.waitTree(timeout, fmt.Sprintf("%d files of 4 KiB on bob", files), want, p.both()...)
	t.Logf("%d files of 4 KiB arrived and verified in %v (%.0f files/s)", files, took.Round(time.Millisecond), float64(files)/took.Seconds())
	for _, a := range []*agent{alice, bob} {
		if st := d.waitInSync(a, p.name, arriveTimeout); st.LocalFiles != files || st.LocalDirs != 100 {
			t.Errorf("%s: %v; want %d files in 100 directories", a.name, st, files)
		}
	}
}

// sumSizes is the total size of the files in tr.
func sumSizes(tr tree) int64 {
	var n int64
	for _, e := range tr {
		n += e.size
	}
	return n
}

// compactJSON drops the spaces after colons, for substring checks.
func compactJSON(s string) string { return strings.ReplaceAll(s, "\": ", "\":") }

// A receiving agent killed with SIGKILL in the middle of a large file gets
// the file after a restart, and the partial file it had is taken up, not
// left behind: 'folder status' counts its blocks as resumed, and the
// restarted agent fetches less than the file.
func TestFolderSyncKilledMidFile(t *testing.T) {
	d, alice, bob := newPairDomain(t)
	p := d.sharePair(alice, bob, "Media", "rw", nil)

	const size = 128 << 20
	data := randomBytes(size)
	want := tree{"big.bin": d.writeFile(p.aDir, "big.bin", data)}
	var partial string
	d.waitFor(2*arriveTimeout, "an eighth of big.bin in bob's temporary file", func() (bool, string) {
		if _, err := os.Lstat(filepath.Join(p.bDir, "big.bin")); err == nil {
			t.Fatal("big.bin arrived on bob before he could be killed in the middle of it")
		}
		ents, _ := os.ReadDir(p.bDir)
		for _, de := range ents {
			if !strings.HasPrefix(de.Name(), tempPrefix) {
				continue
			}
			fi, err := os.Stat(filepath.Join(p.bDir, de.Name()))
			if err != nil {
				continue
			}
			// The file has its full size at once; its allocated
			// blocks tell how much is written.
			if alloc := allocatedBytes(fi); alloc < size/8 {
				return false, fmt.Sprintf("%s: %d bytes written", de.Name(), alloc)
			}
			partial = filepath.Join(p.bDir, de.Name())
			return true, ""
		}
		return false, "no temporary file yet"
	})
	d.kill(bob.node)
	got, err := os.ReadFile(partial)
	if err != nil {
		t.Fatalf("the temporary file is gone after kill -9: %v", err)
	}
	// Bytes in place, by 64 KiB chunk (random data: a chunk equal to
	// the source's was written), and the longest run of them.
	var same, run, longest int
	for off := 0; off+64<<10 <= len(got) && off+64<<10 <= size; off += 64 << 10 {
		if string(got[off:off+64<<10]) == string(data[off:off+64<<10]) {
			same += 64 << 10
			run += 64 << 10
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	t.Logf("killed bob with %.1f of %d MiB of big.bin in %s (%.1f MiB in one run)", float64(same)/(1<<20), size>>20, filepath.Base(partial), float64(longest)/(1<<20))
	if same == 0 {
		t.Fatal("the temporary file holds none of the file")
	}
	d.start(bob.node)
	d.waitTree(2*arriveTimeout, "the 128 MiB file on bob after the restart", want, p.both()...)
	st := d.waitInSync(bob, p.name, arriveTimeout)
	t.Logf("on bob after the restart: %.1f MiB fetched, %.1f MiB resumed", float64(st.Fetched)/(1<<20), float64(st.Resumed)/(1<<20))
	if _, err := os.Lstat(partial); err == nil {
		t.Errorf("the temporary file %s is still there after the file arrived", filepath.Base(partial))
	}
	// Blocks are at most maxBlock long, so a run of twice that holds at
	// least one whole block, which the restarted agent must take up
	// rather than fetch again. (A shorter run may hold none: the kill
	// can come before any block was written whole.)
	if longest < 2*maxBlock {
		t.Logf("not checking the resumed bytes: no run of %d MiB in the partial file", 2*maxBlock>>20)
		return
	}
	if st.Resumed <= 0 || st.Fetched+st.Copied+st.Resumed < size || st.Fetched >= size {
		t.Errorf("on bob after the restart: %d bytes fetched, %d copied, %d resumed; want some resumed, less than the %d-byte file fetched, and all of it covered",
			st.Fetched, st.Copied, st.Resumed, size)
	}
}

// maxBlock is the largest block the agents cut files into
// (syncfs.DefaultChunking.MaxSize).
const maxBlock = 2 << 20
