package multiprocess

// The harness: build baton once, make homes, start and kill daemons, run
// CLI commands, poll 'status --json', and remember every acknowledged
// update and every epoch seen, for the end-of-scenario checks.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Time limits. The failover settings are the defaults (heartbeat 250 ms,
// fail after 1.5 s); the waits are generous because 'go test ./...' runs
// other packages' tests on the same two cores.
const (
	testTimeout   = 100 * time.Second // one test, from setup to the last check
	cliTimeout    = 40 * time.Second  // one CLI command (mutations wait up to 10 s for the master)
	startTimeout  = 20 * time.Second  // a daemon answering on its control socket
	settleTimeout = 30 * time.Second  // an election, a catch-up, convergence
	pollInterval  = 100 * time.Millisecond
	logTailLines  = 40
)

// batonBin is the baton binary TestMain builds.
var batonBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	dir, err := os.MkdirTemp("", "baton-mp-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "multiprocess:", err)
		os.Exit(1)
	}
	batonBin = filepath.Join(dir, "baton")
	if bin := os.Getenv("BATON_MP_BIN"); bin != "" {
		// A binary built elsewhere, e.g. an older build to compare with.
		batonBin = bin
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	args := []string{"build", "-o", batonBin}
	if os.Getenv("BATON_MEM_PROFILE") != "" {
		args = append(args, "-tags", "batonprofile") // TestMemoryFootprint's idle profile
	}
	build := exec.Command("go", append(args, "github.com/baton-sync/baton/cmd/baton")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "multiprocess: go build ./cmd/baton: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// skipIfShort skips the multi-process tests under -short.
func skipIfShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real baton daemons and kills them; skipped with -short")
	}
}

// status is the part of 'baton status --json' the tests read.
type status struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Role        string       `json:"role"`
	Master      string       `json:"master"`
	MasterName  string       `json:"master_name"`
	Epoch       uint64       `json:"epoch"`
	Peers       []peerStatus `json:"peers"`
	Listen      []string     `json:"listen"`
	Collections map[string]struct {
		Records int    `json:"records"`
		Digest  string `json:"digest"`
	} `json:"collections"`
	Outbox      int `json:"outbox"`
	Quarantined []struct {
		Collection string `json:"collection"`
		File       string `json:"file"`
		MovedTo    string `json:"moved_to"`
		Reason     string `json:"reason"`
	} `json:"quarantined"`
	// The consensus fields; zero where the daemon does not report them.
	Term     uint64   `json:"term"`
	Commit   uint64   `json:"commit"`
	Leader   string   `json:"leader"`
	Voters   []string `json:"voters"`
	Learners []string `json:"learners"`
}

type peerStatus struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Guest   bool   `json:"guest"`
	Relayed bool   `json:"relayed"`
}

// digests is the three collection digests, for comparing servers.
func (s status) digests() string {
	return fmt.Sprintf("domain %.12s catalog %.12s report %.12s",
		s.Collections["domain"].Digest, s.Collections["catalog"].Digest, s.Collections["report"].Digest)
}

// hasPeer reports whether id is among s's connected peers.
func (s status) hasPeer(id string) bool {
	return slices.ContainsFunc(s.Peers, func(p peerStatus) bool { return p.ID == id })
}

func (s status) String() string {
	m := s.MasterName
	if s.Master == "" {
		m = "(none)"
	}
	return fmt.Sprintf("%s: %s, master %s, epoch %d, %d peers, outbox %d, %s",
		s.Name, s.Role, m, s.Epoch, len(s.Peers), s.Outbox, s.digests())
}

// want is an update that must be present on every live server at the end:
// one a command acknowledged, or one it queued while no master was
// reachable (the outbox delivers it later).
type want struct {
	kind string // user, folder or report
	key  string // user name, folder ID or report ID
	how  string // "acknowledged by s2 at epoch 3", for failure messages
}

// cluster is one test's hosts and what the test has seen of them.
type cluster struct {
	t      *testing.T
	ctx    context.Context // ends at the test's deadline
	dir    string
	nodes  []*node
	epochs map[string][]uint64 // per host: every master epoch its status reported, in order
	wants  []want
	absent []want          // users removed and updates refused: must be nowhere
	ports  map[string]bool // every ip:port freePortOn handed out
}

