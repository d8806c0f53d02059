package multiprocess

// The folder-sync harness: servers with a private address (servers dial
// it) and a public one (agents dial it and log in there), users with
// passwords at their home servers, desktop agents that logged in with
// 'baton login' and run 'baton run', and what the tests read of their
// synced folders: 'folder status --json' and the files themselves.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Time limits of the folder-sync tests, on top of the harness's.
const (
	syncTestTimeout = 5 * time.Minute  // one test, from setup to the last check (replaces testTimeout)
	arriveTimeout   = 60 * time.Second // a small change reaching the other device
	syncPoll        = 100 * time.Millisecond
)

// syncDomain is a domain of servers with public and private addresses,
// users with passwords, and logged-in agents.
type syncDomain struct {
	*cluster
	servers []*server
	agents  []*agent
}

// server is a server's node and the public address agents dial.
type server struct {
	*node
	public string // multiaddr, without /p2p
}

// loginAddr is what a user logs in at: the public address and the ID.
func (s *server) loginAddr() string { return s.public + "/p2p/" + s.id }

// agent is a desktop agent's node and the user it logged in as.
type agent struct {
	*node
	user       string
	homeServer string // the server that signed its certificate, by name
}

// newSyncDomain makes a domain "test" of servers s1..sN, each listening on
// a private address (in its host record for servers) and on a public one
// (for agents, where those not logged in yet may only log in), starts them
// and waits until s1 is master everywhere. The test's deadline is
// syncTestTimeout.
func newSyncDomain(t *testing.T, servers int) *syncDomain {
	t.Helper()
	c := newCluster(t)
	// Transfers take longer than the failover scenarios: a deadline of our
	// own. newCluster's cleanup kills the daemons whichever ends first.
	ctx, cancel := context.WithTimeout(t.Context(), syncTestTimeout)
	t.Cleanup(cancel)
	c.ctx = ctx
	d := &syncDomain{cluster: c}
	for i := 1; i <= servers; i++ {
		d.servers = append(d.servers, d.addServer(fmt.Sprintf("s%d", i)))
	}
	s1 := d.servers[0]
	args := []string{"domain", "create", "--name", "test"}
	for _, s := range d.servers {
		args = append(args, "--chain", s.record)
	}
	c.mustCLI(s1.node, args...)
	genesis := filepath.Join(c.dir, "test.genesis")
	c.mustCLI(s1.node, "domain", "export", "-o", genesis)
	for _, s := range d.servers[1:] {
		c.mustCLI(s.node, "domain", "join", genesis)
	}
	var nodes []*node
	for _, s := range d.servers {
		c.start(s.node)
		nodes = append(nodes, s.node)
	}
	c.waitMaster(s1.node, nodes, 0)
	return d
}

