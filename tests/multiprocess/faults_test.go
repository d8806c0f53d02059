package multiprocess

// Faults the master must survive without acknowledging anything it cannot
// keep: frozen (SIGSTOP) while the others elect a new master, cut off from
// the others by the network, killed (SIGKILL) in the middle of writes.
// "Acknowledged" is an "ok: ..." answer: the change is committed on a
// majority of the servers and no later master may lose it. Anything else
// ("queued: ...", an error) promises nothing, and the history checks allow
// it to have taken effect or not.
//
// Each test records the user adds and removes it issued with their times
// and answers, and after convergence checks them (history_test.go): never
// two acknowledged creates of one user without an acknowledged remove
// between them, and a linearizable order that ends in the converged users.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// stepDownAllowance is how long after a network cut a master that lost its
// majority may take to notice (the election timeout, with some slack).
// Only what it is asked after that must not be acknowledged; anything it
// acknowledged before still has to hold up in the end.
const stepDownAllowance = 2 * time.Second

// waitStepDown waits until n no longer answers as master, up to deadline.
// It reports whether n stepped down in time.
func (c *cluster) waitStepDown(n *node, deadline time.Time) bool {
	c.t.Helper()
	for {
		st := c.mustStatus(n)
		if st.Role != "master" {
			c.t.Logf("%s stepped down: %v%s", n.name, st, st.consensus())
			return true
		}
		if time.Now().After(deadline) {
			c.t.Errorf("%s still answers as master %v after the cut: %v%s", n.name, stepDownAllowance, st, st.consensus())
			return false
		}
		time.Sleep(pollInterval)
	}
}

// A master frozen long enough for the others to elect a new one wakes up
// believing it is still master. What it is asked at that moment must not
// be acknowledged on its own authority: here a user the new master has
// already added with another home server.
func TestFrozenMasterAcknowledgesNothing(t *testing.T) {
	c, s, _ := newDomain(t, domainOptions{servers: 3})
	s1, s2, s3 := s[0], s[1], s[2]
	h := &history{}
	e1 := c.waitMaster(s1, s, 0)
	c.mustAck(h, s1, "user", "add", "ann", "--home-server", "s2")
	c.converge(s...)

	c.freeze(s1)
	// s2, by the chain's order: if s3 wins the election it hands s2 the
	// role as soon as s2 is caught up, so a write at s3 in between would
	// meet the handover.
	m := s2
	e2 := c.waitMaster(s2, []*node{s2, s3}, e1)
	carol := c.mustAck(h, m, "user", "add", "carol", "--home-server", "s2")

	// Both commands reach s1's control socket while it is frozen and are
	// read the moment it runs again.
	stale := c.userCmdAsync(s1, "user", "add", "carol", "--home-server", "s3", "--wait", "5s")
	other := c.userCmdAsync(s1, "user", "add", "frank", "--home-server", "s3", "--wait", "5s")
	c.waitBacklog(s1, 2)
	c.thaw(s1)
	staleOp, otherOp := <-stale, <-other
	c.note(h, staleOp, otherOp)
	if staleOp.out == acked {
		t.Errorf("the thawed old master acknowledged a second 'user add carol' after %s, master at epoch %d, had acknowledged one:\n  %v\n  %v",
			m.name, e2, carol, staleOp)
	}

	c.converge(s...)
	final, readAt := c.finalUsers(s)
	if final["carol"] != "s2" {
		t.Errorf("after convergence carol's home server is %q; want s2, as acknowledged by %s, master at epoch %d", final["carol"], m.name, e2)
	}
	checkUserHistory(t, h, final, readAt)
}