// node is one baton home and, while it runs, its daemon.
type node struct {
	name    string
	ip      string // the loopback address it listens on
	home    string
	port    int
	id      string
	record  string   // the signed host record, 'keys export'
	logPath string   // the daemon's stderr, across restarts
	runArgs []string // extra 'baton run' flags
	proc    *exec.Cmd
	exited  chan struct{}
	starts  int
}

// newCluster makes an empty cluster whose processes are killed and whose
// homes are removed when t ends.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	skipIfShort(t)
	// Not t.TempDir: the control socket path must stay short (unix
	// sockets take about 100 bytes), whatever the test's name.
	dir, err := os.MkdirTemp("", "bmp-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	c := &cluster{t: t, ctx: ctx, dir: dir, epochs: map[string][]uint64{}}
	t.Cleanup(func() {
		cancel()
		for _, n := range c.nodes {
			if n.proc != nil {
				n.proc.Process.Kill()
				<-n.exited
				n.proc = nil
			}
		}
		if t.Failed() {
			c.dumpLogs()
		}
		for _, n := range c.nodes {
			if h := c.epochs[n.name]; len(h) > 0 {
				t.Logf("%s reported master epochs %v", n.name, slices.Compact(slices.Clone(h)))
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	return c
}

// dumpLogs prints the tail of every daemon's log.
func (c *cluster) dumpLogs() {
	for _, n := range c.nodes {
		data, err := os.ReadFile(n.logPath)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > logTailLines {
			lines = lines[len(lines)-logTailLines:]
		}
		c.t.Logf("--- last %d lines of %s's log (%s):\n%s", len(lines), n.name, n.logPath, strings.Join(lines, "\n"))
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func (c *cluster) freePort() int { return c.freePortOn("127.0.0.1") }

// freePortOn returns a TCP port on ip that was free a moment ago and that
// it never handed out before: daemons listen with SO_REUSEPORT, so two
// given one port would both listen on it and share its connections.
func (c *cluster) freePortOn(ip string) int {
	c.t.Helper()
	for {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			c.t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		key := net.JoinHostPort(ip, fmt.Sprint(port))
		if !c.ports[key] {
			if c.ports == nil {
				c.ports = map[string]bool{}
			}
			c.ports[key] = true
			return port
		}
	}
}

// result is a finished CLI command.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
}

func (r result) String() string {
	return fmt.Sprintf("baton %s: exit %d, stdout %q, stderr %q", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// run runs baton with args (no --home) and returns what it did; it fails
// the test only if the command could not be run or timed out.
func (c *cluster) run(args ...string) result {
	c.t.Helper()
	return c.runWithin(cliTimeout, args...)
}

// runWithin is run allowing the command up to timeout.
func (c *cluster) runWithin(timeout time.Duration, args ...string) result {
	c.t.Helper()
	r, err := c.execBaton(c.ctx, timeout, args)
	if err != nil {
		c.t.Fatalf("baton %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// execBaton runs baton with args in the cluster's directory, allowing it
// timeout (less if ctx ends first). The error says why the command did not
// run to an exit status: it could not start, or gave no answer in time.
func (c *cluster) execBaton(ctx context.Context, timeout time.Duration, args []string) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, batonBin, args...)
	cmd.Env = cleanEnv()
	cmd.Dir = c.dir
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return r, fmt.Errorf("no answer within %v (or the test's deadline passed)", timeout)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		return r, err
	}
	return r, nil
}

// cleanEnv is the environment without BATON_* variables, so that only
// --home decides which home a command uses.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BATON_") {
			env = append(env, kv)
		}
	}
	return env
}

// cli runs a command in n's home.
func (c *cluster) cli(n *node, args ...string) result {
	c.t.Helper()
	return c.run(append([]string{"--home", n.home}, args...)...)
}

// mustCLI runs a command in n's home that must succeed.
func (c *cluster) mustCLI(n *node, args ...string) string {
	c.t.Helper()
	r := c.cli(n, args...)
	if r.code != 0 {
		c.t.Fatalf("on %s: %v", n.name, r)
	}
	return r.stdout
}

// addHost makes a home for a server or agent ("--server" or "--agent")
// listening on a free port of 127.0.0.1, and exports its host record.
func (c *cluster) addHost(name, role string) *node {
	c.t.Helper()
	return c.addHostAt(name, role, "127.0.0.1")
}

// addWitness makes the home of a witness ('init --witness': a server of
// the chain with no folders and no logins) listening on a free port of
// 127.0.0.1, and exports its host record.
func (c *cluster) addWitness(name string) *node {
	c.t.Helper()
	return c.addHostAt(name, "--witness", "127.0.0.1")
}

// addHostAt is addHost listening on ip, a loopback address. Away from
// 127.0.0.1 the host record's public and private addresses are set to the
// same address, so that every peer dials it there.
func (c *cluster) addHostAt(name, role, ip string) *node {
	c.t.Helper()
	n := &node{
		name:    name,
		ip:      ip,
		home:    filepath.Join(c.dir, name),
		port:    c.freePortOn(ip),
		record:  filepath.Join(c.dir, name+".host"),
		logPath: filepath.Join(c.dir, name+".log"),
	}
	c.nodes = append(c.nodes, n)
	addr := fmt.Sprintf("/ip4/%s/tcp/%d", ip, n.port)
	args := []string{"init", role, "--name", name, "--listen", addr, "--json"}
	if ip != "127.0.0.1" {
		args = append(args, "--public-addr", addr, "--private-addr", addr)
	}
	out := c.mustCLI(n, args...)
	var info struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.ID == "" {
		c.t.Fatalf("init %s --json printed %q: %v", name, out, err)
	}
	n.id = info.ID
	c.mustCLI(n, "keys", "export", "-o", n.record)
	return n
}

// domainOptions shape a test domain.
type domainOptions struct {
	servers int      // chain length, s1 first
	agent   bool     // also a desktop agent "a1", a member host
	ips     []string // the servers' loopback addresses, s1 first; default 127.0.0.1
}

// newDomain makes a domain "test" of servers s1..sN (and an agent a1),
// starts every host and waits until all agree that s1 is master.
func newDomain(t *testing.T, o domainOptions) (*cluster, []*node, *node) {
	t.Helper()
	c := newCluster(t)
	var servers []*node
	for i := 1; i <= o.servers; i++ {
		ip := "127.0.0.1"
		if i <= len(o.ips) {
			ip = o.ips[i-1]
		}
		servers = append(servers, c.addHostAt(fmt.Sprintf("s%d", i), "--server", ip))
	}
	var agent *node
	if o.agent {
		agent = c.addHost("a1", "--agent")
	}
	s1 := servers[0]
	args := []string{"domain", "create", "--name", "test"}
	for _, s := range servers {
		args = append(args, "--chain", s.record)
	}
	if agent != nil {
		args = append(args, "--host", agent.record)
	}
	c.mustCLI(s1, args...)
	genesis := filepath.Join(c.dir, "test.genesis")
	c.mustCLI(s1, "domain", "export", "-o", genesis)
	members := servers[1:]
	if agent != nil {
		members = append(slices.Clone(members), agent)
	}
	for _, n := range members {
		c.mustCLI(n, "domain", "join", genesis)
	}
	for _, s := range servers {
		c.start(s)
	}
	c.waitMaster(s1, servers, 0)
	if agent != nil {
		c.start(agent)
		c.waitAgentFollows(agent, s1)
	}
	return c, servers, agent
}

// start starts n's daemon ('baton run') and waits until it answers
// 'status'. Its stderr is appended to n's log.
func (c *cluster) start(n *node) {
	c.t.Helper()
	if n.proc != nil {
		c.t.Fatalf("start %s: already running", n.name)
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	n.starts++
	fmt.Fprintf(logf, "=== harness: start %d of %s at %s\n", n.starts, n.name, time.Now().Format(time.TimeOnly+".000"))
	cmd := exec.Command(batonBin, append([]string{"--home", n.home, "run"}, n.runArgs...)...)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("starting %s: %v", n.name, err)
	}
	logf.Close() // the child has its own copy
	n.proc, n.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		cmd.Wait()
		close(exited)
	}(n.exited)
	c.t.Logf("started %s (pid %d, port %d)", n.name, cmd.Process.Pid, n.port)
	c.waitFor(startTimeout, n.name+" answering 'status'", func() (bool, string) {
		select {
		case <-n.exited:
			c.t.Fatalf("%s exited during start: %v", n.name, cmd.ProcessState)
		default:
		}
		st, err := c.status(n)
		if err != nil {
			return false, err.Error()
		}
		return true, st.String()
	})
}

// kill kills n's daemon with SIGKILL (kill -9) and waits for it to exit.
func (c *cluster) kill(n *node) {
	c.t.Helper()
	if n.proc == nil {
		c.t.Fatalf("kill %s: not running", n.name)
	}
	if err := n.proc.Process.Kill(); err != nil {
		c.t.Fatalf("kill -9 %s: %v", n.name, err)
	}
	<-n.exited
	n.proc = nil
	c.t.Logf("killed %s with SIGKILL", n.name)
}

// status runs 'status --json' on n and records the epoch: while a master is
// known, the status's epoch is the master's, and it may never go down.
func (c *cluster) status(n *node) (status, error) {
	c.t.Helper()
	r := c.cli(n, "status", "--json")
	if r.code != 0 {
		return status{}, fmt.Errorf("%s: status: %s", n.name, strings.TrimSpace(r.stderr))
	}
	var st status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		return status{}, fmt.Errorf("%s: status --json: %v in %q", n.name, err, r.stdout)
	}
	if st.ID != n.id {
		c.t.Fatalf("status --json in %s's home has id %s; want %s", n.name, st.ID, n.id)
	}
	if st.Master != "" {
		c.sawEpoch(n, st.Epoch, "master "+st.MasterName)
	}
	return st, nil
}

// sawEpoch records a master epoch n reported (in its status, or in a
// certification it received) and fails the test if it is below one n
// reported before.
func (c *cluster) sawEpoch(n *node, epoch uint64, what string) {
	c.t.Helper()
	h := c.epochs[n.name]
	if len(h) > 0 && epoch < slices.Max(h) {
		c.t.Errorf("%s reported %s at epoch %d after reporting epoch %d: epochs went down (history %v)",
			n.name, what, epoch, slices.Max(h), slices.Compact(slices.Clone(h)))
	}
	c.epochs[n.name] = append(h, epoch)
}

// forgetEpochs starts every host's epoch history again: after a forced
// promotion the promoted server may lead at a lower term than the servers
// it replaced had reached (its generation orders it first).
func (c *cluster) forgetEpochs() {
	clear(c.epochs)
}

// mustStatus is status that must succeed.
func (c *cluster) mustStatus(n *node) status {
	c.t.Helper()
	st, err := c.status(n)
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

// waitFor polls cond until it holds, failing the test after timeout (or
// at the test's deadline) with cond's last description of the state.
func (c *cluster) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) || c.ctx.Err() != nil {
			c.t.Fatalf("timed out after %v waiting for %s; last seen:\n%s", timeout, what, state)
		}
		select {
		case <-c.ctx.Done():
		case <-time.After(pollInterval):
		}
	}
}