// addServer makes a server's home: it listens on a private address (the
// one in its host record that servers dial) and on a public one, which
// agents dial and log in at.
func (d *syncDomain) addServer(name string) *server {
	c := d.cluster
	c.t.Helper()
	priv := c.freePort()
	pub := c.freePort()
	n := &node{
		name:    name,
		home:    filepath.Join(c.dir, name),
		port:    priv,
		record:  filepath.Join(c.dir, name+".host"),
		logPath: filepath.Join(c.dir, name+".log"),
	}
	c.nodes = append(c.nodes, n)
	privAddr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", priv)
	pubAddr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", pub)
	out := c.mustCLI(n, "init", "--server", "--name", name, "--listen", privAddr,
		"--private-addr", privAddr, "--public-addr", pubAddr, "--public-listen", pubAddr, "--json")
	var info struct {
		ID           string   `json:"id"`
		PublicAddrs  []string `json:"public_addrs"`
		PrivateAddrs []string `json:"private_addrs"`
		PublicListen []string `json:"public_listen"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.ID == "" {
		c.t.Fatalf("init %s --json printed %q: %v", name, out, err)
	}
	if !slices.Equal(info.PublicAddrs, []string{pubAddr}) || !slices.Equal(info.PrivateAddrs, []string{privAddr}) ||
		!slices.Equal(info.PublicListen, []string{pubAddr}) {
		c.t.Fatalf("init %s: public %v, private %v, public listen %v; want %s, %s, %s",
			name, info.PublicAddrs, info.PrivateAddrs, info.PublicListen, pubAddr, privAddr, pubAddr)
	}
	n.id = info.ID
	c.mustCLI(n, "keys", "export", "-o", n.record)
	return &server{node: n, public: pubAddr}
}

// master is s1, the master of the domain (no test here fails a server).
func (d *syncDomain) master() *node { return d.servers[0].node }

// addUser adds user at the master with home as their home server, then
// sets their password at home once it holds the user. It returns the
// password file.
// newPairDomain returns a domain of one server, s1, home of the users
// alice and bob, each logged in from a laptop.
func newPairDomain(t *testing.T) (d *syncDomain, alice, bob *agent) {
	d = newSyncDomain(t, 1)
	s1 := d.servers[0]
	apw := d.addUser("alice", s1)
	bpw := d.addUser("bob", s1)
	alice = d.addAgent("alice-laptop", "alice", apw, s1, s1)
	bob = d.addAgent("bob-laptop", "bob", bpw, s1, s1)
	return d, alice, bob
}

func (d *syncDomain) addUser(user string, home *server) string {
	c := d.cluster
	c.t.Helper()
	c.write(d.master(), "user", "add", user, "--home-server", home.name)
	pw := filepath.Join(c.dir, user+".password")
	if err := os.WriteFile(pw, []byte(user+"'s password, not guessed\n"), 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.waitFor(settleTimeout, fmt.Sprintf("%s to set %s's password", home.name, user), func() (bool, string) {
		r := c.cli(home.node, "user", "passwd", user, "--password-file", pw)
		return r.code == 0 && strings.HasPrefix(r.stdout, "ok: "), r.String()
	})
	return pw
}

// addAgent makes an agent's home (device name device, a port the OS
// picks), logs it in as user with the password in pwFile at the server
// at, starts its daemon and waits until it follows the master. A login at
// a server other than the user's home server is sent on to it; wantHome
// is the server that must have signed the certificate.
func (d *syncDomain) addAgent(device, user, pwFile string, at, wantHome *server) *agent {
	d.t.Helper()
	return d.addAgentAt(device, user, pwFile, at, wantHome, "")
}

// addAgentAt is addAgent listening on a free port of ip, a loopback
// address of its own ("": any port of 127.0.0.1), so that netCut can cut
// it off from other hosts.
func (d *syncDomain) addAgentAt(device, user, pwFile string, at, wantHome *server, ip string) *agent {
	c := d.cluster
	c.t.Helper()
	n := &node{
		name:    device,
		home:    filepath.Join(c.dir, device),
		logPath: filepath.Join(c.dir, device+".log"),
	}
	c.nodes = append(c.nodes, n)
	listen := "/ip4/127.0.0.1/tcp/0"
	if ip != "" {
		n.ip, n.port = ip, c.freePortOn(ip)
		listen = fmt.Sprintf("/ip4/%s/tcp/%d", ip, n.port)
	}
	out := c.mustCLI(n, "init", "--agent", "--name", device, "--listen", listen, "--json")
	var info struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.ID == "" {
		c.t.Fatalf("init %s --json printed %q: %v", device, out, err)
	}
	n.id = info.ID
	out = c.mustCLI(n, "login", user+"@"+at.loginAddr(), "--password-file", pwFile, "--json")
	var login struct {
		User           string `json:"user"`
		Device         string `json:"device"`
		HomeServer     string `json:"home_server"`
		HomeServerName string `json:"home_server_name"`
		Domain         string `json:"domain"`
	}
	if err := json.Unmarshal([]byte(out), &login); err != nil {
		c.t.Fatalf("login --json on %s printed %q: %v", device, out, err)
	}
	if login.User != user || login.Device != n.id || login.HomeServer != wantHome.id || login.HomeServerName != wantHome.name || login.Domain != "test" {
		c.t.Fatalf("login of %s as %s at %s: %+v; want user %s, device %s, home server %s (%s), domain test",
			device, user, at.name, login, user, n.id, wantHome.name, wantHome.id)
	}
	c.t.Logf("%s logged in as %s at %s; certificate signed by %s", device, user, at.name, login.HomeServerName)
	c.start(n)
	c.waitAgentFollows(n, d.master())
	a := &agent{node: n, user: user, homeServer: login.HomeServerName}
	d.agents = append(d.agents, a)
	return a
}

// runFor runs baton with args in n's home, like cli, but allows it up to
// timeout (the harness's cliTimeout is too short for long waits).
func (d *syncDomain) runFor(n *node, timeout time.Duration, args ...string) result {
	d.cluster.t.Helper()
	return d.cluster.runWithin(timeout, append([]string{"--home", n.home}, args...)...)
}

// The lines the agent's folder commands print.
var (
	createdLine  = regexp.MustCompile(`^ok: folder (\S+) \(([0-9a-f]+)\) created, synced at (.+)\n$`)
	sharedLine   = regexp.MustCompile(`^ok: folder (\S+) \(([0-9a-f]+)\) shared with (\S+) \((ro|rw)\)\n$`)
	acceptedLine = regexp.MustCompile(`^ok: folder (\S+) \(([0-9a-f]+), (\S+)'s, (ro|rw)\) synced at (.+)\n$`)
)

// createFolder runs 'folder create NAME DIR' on a and returns the folder's
// ID.
func (d *syncDomain) createFolder(a *agent, name, dir string) string {
	d.t.Helper()
	var r result
	// A device is accepted once the Catalog reached its home server; the
	// first request may come a moment before.
	d.waitFor(settleTimeout, a.name+" to create folder "+name, func() (bool, string) {
		r = d.cli(a.node, "folder", "create", name, dir)
		return r.code == 0, r.String()
	})
	m := createdLine.FindStringSubmatch(r.stdout)
	if m == nil || m[1] != name || m[3] != dir {
		d.t.Fatalf("on %s: %v; want \"ok: folder %s (ID) created, synced at %s\"", a.name, r, name, dir)
	}
	d.t.Logf("on %s: %s", a.name, strings.TrimSpace(r.stdout))
	return m[2]
}

// share runs 'folder share NAME USER --rights RIGHTS' on a.
func (d *syncDomain) share(a *agent, name, id, user, rights string) {
	d.t.Helper()
	r := d.cli(a.node, "folder", "share", name, user, "--rights", rights)
	m := sharedLine.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil || m[1] != name || m[2] != id || m[3] != user || m[4] != rights {
		d.t.Fatalf("on %s: %v; want \"ok: folder %s (%s) shared with %s (%s)\"", a.name, r, name, id, user, rights)
	}
	d.t.Logf("on %s: %s", a.name, strings.TrimSpace(r.stdout))
}

// accept runs 'folder accept NAME DIR' on a, once a's copy of the Catalog
// shows the share, and checks what it says it synced.
func (d *syncDomain) accept(a *agent, name, id, owner, rights, dir string) {
	d.t.Helper()
	var r result
	d.waitFor(settleTimeout, a.name+" to accept folder "+name, func() (bool, string) {
		r = d.cli(a.node, "folder", "accept", name, dir)
		return r.code == 0, r.String()
	})
	m := acceptedLine.FindStringSubmatch(r.stdout)
	if m == nil || m[1] != name || m[2] != id || m[3] != owner || m[4] != rights || m[5] != dir {
		d.t.Fatalf("on %s: %v; want \"ok: folder %s (%s, %s's, %s) synced at %s\"", a.name, r, name, id, owner, rights, dir)
	}
	d.t.Logf("on %s: %s", a.name, strings.TrimSpace(r.stdout))
}

// folderStatus is 'folder status --json'.
type folderStatus struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Root         string `json:"root"`
	Role         string `json:"role"`
	State        string `json:"state"`
	LocalFiles   int    `json:"local_files"`
	LocalDirs    int    `json:"local_dirs"`
	LocalBytes   int64  `json:"local_bytes"`
	NeedFiles    int    `json:"need_files"`
	NeedBytes    int64  `json:"need_bytes"`
	LocalChanges int    `json:"local_changes"`
	InSync       bool   `json:"in_sync"`
	// Servers: the hosting servers the device syncs with, by name.
	Servers []struct {
		Name string `json:"name"`
	} `json:"servers"`
	LastError string `json:"last_error"`
	Failed    []struct {
		Path     string `json:"path"`
		Reason   string `json:"reason"`
		Attempts int    `json:"attempts"`
	} `json:"failed"`
	Stuck    bool    `json:"stuck"`
	Emptied  bool    `json:"emptied"`
	Progress float64 `json:"progress"`
	Fetched  int64   `json:"fetched"`
	Copied   int64   `json:"copied"`
	Resumed  int64   `json:"resumed"`
	Served   int64   `json:"served"`
	// History: what the hosting server keeps; Tree only on the server.
	History *struct {
		Versions int    `json:"versions"`
		Tree     string `json:"tree"`
	} `json:"history"`
}

func (s folderStatus) String() string {
	return fmt.Sprintf("%s (%s) at %s: %s, role %s, %d files, %d dirs, %d bytes, need %d files %d bytes, %d local changes, in sync %v, last error %q, failed %+v, stuck %v, emptied %v, bytes fetched %d, copied %d, resumed %d, served %d",
		s.Name, s.ID, s.Root, s.State, s.Role, s.LocalFiles, s.LocalDirs, s.LocalBytes, s.NeedFiles, s.NeedBytes, s.LocalChanges, s.InSync, s.LastError,
		s.Failed, s.Stuck, s.Emptied, s.Fetched, s.Copied, s.Resumed, s.Served)
}

// folderStatus runs 'folder status NAME --json' on a.
func (d *syncDomain) folderStatus(a *agent, name string) (folderStatus, error) {
	d.t.Helper()
	r := d.cli(a.node, "folder", "status", name, "--json")
	return parseFolderStatus(r)
}

func parseFolderStatus(r result) (folderStatus, error) {
	var st folderStatus
	if r.code != 0 {
		return st, fmt.Errorf("%v", r)
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		return st, fmt.Errorf("%v: %v", r, err)
	}
	return st, nil
}

// waitInSync runs 'folder status NAME --wait --timeout D --json' on a,
// which must report the folder in sync within D, and returns the status.
func (d *syncDomain) waitInSync(a *agent, name string, timeout time.Duration) folderStatus {
	d.t.Helper()
	start := time.Now()
	r := d.runFor(a.node, timeout+cliTimeout, "folder", "status", name, "--wait", "--timeout", timeout.String(), "--json")
	st, err := parseFolderStatus(r)
	if err != nil {
		d.t.Fatalf("on %s: folder %s not in sync within %v: %v", a.name, name, timeout, err)
	}
	if !st.InSync {
		d.t.Fatalf("on %s: 'folder status --wait' returned a folder not in sync: %v", a.name, st)
	}
	d.t.Logf("on %s: %s in sync after %v", a.name, name, time.Since(start).Round(time.Millisecond))
	return st
}

// waitStatus polls 'folder status NAME --json' on a until cond holds.
func (d *syncDomain) waitStatus(a *agent, name, what string, cond func(folderStatus) bool) folderStatus {
	d.t.Helper()
	var st folderStatus
	d.waitFor(arriveTimeout, fmt.Sprintf("folder %s on %s: %s", name, a.name, what), func() (bool, string) {
		var err error
		st, err = d.folderStatus(a, name)
		if err != nil {
			return false, err.Error()
		}
		return cond(st), st.String()
	})
	return st
}

// The folder's files as the tests see them.

// entry is a file (its size and SHA-256) or a directory in a folder.
type entry struct {
	dir  bool
	size int64
	hash string // hex SHA-256; "" for directories and in a quick tree
}

func (e entry) String() string {
	if e.dir {
		return "dir"
	}
	if e.hash == "" {
		return fmt.Sprintf("%d bytes", e.size)
	}
	return fmt.Sprintf("%d bytes %.12s", e.size, e.hash)
}

// Names the engine keeps in a synced folder that are never synced: its
// temporary files (syncfs.TempPrefix) and the marker file at the root
// (foldersync.MarkerFile).
const (
	tempPrefix = ".baton-tmp-"
	markerFile = ".baton-folder"
)

// tree maps the slash-separated paths in a folder to their entries.
type tree map[string]entry

// readTree reads the folder at root: every file and directory but the
// engine's temporary files and marker file. With hashes false it only
// stats them (a quick look while polling).
func readTree(root string, hashes bool) (tree, error) {
	out := tree{}
	err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != root {
				return nil // removed while we looked
			}
			return err
		}
		if path == root {
			return nil
		}
		if strings.HasPrefix(de.Name(), tempPrefix) {
			return nil
		}
		rel := filepath.ToSlash(strings.TrimPrefix(path, root+string(filepath.Separator)))
		if rel == markerFile {
			return nil
		}
		if de.IsDir() {
			out[rel] = entry{dir: true}
			return nil
		}
		info, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		e := entry{size: info.Size()}
		if hashes {
			if e.hash, err = fileHash(path); errors.Is(err, fs.ErrNotExist) {
				return nil
			} else if err != nil {
				return err
			}
		}
		out[rel] = e
		return nil
	})
	return out, err
}