// A master cut off from the other servers by the network cannot commit
// anything: past the election timeout it acknowledges nothing, while the
// majority elects a master that acknowledges a conflicting change. After
// the cut heals every acknowledged change is everywhere.
func TestPartitionedMasterAcknowledgesNothing(t *testing.T) {
	skipIfShort(t)
	nc := newNetCut(t)
	c, s, _ := newDomain(t, domainOptions{servers: 3, ips: []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}})
	s1, s2, s3 := s[0], s[1], s[2]
	h := &history{}
	e1 := c.waitMaster(s1, s, 0)
	c.checkOwnAddrs(s)
	c.mustAck(h, s1, "user", "add", "ann", "--home-server", "s2")
	c.mustAck(h, s1, "user", "add", "sam", "--home-server", "s1")
	c.converge(s...)

	nc.isolate(s1, s2, s3)
	cut := time.Now()
	// Asked at once, before s1 can have noticed: it may not acknowledge
	// this either (it cannot reach a majority), but the test only
	// requires that whatever it says holds up in the end.
	early := c.userCmdAsync(s1, "user", "add", "dave", "--home-server", "s1", "--wait", "5s")

	c.waitStepDown(s1, cut.Add(stepDownAllowance))
	t.Logf("asking s1 for changes %v after the cut", time.Since(cut).Round(time.Millisecond))
	late := c.userCmd(s1, "user", "add", "erin", "--home-server", "s1", "--wait", "2s")
	c.note(h, late)
	if late.out == acked {
		t.Errorf("s1, cut off from s2 and s3 %v before, acknowledged %v", late.call.Sub(cut).Round(time.Millisecond), late)
	}
	for _, args := range [][]string{
		{"folder", "create", "Cut", "--owner", "sam", "--wait", "2s"}, // sam's home server is s1
		{"report", "generate", "--wait", "2s"},
	} {
		asked := time.Now()
		r := c.cli(s1, args...)
		if classify(r) == acked {
			c.wantAcked(s1, r)
			t.Errorf("s1, cut off from s2 and s3 %v before, acknowledged %v", asked.Sub(cut).Round(time.Millisecond), r)
		} else {
			t.Logf("on s1, cut off: %v", r)
		}
	}

	m := s2 // by the chain's order, as above
	e2 := c.waitMaster(s2, []*node{s2, s3}, e1)
	c.mustAck(h, m, "user", "add", "dave", "--home-server", "s3")
	c.mustAck(h, m, "user", "add", "erin", "--home-server", "s2")
	c.mustAckOther(s2, "folder", "create", "Majority", "--owner", "ann") // ann's home server is s2
	c.note(h, <-early)
	for _, op := range h.all() {
		if op.node == "s1" && op.user == "dave" && op.out == acked {
			t.Logf("s1 acknowledged %v within the step-down allowance; %s acknowledged dave at epoch %d too", op, m.name, e2)
		}
	}

	nc.heal()
	c.converge(s...)
	final, readAt := c.finalUsers(s)
	for user, home := range map[string]string{"dave": "s3", "erin": "s2"} {
		if final[user] != home {
			t.Errorf("after the heal %s's home server is %q; want %s, as acknowledged by %s at epoch %d", user, final[user], home, m.name, e2)
		}
	}
	checkUserHistory(t, h, final, readAt)
}

// writer keeps adding users u1, u2, ... at whichever server answers as
// master, one at a time, recording each in a history.
type writer struct {
	c       *cluster
	servers []*node
	h       *history
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	acks    chan ack
	starts  chan string // the node each write is sent to, as it starts (dropped when full)
	once    sync.Once
}

type ack struct {
	node string
	at   time.Time
}

// startWriter starts a writer; it is stopped when the test ends, if not
// before.
func (c *cluster) startWriter(h *history, servers []*node) *writer {
	ctx, cancel := context.WithCancel(c.ctx)
	w := &writer{c: c, servers: servers, h: h, ctx: ctx, cancel: cancel, done: make(chan struct{}), acks: make(chan ack, 10000), starts: make(chan string, 1)}
	go w.loop()
	c.t.Cleanup(w.stop)
	return w
}

func (w *writer) loop() {
	defer close(w.done)
	for i := 1; w.ctx.Err() == nil; {
		m := w.master()
		if m == nil {
			w.pause()
			continue
		}
		select {
		case w.starts <- m.name:
		default:
		}
		op := w.c.userCmdCtx(w.ctx, m, "user", "add", fmt.Sprintf("u%d", i), "--home-server", "s2", "--wait", "3s")
		i++
		w.h.add(op)
		if op.out == acked {
			w.acks <- ack{m.name, op.ret}
		} else {
			w.pause()
		}
	}
}

func (w *writer) pause() {
	select {
	case <-w.ctx.Done():
	case <-time.After(pollInterval):
	}
}

// master is the server that answers as master (the highest epoch's, if
// two do), or nil.
func (w *writer) master() *node {
	var (
		best  *node
		epoch uint64
	)
	for _, n := range w.servers {
		st, err := w.c.statusQuiet(w.ctx, n)
		if err == nil && st.Role == "master" && (best == nil || st.Epoch > epoch) {
			best, epoch = n, st.Epoch
		}
	}
	return best
}