// statuses asks every node in ns; the description lists them all.
func (c *cluster) statuses(ns []*node) ([]status, string, error) {
	c.t.Helper()
	var (
		sts  []status
		desc []string
		errs []error
	)
	for _, n := range ns {
		st, err := c.status(n)
		if err != nil {
			errs = append(errs, err)
			desc = append(desc, "  "+err.Error())
			continue
		}
		sts = append(sts, st)
		desc = append(desc, "  "+st.String())
	}
	return sts, strings.Join(desc, "\n"), errors.Join(errs...)
}

// waitMaster waits until master is master on every server in servers (the
// live ones, master among them), all at the same epoch above `above`, and
// returns that epoch.
func (c *cluster) waitMaster(master *node, servers []*node, above uint64) uint64 {
	c.t.Helper()
	var epoch uint64
	c.waitFor(settleTimeout, fmt.Sprintf("%s to be master above epoch %d on %s", master.name, above, names(servers)), func() (bool, string) {
		sts, desc, err := c.statuses(servers)
		if err != nil {
			return false, desc
		}
		for _, st := range sts {
			wantRole := "slave"
			if st.ID == master.id {
				wantRole = "master"
			}
			if st.Role != wantRole || st.Master != master.id || st.Epoch != sts[0].Epoch || st.Epoch <= above {
				return false, desc
			}
		}
		epoch = sts[0].Epoch
		return true, desc
	})
	c.t.Logf("%s is master at epoch %d on %s", master.name, epoch, names(servers))
	return epoch
}