// fileHash is the hex SHA-256 of the file at path.
func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashOf is the hex SHA-256 of data.
func hashOf(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// diff describes how got differs from want, at most a few lines; "" if
// they are equal.
func (want tree) diff(got tree) string {
	var lines []string
	for _, p := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[p]
		switch {
		case !ok:
			lines = append(lines, fmt.Sprintf("missing %s (%v)", p, want[p]))
		case g != want[p]:
			lines = append(lines, fmt.Sprintf("%s is %v, want %v", p, g, want[p]))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[p]; !ok {
			lines = append(lines, fmt.Sprintf("extra %s (%v)", p, got[p]))
		}
	}
	if len(lines) > 12 {
		lines = append(lines[:12], fmt.Sprintf("... and %d more differences", len(lines)-12))
	}
	return strings.Join(lines, "\n")
}

// quick drops the hashes.
func (want tree) quick() tree {
	out := tree{}
	for p, e := range want {
		e.hash = ""
		out[p] = e
	}
	return out
}

// waitTree waits until every folder in roots holds exactly want (names,
// sizes and SHA-256 of contents), polling with stat only until the names
// and sizes match. It returns how long that took.
func (d *syncDomain) waitTree(timeout time.Duration, what string, want tree, roots ...string) time.Duration {
	d.t.Helper()
	start := time.Now()
	quickWant := want.quick()
	d.waitFor(timeout, what, func() (bool, string) {
		for _, root := range roots {
			got, err := readTree(root, false)
			if err != nil {
				return false, err.Error()
			}
			if diff := quickWant.diff(got); diff != "" {
				return false, root + ":\n" + diff
			}
		}
		for _, root := range roots {
			got, err := readTree(root, true)
			if err != nil {
				return false, err.Error()
			}
			if diff := want.diff(got); diff != "" {
				return false, root + ":\n" + diff
			}
		}
		return true, ""
	})
	took := time.Since(start)
	d.t.Logf("%s: after %v", what, took.Round(time.Millisecond))
	return took
}

// mustTree reads root with hashes.
func (d *syncDomain) mustTree(root string) tree {
	d.t.Helper()
	tr, err := readTree(root, true)
	if err != nil {
		d.t.Fatal(err)
	}
	return tr
}

// writeFile writes data at the slash-separated rel in root, making the
// directories, and returns the file's entry.
func (d *syncDomain) writeFile(root, rel string, data []byte) entry {
	d.t.Helper()
	path := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		d.t.Fatal(err)
	}
	return entry{size: int64(len(data)), hash: hashOf(data)}
}

// randomBytes returns n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// conflictCopies returns the contents (as strings) of the conflict copies
// of name (NAME.sync-conflict-... .EXT) in tr, by path.
func conflictCopies(root string, name string) (map[string]string, error) {
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	dir, base := filepath.Split(filepath.Join(root, filepath.FromSlash(stem)))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, base+".sync-conflict-") || !strings.HasSuffix(n, ext) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		out[n] = string(b)
	}
	return out, nil
}
