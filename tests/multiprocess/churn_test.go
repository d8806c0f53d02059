package multiprocess

// A git repository in a synced folder, checked out at many commits in a
// row on one device while the other edits unrelated files: files and
// whole directories appear, change, move and disappear faster than they
// can be fetched. Every copy must end identical, a valid repository, and
// free of the engine's internal files.

import (
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var churnSeeds = flag.String("churn.seeds", "1,2,3", "comma-separated seeds of TestFolderSyncGitChurn, one run each")

// Sizes of the churn test.
const (
	churnCommits   = 25 // commits in the generated repository
	churnCheckouts = 24 // checkouts in a row on alice
	churnTimeout   = 2 * time.Minute
)

// TestFolderSyncGitChurn builds a repository of churnCommits commits that
// add, change, remove and rename files and whole directories (some files
// large enough to be fetched in several blocks), clones it into alice's
// copy of a shared read-write folder, and, once bob has it, checks it out
// at churnCheckouts commits in a row without pauses while bob edits files
// of his own. Then alice's working tree must be the last commit's, every
// copy (alice's, bob's, the server's) must hold the same tree, 'git fsck'
// must pass in each, every host must report the folder in sync with
// nothing failed, and no temporary or partial file may remain anywhere.
// One run per seed of -churn.seeds.
func TestFolderSyncGitChurn(t *testing.T) {
	skipIfShort(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	for _, s := range strings.Split(*churnSeeds, ",") {
		seed, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			t.Fatalf("-churn.seeds: %v", err)
		}
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { gitChurn(t, seed) })
	}
}

func gitChurn(t *testing.T, seed uint64) {
	d, alice, bob := newPairDomain(t)
	p := d.sharePair(alice, bob, "code", "rw", nil)
	serverDir := d.serverRoot(p.name, alice.user)

	// The repository, built outside the folder, cloned into it.
	g := &gitRunner{d: d, home: filepath.Join(d.dir, "git-home")}
	src := filepath.Join(d.dir, "git-src")
	repo := newChurnRepo(seed)
	commits := repo.build(g, src)
	g.run(d.dir, "clone", "-q", "--no-hardlinks", src, filepath.Join(p.aDir, "proj"))
	want := d.mustTree(p.aDir)
	d.waitTree(churnTimeout, "the clone on bob and the server", want, p.aDir, p.bDir, serverDir)

	// The churn: checkouts in a row on alice, bob's edits in between.
	rng := rand.New(rand.NewPCG(seed, 0xc0ffee))
	bobFiles := map[string][]byte{}
	began := time.Now()
	last := len(commits) - 1
	for i := range churnCheckouts {
		next := rng.IntN(len(commits))
		for next == last {
			next = rng.IntN(len(commits))
		}
		last = next
		g.run(filepath.Join(p.aDir, "proj"), "checkout", "-q", "--detach", commits[next])
		name := fmt.Sprintf("bob/notes-%d.txt", rng.IntN(6))
		if i%7 == 6 {
			name = fmt.Sprintf("bob/deep/d%d/todo.md", i)
		}
		bobFiles[name] = fmt.Appendf(bobFiles[name], "bob's edit %d while alice checks out commit %d\n", i, next)
		d.writeFile(p.bDir, name, bobFiles[name])
	}
	t.Logf("seed %d: %d checkouts and %d edits of bob's files in %v, ending at commit %d of %d",
		seed, churnCheckouts, churnCheckouts, time.Since(began).Round(time.Millisecond), last, len(commits))

	// alice's working tree is the last commit's, exactly.
	got := d.mustTree(p.aDir)
	work := tree{}
	for n, e := range got {
		if n == "proj" || strings.HasPrefix(n, "proj/") && n != "proj/.git" && !strings.HasPrefix(n, "proj/.git/") {
			work[n] = e
		}
	}
	if diff := repo.trees[last].diff(work); diff != "" {
		t.Fatalf("alice's working tree after checking out commit %d differs from it:\n%s", last, diff)
	}
	// What every copy must hold: alice's repository and bob's files.
	want = tree{}
	for n, e := range got {
		if n != "bob" && !strings.HasPrefix(n, "bob/") {
			want[n] = e
		}
	}
	for n, data := range bobFiles {
		want[n] = entry{size: int64(len(data)), hash: hashOf(data)}
		for dir := path.Dir(n); dir != "."; dir = path.Dir(dir) {
			want[dir] = entry{dir: true}
		}
	}
	took := d.waitTree(churnTimeout, "every copy identical after the churn", want, p.aDir, p.bDir, serverDir)
	t.Logf("seed %d: converged %v after the last checkout", seed, took.Round(time.Millisecond))

	for _, a := range []*agent{alice, bob} {
		st := d.waitInSync(a, p.name, arriveTimeout)
		if st.LocalChanges != 0 || st.NeedFiles != 0 || st.LastError != "" || st.Stuck || len(st.Failed) > 0 {
			t.Errorf("on %s after the churn: %v; want in sync, nothing pending or failed", a.name, st)
		}
	}
	d.waitFor(arriveTimeout, "the server's copy in sync, nothing failed", func() (bool, string) {
		st, err := parseFolderStatus(d.cli(d.master(), "folder", "status", p.name, "--owner", alice.user, "--json"))
		if err != nil {
			return false, err.Error()
		}
		return st.InSync && st.LastError == "" && !st.Stuck && len(st.Failed) == 0, st.String()
	})
	for _, root := range []string{p.aDir, p.bDir, serverDir} {
		g.run(filepath.Join(root, "proj"), "fsck", "--full", "--no-progress")
		if left := internalFiles(t, root); len(left) > 0 {
			t.Errorf("internal files left in %s: %q", root, left)
		}
	}
}