// waitNoMaster waits until n knows no master.
func (c *cluster) waitNoMaster(n *node) {
	c.t.Helper()
	c.waitFor(settleTimeout, n.name+" to know no master", func() (bool, string) {
		st, err := c.status(n)
		if err != nil {
			return false, err.Error()
		}
		return st.Master == "" && st.Role != "master", st.String()
	})
}

// waitAgentFollows waits until the agent's status names master as master.
func (c *cluster) waitAgentFollows(agent, master *node) status {
	c.t.Helper()
	var st status
	c.waitFor(settleTimeout, agent.name+" to follow "+master.name, func() (bool, string) {
		var err error
		st, err = c.status(agent)
		if err != nil {
			return false, err.Error()
		}
		return st.Role == "agent" && st.Master == master.id, st.String()
	})
	return st
}

func names(ns []*node) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.name
	}
	return strings.Join(s, ", ")
}

// The lines the mutating commands print.
var (
	okLine     = regexp.MustCompile(`^ok: (.*) \(committed at term (\d+), index (\d+)\)\n$`)
	queuedLine = regexp.MustCompile(`^queued: not committed yet: .* is proposed again \((.*)\)\n$`)
	userDone   = regexp.MustCompile(`^user (\S+) added `)
	folderDone = regexp.MustCompile(`^folder .* \(([0-9a-f]+)\) created for `)
	reportDone = regexp.MustCompile(`^report ([0-9a-f]+) generated `)
)

