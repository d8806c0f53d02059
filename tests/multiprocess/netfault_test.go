package multiprocess

// Faults for the consensus tests: freezing a daemon (SIGSTOP/SIGCONT),
// cutting servers off from each other with iptables, commands run in
// goroutines while the test goes on, and the status helpers those need.
//
// Network cuts need servers on distinct loopback addresses (127.0.0.2,
// .3, ...; all of 127.0.0.0/8 is the loopback interface on Linux) so that
// rules can tell them apart; baton's tests only ever use 127.0.0.0/8, and
// the rules here match only the pairs of addresses a test gives.

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// --- commands in goroutines ---

// runQuiet runs baton in n's home, allowing it cliTimeout (less if ctx
// ends first), without touching the test or the cluster's records, so
// that any goroutine may call it. A command that could not run, or ran out
// of time, comes back with code -1 and the reason in stderr.
func (c *cluster) runQuiet(ctx context.Context, n *node, args ...string) result {
	args = append([]string{"--home", n.home}, args...)
	r, err := c.execBaton(ctx, cliTimeout, args)
	if err != nil {
		r.code, r.stderr = -1, fmt.Sprintf("%v: %s", err, r.stderr)
	}
	return r
}

// statusQuiet is 'status --json' on n for goroutines: it records no epoch
// and never fails the test.
func (c *cluster) statusQuiet(ctx context.Context, n *node) (status, error) {
	r := c.runQuiet(ctx, n, "status", "--json")
	if r.code != 0 {
		return status{}, fmt.Errorf("%s: status: %s", n.name, strings.TrimSpace(r.stderr))
	}
	var st status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		return status{}, fmt.Errorf("%s: status --json: %v", n.name, err)
	}
	return st, nil
}

// userCmd runs a user add or remove at n in the calling goroutine and
// returns it as a history operation (not yet recorded anywhere).
func (c *cluster) userCmd(n *node, args ...string) userOp {
	return c.userCmdCtx(c.ctx, n, args...)
}

// userCmdCtx is userCmd ending the command early if ctx ends.
func (c *cluster) userCmdCtx(ctx context.Context, n *node, args ...string) userOp {
	op, ok := userOpFor(args)
	if !ok {
		panic(fmt.Sprintf("userCmd: %q is not a user add or remove", args))
	}
	op.node = n.name
	op.call = time.Now()
	op.r = c.runQuiet(ctx, n, args...)
	op.ret = time.Now()
	op.out = classify(op.r)
	return op
}

// userCmdAsync is userCmd in a new goroutine.
func (c *cluster) userCmdAsync(n *node, args ...string) <-chan userOp {
	if _, ok := userOpFor(args); !ok {
		c.t.Fatalf("userCmdAsync: %q is not a user add or remove", args)
	}
	ch := make(chan userOp, 1)
	go func() { ch <- c.userCmd(n, args...) }()
	return ch
}

// note records finished user operations in h and, those acknowledged,
// among the updates every server must hold (a remove takes the user off
// that list). It checks the epoch of each acknowledgement that names one
// against the epochs the host reported before, in the order the
// operations ended: call it as soon as they have.
func (c *cluster) note(h *history, ops ...userOp) {
	c.t.Helper()
	ops = slices.Clone(ops)
	slices.SortFunc(ops, func(a, b userOp) int { return a.ret.Compare(b.ret) })
	for _, op := range ops {
		c.t.Logf("%s", op)
		if e, ok := ackEpoch(op.r); ok && op.out == acked {
			if n := c.node(op.node); n != nil {
				c.sawEpoch(n, e, "a certification")
			}
		}
		h.add(op)
		c.wantUser(op)
	}
}

// wantUser adds an acknowledged user add to the updates every server must
// hold, or takes an acknowledged remove's user off them.
func (c *cluster) wantUser(op userOp) {
	if op.out != acked {
		return
	}
	if op.kind == "remove" {
		c.wants = slices.DeleteFunc(c.wants, func(w want) bool { return w.kind == "user" && w.key == op.user })
		return
	}
	c.wants = append(c.wants, want{"user", op.user, "acknowledged at " + op.node})
}

// ackEpoch is the epoch an "ok: ..." line says the change was certified
// at, if it says.
func ackEpoch(r result) (uint64, bool) {
	m := okText.FindStringSubmatch(r.stdout)
	if m == nil || m[2] == "" {
		return 0, false
	}
	e, err := strconv.ParseUint(m[2], 10, 64)
	return e, err == nil
}