// serverRoot returns where the master keeps its copy of owner's folder
// name, from 'folder status --owner OWNER --json'.
func (d *syncDomain) serverRoot(name, owner string) string {
	d.t.Helper()
	var st folderStatus
	d.waitFor(settleTimeout, "the server's copy of "+name, func() (bool, string) {
		var err error
		st, err = parseFolderStatus(d.cli(d.master(), "folder", "status", name, "--owner", owner, "--json"))
		if err != nil {
			return false, err.Error()
		}
		return st.Root != "", st.String()
	})
	return st.Root
}

// internalFiles lists the names under root that start with the engine's
// temporary prefix (temporary and partial files).
func internalFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(de.Name(), tempPrefix) {
			out = append(out, strings.TrimPrefix(p, root+string(filepath.Separator)))
		}
		return nil
	})
	if err != nil {
		t.Errorf("walking %s: %v", root, err)
	}
	return out
}

// gitRunner runs git with a configuration of its own (no user or system
// configuration is read) and fixed identities and dates.
type gitRunner struct {
	d    *syncDomain
	home string
	date int64 // seconds, advanced at each commit
}

func (g *gitRunner) run(dir string, args ...string) string {
	g.d.t.Helper()
	if err := os.MkdirAll(g.home, 0o755); err != nil {
		g.d.t.Fatal(err)
	}
	cmd := exec.CommandContext(g.d.ctx, "git", append([]string{"-c", "user.name=Alice", "-c", "user.email=alice@example.com",
		"-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", "-c", "core.autocrlf=false", "-c", "gc.auto=0",
		"-c", "safe.directory=*"}, args...)...)
	cmd.Dir = dir
	date := fmt.Sprintf("%d +0000", 1_700_000_000+g.date)
	cmd.Env = append(os.Environ(), "HOME="+g.home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date, "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.d.t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// churnRepo generates a repository's history from a seed: what each
// commit's working tree holds.
type churnRepo struct {
	rng   *rand.Rand
	files map[string][]byte // the working tree being built
	trees []tree            // each commit's, with directories
	n     int               // names made so far
}

func newChurnRepo(seed uint64) *churnRepo {
	return &churnRepo{rng: rand.New(rand.NewPCG(seed, 0x5eed)), files: map[string][]byte{}}
}

// build makes the repository in dir, one commit at a time, and returns
// the commits' hashes.
func (r *churnRepo) build(g *gitRunner, dir string) []string {
	t := g.d.t
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	g.run(dir, "init", "-q")
	var commits []string
	for i := range churnCommits {
		r.change(i)
		// The working tree on disk is made to match files.
		if err := r.writeTo(dir); err != nil {
			t.Fatal(err)
		}
		g.date += 3600
		g.run(dir, "add", "-A")
		g.run(dir, "commit", "-q", "--allow-empty", "-m", fmt.Sprintf("commit %d", i))
		commits = append(commits, strings.TrimSpace(g.run(dir, "rev-parse", "HEAD")))
		r.trees = append(r.trees, r.tree())
	}
	return commits
}

// change applies a few random changes to the working tree: commit i.
// The first commits lay out a tree with cmd/ (which some later commits
// drop and bring back, as the repository did).
func (r *churnRepo) change(i int) {
	if i == 0 {
		r.put("README.md", r.text(2000))
		r.put("go.mod", []byte("module example.com/proj\n"))
		r.addDir("internal/core")
		return
	}
	if i == 3 {
		r.addDir("cmd/baton")
		r.put("cmd/baton/big.bin", r.binary())
		return
	}
	// Large files rewritten in most commits: fetches of several blocks
	// that the next checkouts cut short.
	for _, n := range slices.Sorted(maps.Keys(r.files)) {
		if strings.HasSuffix(n, ".bin") && r.rng.IntN(2) > 0 {
			r.put(n, r.binary())
		}
	}
	for range 2 + r.rng.IntN(4) {
		names := slices.Sorted(maps.Keys(r.files))
		dirs := r.dirs()
		switch op := r.rng.IntN(100); {
		case op < 25: // edit a file
			n := names[r.rng.IntN(len(names))]
			r.put(n, append(r.files[n], r.text(500)...))
		case op < 42: // a new file
			dir := dirs[r.rng.IntN(len(dirs))]
			r.put(path.Join(dir, r.name("f")+".go"), r.text(3000))
		case op < 45: // a new large file, several blocks
			dir := dirs[r.rng.IntN(len(dirs))]
			r.put(path.Join(dir, r.name("data")+".bin"), r.binary())
		case op < 60: // a file deleted
			if len(names) > 4 {
				delete(r.files, names[r.rng.IntN(len(names))])
			}
		case op < 70: // a file renamed, maybe to another directory
			n := names[r.rng.IntN(len(names))]
			dir := dirs[r.rng.IntN(len(dirs))]
			r.move(n, path.Join(dir, r.name("moved")+path.Ext(n)))
		case op < 80: // a whole new directory
			parent := []string{"cmd", "internal", "pkg", "docs/" + r.name("d")}[r.rng.IntN(4)]
			r.addDir(path.Join(parent, r.name("m")))
		case op < 90: // a whole directory deleted
			if d := dirs[r.rng.IntN(len(dirs))]; d != "." && len(r.under(d)) < len(r.files)-3 {
				for _, n := range r.under(d) {
					delete(r.files, n)
				}
			}
		default: // a whole directory renamed
			if d := dirs[r.rng.IntN(len(dirs))]; d != "." {
				to := path.Join(path.Dir(d), r.name("ren"))
				for _, n := range r.under(d) {
					r.move(n, to+strings.TrimPrefix(n, d))
				}
			}
		}
	}
}

func (r *churnRepo) put(name string, data []byte) { r.files[name] = data }

func (r *churnRepo) move(from, to string) {
	if _, ok := r.files[to]; ok || from == to {
		return
	}
	// A file can't become a directory holding files, nor the reverse.
	for n := range r.files {
		if strings.HasPrefix(n, to+"/") || strings.HasPrefix(to, n+"/") {
			return
		}
	}
	r.files[to] = r.files[from]
	delete(r.files, from)
}

// addDir adds a directory of a few files, one in a subdirectory.
func (r *churnRepo) addDir(dir string) {
	for j := range 2 + r.rng.IntN(4) {
		r.put(path.Join(dir, fmt.Sprintf("file%d.go", j)), r.text(4000))
	}
	r.put(path.Join(dir, "sub", "doc.md"), r.text(1500))
}

// under lists the files in dir.
func (r *churnRepo) under(dir string) []string {
	var out []string
	for n := range r.files {
		if strings.HasPrefix(n, dir+"/") {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// dirs lists the directories holding files, "." for the top.
func (r *churnRepo) dirs() []string {
	set := map[string]bool{".": true}
	for n := range r.files {
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			set[d] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

func (r *churnRepo) name(prefix string) string {
	r.n++
	return fmt.Sprintf("%s%d", prefix, r.n)
}

// text returns up to about n bytes of lines.
func (r *churnRepo) text(n int) []byte {
	var b []byte
	for len(b) < n/2+r.rng.IntN(n/2+1) {
		b = fmt.Appendf(b, "// line %d: %x\n", len(b), r.rng.Uint64())
	}
	return b
}

// binary returns 4.5 to 6 MiB of random bytes: several blocks, and more
// than the engine applies in batches (each such file is fetched alone,
// in a partial file kept when the fetch is cut short).
func (r *churnRepo) binary() []byte {
	b := make([]byte, 4608<<10+r.rng.IntN(1536<<10))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.rng.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// writeTo makes dir's working tree (all but .git) hold files exactly.
func (r *churnRepo) writeTo(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() != ".git" {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	for n, data := range r.files {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// tree is the working tree as a folder of the test sees it, under proj/.
func (r *churnRepo) tree() tree {
	out := tree{"proj": {dir: true}}
	for n, data := range r.files {
		out["proj/"+n] = entry{size: int64(len(data)), hash: hashOf(data)}
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			out["proj/"+d] = entry{dir: true}
		}
	}
	return out
}