// parseDone finds what a mutation's "done" text says was made.
func parseDone(done string) (kind, key string, ok bool) {
	for _, p := range []struct {
		kind string
		re   *regexp.Regexp
	}{{"user", userDone}, {"folder", folderDone}, {"report", reportDone}} {
		if m := p.re.FindStringSubmatch(done); m != nil {
			return p.kind, m[1], true
		}
	}
	return "", "", false
}

// write runs a mutating command at n that must be acknowledged ("ok: ...")
// and returns the epoch of the certification. The update joins the
// updates every live server must hold at the end.
func (c *cluster) write(n *node, args ...string) uint64 {
	c.t.Helper()
	return c.recordOK(n, c.cli(n, args...))
}

// recordOK checks that r acknowledged a change and records it.
func (c *cluster) recordOK(n *node, r result) uint64 {
	c.t.Helper()
	m := okLine.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		c.t.Fatalf("on %s: want an acknowledged change (ok: ...); got %v", n.name, r)
	}
	epoch, _ := strconv.ParseUint(m[2], 10, 64)
	kind, key, ok := parseDone(m[1])
	if !ok {
		c.t.Fatalf("on %s: cannot tell what %q made", n.name, r.stdout)
	}
	c.sawEpoch(n, epoch, "a certification")
	c.wants = append(c.wants, want{kind, key, fmt.Sprintf("acknowledged at %s, epoch %d", n.name, epoch)})
	c.t.Logf("on %s: %s", n.name, strings.TrimSpace(r.stdout))
	return epoch
}

// writeAcceptQueued runs a mutating command at n during an election: it is
// either acknowledged or queued in n's outbox; both must be present
// everywhere at the end. It reports whether it was acknowledged.
func (c *cluster) writeAcceptQueued(n *node, args ...string) bool {
	c.t.Helper()
	r := c.cli(n, args...)
	if r.code == 0 && queuedLine.MatchString(r.stdout) {
		c.recordQueued(n, r)
		return false
	}
	c.recordOK(n, r)
	return true
}

// writeQueued runs a mutating command at n while no master is reachable:
// it must answer "queued: ...", and the update must be present everywhere
// once a master is back.
func (c *cluster) writeQueued(n *node, args ...string) {
	c.t.Helper()
	r := c.cli(n, args...)
	if r.code != 0 || !queuedLine.MatchString(r.stdout) {
		c.t.Fatalf("on %s with no master: want the change queued (queued: ...); got %v", n.name, r)
	}
	c.recordQueued(n, r)
}

func (c *cluster) recordQueued(n *node, r result) {
	c.t.Helper()
	m := queuedLine.FindStringSubmatch(r.stdout)
	kind, key, ok := parseDone(m[1])
	if !ok {
		c.t.Fatalf("on %s: cannot tell what %q queued", n.name, r.stdout)
	}
	c.wants = append(c.wants, want{kind, key, "queued at " + n.name})
	c.t.Logf("on %s: %s", n.name, strings.TrimSpace(r.stdout))
}