// waitAcks waits until the writer has had k more writes acknowledged at n.
func (w *writer) waitAcks(k int, n *node) {
	w.c.t.Helper()
	w.waitAcksAt(k, n.name, func(name string) bool { return name == n.name })
}

// waitAcksBut waits until k writes issued from now on were acknowledged at
// any server but n (the master may move along the chain meanwhile: the
// first elected hands the role to an earlier server).
func (w *writer) waitAcksBut(k int, n *node) {
	w.c.t.Helper()
	w.waitAcksAt(k, "a server other than "+n.name, func(name string) bool { return name != n.name })
}

func (w *writer) waitAcksAt(k int, what string, match func(string) bool) {
	w.c.t.Helper()
	since, got := time.Now(), 0
	timeout := time.After(settleTimeout)
	for got < k {
		select {
		case a := <-w.acks:
			if match(a.node) && a.at.After(since) {
				got++
			}
		case <-timeout:
			w.c.t.Fatalf("timed out after %v waiting for %d writes acknowledged at %s (got %d)", settleTimeout, k, what, got)
		case <-w.c.ctx.Done():
			w.c.t.Fatalf("test deadline waiting for writes acknowledged at %s", what)
		}
	}
}

// waitStart waits until the writer starts a write at n (from now on: a
// start it reported before is dropped).
func (w *writer) waitStart(n *node) {
	w.c.t.Helper()
	select {
	case <-w.starts:
	default:
	}
	timeout := time.After(settleTimeout)
	for {
		select {
		case name := <-w.starts:
			if name == n.name {
				return
			}
		case <-timeout:
			w.c.t.Fatalf("timed out after %v waiting for a write to start at %s", settleTimeout, n.name)
		case <-w.c.ctx.Done():
			w.c.t.Fatalf("test deadline waiting for a write to start at %s", n.name)
		}
	}
}

// stop ends the writer (the command in flight is killed) and waits for it.
func (w *writer) stop() {
	w.once.Do(func() {
		w.cancel()
		<-w.done
	})
}

// The master is killed (SIGKILL) while a client keeps adding users at
// whichever server is master. Every user acknowledged, before, during and
// after the failover, is on every server at the end; when s1 is back and
// caught up it is master again (it heads the chain).
func TestKillMasterDuringWrites(t *testing.T) {
	c, s, _ := newDomain(t, domainOptions{servers: 3})
	s1 := s[0]
	h := &history{}
	e1 := c.waitMaster(s1, s, 0)

	w := c.startWriter(h, s)
	w.waitAcks(3, s1)
	// Kill s1 at some point of a write's round trip (which takes 10-20 ms
	// here): before, during or after the daemon's part.
	w.waitStart(s1)
	time.Sleep(rand.N(15 * time.Millisecond))
	c.kill(s1)
	m, e2 := c.waitAnyMaster(s[1:], e1)
	w.waitAcksBut(3, s1)
	c.start(s1)
	e3 := c.waitMaster(s1, s, e2)
	w.waitAcks(3, s1)
	w.stop()

	// Acknowledgements at each host name non-decreasing epochs.
	ops := h.all()
	slices.SortFunc(ops, func(a, b userOp) int { return a.ret.Compare(b.ret) })
	last := map[string]uint64{}
	counts := map[outcome]int{}
	for _, op := range ops {
		counts[op.out]++
		c.wantUser(op)
		if e, ok := ackEpoch(op.r); ok && op.out == acked {
			if e < last[op.node] {
				t.Errorf("%s acknowledged at epoch %d after acknowledging at epoch %d: %v", op.node, e, last[op.node], op)
			}
			last[op.node] = max(last[op.node], e)
		}
		if op.out != acked {
			t.Logf("not acknowledged: %v", op)
		}
	}
	t.Logf("the writer issued %d user adds: %d acknowledged, %d queued, %d failed; epochs %d, %d (%s), %d",
		len(ops), counts[acked], counts[queued], counts[failed], e1, e2, m.name, e3)

	c.converge(s...)
	final, readAt := c.finalUsers(s)
	for _, op := range ops {
		if op.out == acked && final[op.user] != op.home {
			t.Errorf("acknowledged %v, but after convergence the servers have %s with home server %q", op, op.user, final[op.user])
		}
	}
	checkUserHistory(t, h, final, readAt)
}