// mustAck runs a user add or remove at n that must be acknowledged, and
// notes it in h.
func (c *cluster) mustAck(h *history, n *node, args ...string) userOp {
	c.t.Helper()
	op := c.userCmd(n, args...)
	c.note(h, op)
	if op.out != acked {
		c.t.Fatalf("on %s: want an acknowledged change (ok: ...); got %v", n.name, op.r)
	}
	return op
}

// mustAckOther runs another mutating command (a folder, a report) at n
// that must be acknowledged, and adds what it made to the updates every
// server must hold.
func (c *cluster) mustAckOther(n *node, args ...string) {
	c.t.Helper()
	r := c.cli(n, args...)
	if classify(r) != acked {
		c.t.Fatalf("on %s: want an acknowledged change (ok: ...); got %v", n.name, r)
	}
	c.wantAcked(n, r)
}

// wantAcked adds what an acknowledged command made to the updates every
// server must hold.
func (c *cluster) wantAcked(n *node, r result) {
	c.t.Helper()
	m := okText.FindStringSubmatch(r.stdout)
	if m == nil {
		c.t.Fatalf("on %s: cannot read %q", n.name, r.stdout)
	}
	kind, key, ok := parseDone(m[1])
	if !ok {
		c.t.Fatalf("on %s: cannot tell what %q made", n.name, r.stdout)
	}
	c.wants = append(c.wants, want{kind, key, "acknowledged at " + n.name})
	c.t.Logf("on %s: %s", n.name, strings.TrimSpace(r.stdout))
}

// node is the node named name, or nil.
func (c *cluster) node(name string) *node {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// users lists n's users: name to home server name.
func (c *cluster) users(n *node) map[string]string {
	c.t.Helper()
	out := c.mustCLI(n, "user", "list", "--json")
	var list []userJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		c.t.Fatalf("%s: user list --json: %v in %q", n.name, err, out)
	}
	m := map[string]string{}
	for _, u := range list {
		home := u.HomeServerName
		if home == "" {
			home = u.HomeServer
		}
		m[u.Name] = home
	}
	return m
}

type userJSON struct {
	Name           string `json:"name"`
	HomeServer     string `json:"home_server"`
	HomeServerName string `json:"home_server_name"`
}

// finalUsers reads every server's users after convergence; they must be
// the same everywhere. It returns them and when they were read.
func (c *cluster) finalUsers(servers []*node) (map[string]string, time.Time) {
	c.t.Helper()
	var first map[string]string
	for _, n := range servers {
		u := c.users(n)
		if first == nil {
			first = u
			continue
		}
		if !maps.Equal(u, first) {
			c.t.Errorf("after convergence %s has users %v but %s has %v", n.name, u, servers[0].name, first)
		}
	}
	return first, time.Now()
}

// consensus describes the consensus fields of st, if it has them.
func (st status) consensus() string {
	if st.Term == 0 && st.Leader == "" && len(st.Voters) == 0 {
		return ""
	}
	return fmt.Sprintf(" (term %d, commit %d, leader %.16s, voters %v, learners %v)",
		st.Term, st.Commit, st.Leader, st.Voters, st.Learners)
}