// refuse runs a mutating command at n that must fail (exit status 1,
// nothing acknowledged or queued) and returns its stderr. kind and key
// name what it would have made, which must be nowhere at the end.
func (c *cluster) refuse(n *node, kind, key string, args ...string) string {
	c.t.Helper()
	r := c.cli(n, args...)
	if r.code != 1 || r.stdout != "" {
		c.t.Fatalf("on %s: want the change refused (exit 1, nothing on stdout); got %v", n.name, r)
	}
	c.absent = append(c.absent, want{kind, key, "refused at " + n.name})
	c.t.Logf("on %s: refused: %s", n.name, strings.TrimSpace(r.stderr))
	return r.stderr
}

// removeUser removes user at n, which must acknowledge it; the user must
// then be gone everywhere.
func (c *cluster) removeUser(n *node, user string) uint64 {
	c.t.Helper()
	r := c.cli(n, "user", "remove", user)
	m := okLine.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil || !strings.HasPrefix(m[1], "user "+user+" removed") {
		c.t.Fatalf("on %s: want the removal of %s acknowledged; got %v", n.name, user, r)
	}
	epoch, _ := strconv.ParseUint(m[2], 10, 64)
	c.wants = slices.DeleteFunc(c.wants, func(w want) bool { return w.kind == "user" && w.key == user })
	c.absent = append(c.absent, want{"user", user, fmt.Sprintf("removal acknowledged at %s, epoch %d", n.name, epoch)})
	c.t.Logf("on %s: %s", n.name, strings.TrimSpace(r.stdout))
	return epoch
}

// held lists what n holds: user names, folder IDs and report IDs.
func (c *cluster) held(n *node) (map[string]bool, error) {
	c.t.Helper()
	have := map[string]bool{}
	for _, q := range []struct{ kind, field string }{{"user", "name"}, {"folder", "id"}, {"report", "id"}} {
		r := c.cli(n, q.kind, "list", "--json")
		if r.code != 0 {
			return nil, fmt.Errorf("%s: %s list: %s", n.name, q.kind, strings.TrimSpace(r.stderr))
		}
		var items []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &items); err != nil {
			return nil, fmt.Errorf("%s: %s list --json: %v", n.name, q.kind, err)
		}
		for _, it := range items {
			if s, ok := it[q.field].(string); ok {
				have[q.kind+" "+s] = true
			}
		}
	}
	return have, nil
}

// converge waits until the live servers agree on one master, have empty
// outboxes and equal digests, and every wanted update is listed on each
// (and no refused one), then returns their statuses.
func (c *cluster) converge(live ...*node) []status {
	c.t.Helper()
	var sts []status
	c.waitFor(settleTimeout, "convergence of "+names(live), func() (bool, string) {
		var (
			desc string
			err  error
		)
		sts, desc, err = c.statuses(live)
		if err != nil {
			return false, desc
		}
		for _, st := range sts {
			if st.Master == "" || st.Master != sts[0].Master || st.Outbox != 0 || st.digests() != sts[0].digests() {
				return false, desc
			}
		}
		var missing []string
		for _, n := range live {
			have, err := c.held(n)
			if err != nil {
				return false, desc + "\n  " + err.Error()
			}
			for _, w := range c.wants {
				if !have[w.kind+" "+w.key] {
					missing = append(missing, fmt.Sprintf("%s lacks %s %s (%s)", n.name, w.kind, w.key, w.how))
				}
			}
			for _, w := range c.absent {
				if have[w.kind+" "+w.key] {
					missing = append(missing, fmt.Sprintf("%s has %s %s (%s)", n.name, w.kind, w.key, w.how))
				}
			}
		}
		if len(missing) > 0 {
			return false, desc + "\n  " + strings.Join(missing, "\n  ")
		}
		return true, desc
	})
	c.t.Logf("converged: %s hold all %d updates, digests %s", names(live), len(c.wants), sts[0].digests())
	return sts
}

// holdStill samples the statuses of ns for d, failing the test if any
// reports another master or epoch than master at epoch.
func (c *cluster) holdStill(d time.Duration, master *node, epoch uint64, ns []*node) {
	c.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		sts, desc, err := c.statuses(ns)
		if err != nil {
			c.t.Fatalf("while %s should stay master: %v\n%s", master.name, err, desc)
		}
		for _, st := range sts {
			if st.Master != master.id || st.Epoch != epoch {
				c.t.Fatalf("%s should have stayed master at epoch %d; now:\n%s", master.name, epoch, desc)
			}
		}
		time.Sleep(pollInterval)
	}
}

// logContains reports whether n's log has a line containing s.
func logContains(n *node, s string) bool {
	f, err := os.Open(n.logPath)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			return true
		}
	}
	return false
}