// waitAnyMaster waits until the servers in ns agree that one of them is
// master at one epoch above `above`, and returns it and the epoch.
func (c *cluster) waitAnyMaster(ns []*node, above uint64) (*node, uint64) {
	c.t.Helper()
	var (
		master *node
		epoch  uint64
		cons   string
	)
	c.waitFor(settleTimeout, fmt.Sprintf("a master among %s above epoch %d", names(ns), above), func() (bool, string) {
		sts, desc, err := c.statuses(ns)
		if err != nil {
			return false, desc
		}
		master = nil
		for _, n := range ns {
			if n.id == sts[0].Master {
				master = n
			}
		}
		if master == nil {
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
		epoch, cons = sts[0].Epoch, sts[0].consensus()
		return true, desc
	})
	c.t.Logf("%s is master at epoch %d on %s%s", master.name, epoch, names(ns), cons)
	return master, epoch
}

// --- freezing a daemon ---

// freeze stops n's daemon with SIGSTOP. Nothing may ask a frozen daemon
// for its status: the command would wait. The harness's SIGKILL at the end
// ends a stopped process too.
func (c *cluster) freeze(n *node) {
	c.t.Helper()
	if n.proc == nil {
		c.t.Fatalf("freeze %s: not running", n.name)
	}
	if err := freezeProcess(n.proc.Process); err != nil {
		c.t.Fatalf("SIGSTOP %s: %v", n.name, err)
	}
	c.t.Logf("froze %s with SIGSTOP", n.name)
}

// thaw lets a frozen daemon go on with SIGCONT.
func (c *cluster) thaw(n *node) {
	c.t.Helper()
	if err := thawProcess(n.proc.Process); err != nil {
		c.t.Fatalf("SIGCONT %s: %v", n.name, err)
	}
	c.t.Logf("thawed %s with SIGCONT", n.name)
}

// controlBacklog is how many connections wait on n's control socket to be
// accepted ('ss', iproute2: a listening unix socket's Recv-Q).
func controlBacklog(n *node) (int, error) {
	sock := n.home + "/control.sock"
	out, err := exec.Command("ss", "-xlnH", "src", sock).Output()
	if err != nil {
		return 0, fmt.Errorf("ss -xlnH src %s: %v (the test needs ss, from iproute2)", sock, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[4] == sock {
			return strconv.Atoi(f[2])
		}
	}
	return 0, fmt.Errorf("ss lists no listening socket %s: %q", sock, out)
}

// waitBacklog waits until k connections wait on frozen n's control socket:
// the commands sent to it are then queued in the kernel, to be read the
// moment it runs again.
func (c *cluster) waitBacklog(n *node, k int) {
	c.t.Helper()
	c.waitFor(startTimeout, fmt.Sprintf("%d commands waiting on %s's control socket", k, n.name), func() (bool, string) {
		got, err := controlBacklog(n)
		if err != nil {
			c.t.Fatal(err)
		}
		return got >= k, fmt.Sprintf("%d waiting", got)
	})
}

// --- cutting the network ---

// chainPrefix names the iptables chains of these tests; the process ID
// follows, so that concurrent test binaries keep apart and a chain left by
// a killed one can be recognised and removed.
const chainPrefix = "BATON-TEST-"

// netCut is one test's iptables chain, jumped to from INPUT and OUTPUT.
// While empty it lets everything through; isolate adds DROP rules.
type netCut struct {
	t     *testing.T
	chain string
}

// newNetCut makes the test's chain and registers its removal (flush, the
// jumps, the chain), which runs however the test ends, panics included.
// Without iptables or the right to use it the test fails: it cannot test
// what it is for.
func newNetCut(t *testing.T) *netCut {
	t.Helper()
	skipIfShort(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatalf("this test cuts the network with iptables, which is not installed (apt-get install -y iptables): %v", err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("this test cuts the network with iptables, which needs root (CAP_NET_ADMIN); running as uid %d", os.Geteuid())
	}
	removeStaleChains(t)
	nc := &netCut{t: t, chain: fmt.Sprintf("%s%d", chainPrefix, os.Getpid())}
	if out, err := iptables("-N", nc.chain); err != nil {
		t.Fatalf("iptables cannot make a chain (root without CAP_NET_ADMIN, or no netfilter in this kernel?): %v: %s", err, out)
	}
	t.Cleanup(func() {
		removeChain(nc.chain)
		if out, err := iptables("-S"); err == nil && strings.Contains(out, nc.chain) {
			t.Errorf("iptables rules of %s left after the test:\n%s", nc.chain, out)
		}
	})
	for _, hook := range []string{"INPUT", "OUTPUT"} {
		if out, err := iptables("-I", hook, "1", "-j", nc.chain); err != nil {
			t.Fatalf("iptables -I %s -j %s: %v: %s", hook, nc.chain, err, out)
		}
	}
	return nc
}

// iptables runs iptables (waiting for the xtables lock) and returns its
// combined output.
func iptables(args ...string) (string, error) {
	out, err := exec.Command("iptables", append([]string{"-w", "5"}, args...)...).CombinedOutput()
	return string(out), err
}

// removeChain deletes the jumps to chain, flushes and deletes it. Every
// step is tried whatever the others did.
func removeChain(chain string) {
	for _, hook := range []string{"INPUT", "OUTPUT"} {
		for range 10 { // every jump, if a test added one twice
			if _, err := iptables("-D", hook, "-j", chain); err != nil {
				break
			}
		}
	}
	iptables("-F", chain)
	iptables("-X", chain)
}

// removeStaleChains removes the chains of test processes that are gone
// (killed by 'go test -timeout' or a signal before their clean-up).
func removeStaleChains(t *testing.T) {
	t.Helper()
	out, err := iptables("-S")
	if err != nil {
		t.Fatalf("iptables -S: %v: %s", err, out)
	}
	re := regexp.MustCompile(`^-N ` + chainPrefix + `(\d+)$`)
	for _, line := range strings.Split(out, "\n") {
		m := re.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || processAlive(pid) {
			continue // ours, or a test binary still running
		}
		t.Logf("removing iptables chain %s%s left by a test process that is gone", chainPrefix, m[1])
		removeChain(chainPrefix + m[1])
	}
}

// isolate drops every packet between a and each of others, both ways. In
// each direction between two addresses it drops what goes to the
// receiver's daemon port (on connections the sender dialed) and what comes
// from the sender's daemon port (on connections the receiver dialed), and
// nothing else: another test process using the same addresses with other
// ports is not cut.
func (nc *netCut) isolate(a *node, others ...*node) {
	nc.t.Helper()
	for _, b := range others {
		for _, dir := range [][2]*node{{a, b}, {b, a}} {
			from, to := dir[0], dir[1]
			for _, match := range [][2]string{{"--dport", strconv.Itoa(to.port)}, {"--sport", strconv.Itoa(from.port)}} {
				args := []string{"-A", nc.chain, "-p", "tcp", "-s", from.ip, "-d", to.ip, match[0], match[1], "-j", "DROP"}
				if out, err := iptables(args...); err != nil {
					nc.t.Fatalf("iptables %s: %v: %s", strings.Join(args, " "), err, out)
				}
			}
		}
	}
	nc.t.Logf("cut %s (%s:%d) off from %s", a.name, a.ip, a.port, names(others))
}

// heal removes every cut.
func (nc *netCut) heal() {
	nc.t.Helper()
	rules, _ := iptables("-L", nc.chain, "-n", "-v", "-x")
	if out, err := iptables("-F", nc.chain); err != nil {
		nc.t.Fatalf("iptables -F %s: %v: %s", nc.chain, err, out)
	}
	nc.t.Logf("healed the network; the cut's rules and their counters were:\n%s", strings.TrimSpace(rules))
}

// checkOwnAddrs checks that the servers' connections to each other run
// between their own addresses (libp2p dials from its listen address), so
// that rules on address pairs cut them. It waits for the connections to
// exist (a server reconnects every second).
func (c *cluster) checkOwnAddrs(servers []*node) {
	c.t.Helper()
	eps := map[string]bool{}
	ips := map[string]bool{}
	for _, n := range servers {
		eps[net.JoinHostPort(n.ip, strconv.Itoa(n.port))] = true
		ips[n.ip] = true
	}
	want := len(servers) * (len(servers) - 1) / 2
	c.waitFor(settleTimeout, "the servers connected to each other on their own addresses", func() (bool, string) {
		conns, err := tcpConns()
		if err != nil {
			c.t.Fatal(err)
		}
		pairs := map[[2]string]bool{}
		var desc []string
		for _, cn := range conns {
			if !eps[cn[0]] && !eps[cn[1]] {
				continue
			}
			desc = append(desc, cn[0]+" - "+cn[1])
			a, _, _ := net.SplitHostPort(cn[0])
			b, _, _ := net.SplitHostPort(cn[1])
			if !ips[a] || !ips[b] {
				c.t.Fatalf("a server connection runs %s - %s, outside the servers' own addresses; iptables rules on address pairs would not cut it", cn[0], cn[1])
			}
			if a != b {
				pairs[[2]string{min(a, b), max(a, b)}] = true
			}
		}
		return len(pairs) >= want, strings.Join(desc, "\n")
	})
}

// tcpConns lists the established IPv4 TCP connections (local, remote
// address) of this network namespace, from /proc/net/tcp.
func tcpConns() ([][2]string, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var conns [][2]string
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || fs[3] != "01" { // ESTABLISHED
			continue
		}
		l, err1 := procAddr(fs[1])
		r, err2 := procAddr(fs[2])
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("/proc/net/tcp: %v in %q", err, sc.Text())
		}
		conns = append(conns, [2]string{l, r})
	}
	return conns, sc.Err()
}

// procAddr decodes "0200007F:1F90" (the address in host byte order, a
// little-endian machine's here, then the port) into "127.0.0.2:8080".
func procAddr(s string) (string, error) {
	h, p, ok := strings.Cut(s, ":")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != 4 {
		return "", fmt.Errorf("bad address %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return "", fmt.Errorf("bad port in %q", s)
	}
	ip := net.IPv4(b[3], b[2], b[1], b[0])
	return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10)), nil
}
