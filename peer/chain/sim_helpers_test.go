package chain_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer/chain"
)

// A cluster is a simulated server chain: one chain.Core per server, driven
// from a single goroutine on a logical clock (steps), with a network that
// can partition (both ways or one way), lose, delay and reorder messages,
// and servers that can be paused (SIGSTOP: nothing happens until resumed)
// or crashed and restarted from what they stored.
//
// The raft.MemoryStorage of a server is its durable store: Advance writes
// the Ready into it before anything else happens, and a restart builds a
// new Core from a copy of it, as the peer driver does from its raft log.
//
// What every server applies is recorded in one map by log index, and any
// two servers that apply different things at the same index, or two
// leaders of one term, are violations.
type cluster struct {
	tb    testing.TB
	d     *ct.Domain
	nodes []*simNode
	byID  map[uint64]int
	// rng drives loss, delays and ticks; nil is a perfect network (every
	// message takes one step, every server ticks every step).
	rng *rand.Rand

	now    int64 // steps taken
	msgs   []*wireMsg
	msgSeq uint64
	// cut[from][to] drops from's messages to to when they are due.
	cut      [][]bool
	loss     float64
	delayMax int64   // messages take 1..delayMax steps
	tickProb float64 // chance a running server ticks in a step

	// leaders is the leader of every term seen.
	leaders map[uint64]string
	// log is what was applied at each index, as first reported.
	log map[uint64]logEntry
	// restored counts snapshots applied, per server.
	restored []int

	onApplied func(n int, a chain.Applied)
	onLost    func(n int, h [32]byte)
	onHeld    func(n int, h chain.Held) // a snapshot showed n's proposal committed
	onLeader  func(n int)               // n became leader (after its Ready is drained)

	// seqs is each author's last sequence number, for tests that sign.
	seqs map[string]uint64

	// gen is the newest generation of the chain (ForcePromote): what
	// servers of older ones apply or elect is not checked against it.
	gen chain.Generation

	violations []string
	aborted    bool
	logf       func(format string, args ...any)
}

// simNode is one server.
type simNode struct {
	name        string
	id          uint64
	core        *chain.Core
	ms          *raft.MemoryStorage
	down        bool // crashed: restarted from ms by restart
	paused      bool // stopped: neither ticks nor receives
	incarnation int
	// held is work that waits for a paused server: client requests that
	// reached it, the transport's snapshot reports.
	held     []heldWork
	leader   bool
	lastSeen uint64 // the last index applied by this incarnation
	// gen is the generation of its log; evicted is what its log held when
	// a newer generation's message made it start again (ForcePromote).
	gen     chain.Generation
	evicted []chain.LogUpdate
}

type heldWork struct {
	run    func()
	cancel func() // the server crashed first
}

func (n *simNode) running() bool { return !n.down && !n.paused }

// wireMsg is a raft message on the simulated network, encoded as it would
// be on the wire.
type wireMsg struct {
	seq      uint64
	from, to int
	inc      int // the sender's incarnation
	gen      chain.Generation
	due      int64
	typ      raftpb.MessageType
	data     []byte
	lost     bool // chosen to be lost when it was sent
}

// logEntry is what a server reported applying at an index.
type logEntry struct {
	term    uint64
	hash    [32]byte
	key     string
	deleted bool
	outcome collections.Outcome
	err     string
	by      string
}

func (e logEntry) String() string {
	s := fmt.Sprintf("term %d %x %s", e.term, e.hash[:4], e.key)
	if e.deleted {
		s += " (delete)"
	}
	if e.err != "" {
		return s + " refused: " + e.err
	}
	return s + " " + e.outcome.String()
}

// The peer driver's raft timing with the default failover settings and its
// 100 ms tick: an election timeout of 7 ticks (raft randomizes it up to
// twice that), a heartbeat every 2.
const electionTicks, heartbeatTicks = 7, 2

// Keys, peer IDs, domains and genesis states are costly to derive, and the
// same in every seed.
var (
	cacheMu   sync.Mutex
	keys      = map[string]*identity.PrivateKey{}
	domains   = map[int]*ct.Domain{}
	genesises = map[*ct.Domain]*collections.State{}
)

func keyOf(name string) *identity.PrivateKey {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	k, ok := keys[name]
	if !ok {
		k = ct.Key(name)
		keys[name] = k
	}
	return k
}

func idOf(name string) lpeer.ID { return keyOf(name).ID() }

// testDomain is ct.NewTestDomain(servers), built once.
func testDomain(tb testing.TB, servers int) *ct.Domain {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	d, ok := domains[servers]
	if !ok {
		d = ct.NewTestDomain(tb, servers)
		domains[servers] = d
	}
	return d
}

// genesisState is a new State of d's genesis.
func genesisState(tb testing.TB, d *ct.Domain) *collections.State {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	st, ok := genesises[d]
	if !ok {
		st = d.State(tb)
		genesises[d] = st
	}
	return st.Clone()
}

// sign signs u as author, as ct.Sign does.
func sign(tb testing.TB, author string, u collections.Update, seq, clock uint64) collections.SignedUpdate {
	tb.Helper()
	u.Author, u.Seq, u.Clock = idOf(author).String(), seq, clock
	u.Issued = ct.Created.Add(time.Duration(clock) * time.Second).UnixNano()
	su, err := collections.SignUpdate(keyOf(author), u)
	if err != nil {
		tb.Fatalf("signing %s as %s: %v", u.Key, author, err)
	}
	return su
}

// newCluster starts one Core per server of d's chain, all from the initial
// snapshot of d's genesis.
func newCluster(tb testing.TB, d *ct.Domain, rng *rand.Rand) *cluster {
	tb.Helper()
	c := &cluster{
		tb: tb, d: d, rng: rng, byID: map[uint64]int{},
		delayMax: 1, tickProb: 1,
		leaders: map[uint64]string{}, log: map[uint64]logEntry{},
	}
	for i, name := range d.Spec.Servers {
		snap, err := chain.InitialSnapshot(d.Genesis)
		if err != nil {
			tb.Fatalf("InitialSnapshot: %v", err)
		}
		ms := raft.NewMemoryStorage()
		if err := ms.ApplySnapshot(snap); err != nil {
			tb.Fatalf("ApplySnapshot: %v", err)
		}
		n := &simNode{name: name, id: chain.RaftID(idOf(name)), ms: ms}
		n.core = c.newCore(n, genesisState(tb, d), 1)
		c.nodes = append(c.nodes, n)
		c.byID[n.id] = i
	}
	c.cut = make([][]bool, len(c.nodes))
	for i := range c.cut {
		c.cut[i] = make([]bool, len(c.nodes))
	}
	c.restored = make([]int, len(c.nodes))
	return c
}

func (c *cluster) newCore(n *simNode, st *collections.State, applied uint64) *chain.Core {
	c.tb.Helper()
	core, err := chain.New(chain.Config{
		Key: keyOf(n.name), State: st, Storage: n.ms, Applied: applied, Generation: n.gen,
		ElectionTicks: electionTicks, HeartbeatTicks: heartbeatTicks,
	})
	if err != nil {
		c.tb.Fatalf("chain.New(%s): %v", n.name, err)
	}
	return core
}

func (c *cluster) violate(format string, args ...any) {
	msg := fmt.Sprintf("step %d: ", c.now) + fmt.Sprintf(format, args...)
	c.violations = append(c.violations, msg)
	c.trace("VIOLATION %s", msg)
}

func (c *cluster) trace(format string, args ...any) {
	if c.logf != nil {
		c.logf("%5d "+format, append([]any{c.now}, args...)...)
	}
}

// node returns the index of the server called name.
func (c *cluster) node(name string) int {
	for i, n := range c.nodes {
		if n.name == name {
			return i
		}
	}
	c.tb.Fatalf("no server %s", name)
	return -1
}

// step advances the clock one step: due messages are delivered, then every
// running server may tick. Each call into a Core is followed by draining
// its Ready.
func (c *cluster) step() {
	if c.aborted {
		return
	}
	c.now++
	c.deliver()
	for i, n := range c.nodes {
		if !n.running() {
			continue
		}
		if c.rng != nil && c.tickProb < 1 && c.rng.Float64() >= c.tickProb {
			continue
		}
		n.core.Tick()
		c.drain(i)
	}
	c.observe()
}

// run takes steps until done reports true (checked after each step) or
// max steps were taken; it reports whether done.
func (c *cluster) run(max int, done func() bool) bool {
	for range max {
		c.step()
		if c.aborted {
			return false
		}
		if done() {
			return true
		}
	}
	return false
}

// send puts m on the network.
func (c *cluster) send(from int, m *raftpb.Message) {
	to, ok := c.byID[m.GetTo()]
	if !ok {
		c.violate("%s sent %s to unknown raft id %x", c.nodes[from].name, m.GetType(), m.GetTo())
		return
	}
	if to == from {
		c.violate("%s sent %s to itself", c.nodes[from].name, m.GetType())
		return
	}
	data, err := proto.Marshal(m)
	if err != nil {
		c.violate("encoding %s: %v", m.GetType(), err)
		return
	}
	delay := int64(1)
	lost := false
	if c.rng != nil {
		if c.delayMax > 1 {
			delay += c.rng.Int64N(c.delayMax)
		}
		lost = c.loss > 0 && c.rng.Float64() < c.loss
	}
	c.msgSeq++
	c.msgs = append(c.msgs, &wireMsg{
		seq: c.msgSeq, from: from, to: to, inc: c.nodes[from].incarnation, gen: c.nodes[from].gen,
		due: c.now + delay, typ: m.GetType(), data: data, lost: lost,
	})
}

// deliver hands every due message to its server, unless it is lost, its
// link is cut or its server is down; a paused server's messages wait for
// it (its socket buffers hold them).
func (c *cluster) deliver() {
	var due, rest []*wireMsg
	for _, m := range c.msgs {
		if m.due <= c.now {
			due = append(due, m)
		} else {
			rest = append(rest, m)
		}
	}
	c.msgs = rest
	slices.SortFunc(due, func(a, b *wireMsg) int {
		if a.due != b.due {
			return int(a.due - b.due)
		}
		return int(a.seq) - int(b.seq)
	})
	for _, m := range due {
		dst := c.nodes[m.to]
		switch {
		case dst.down || m.lost || c.cut[m.from][m.to]:
			if m.typ == raftpb.MsgSnap {
				c.report(m, false)
			}
			continue
		case dst.paused:
			c.msgs = append(c.msgs, m)
			continue
		}
		msg := &raftpb.Message{}
		if err := proto.Unmarshal(m.data, msg); err != nil {
			c.violate("decoding %s: %v", m.typ, err)
			continue
		}
		err := dst.core.StepFrom(m.gen, msg)
		switch {
		case errors.Is(err, chain.ErrStaleGeneration):
			continue
		case errors.Is(err, chain.ErrEvicted):
			c.evict(m.to, m.gen)
			continue
		}
		if err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
			c.violate("%s: Step(%s from %s): %v", dst.name, m.typ, c.nodes[m.from].name, err)
		}
		c.drain(m.to)
		if m.typ == raftpb.MsgSnap {
			c.report(m, true)
		}
		if c.aborted {
			return
		}
	}
}

// report tells the sender of snapshot m whether it arrived, as the
// transport does, once the sender runs.
func (c *cluster) report(m *wireMsg, ok bool) {
	src := c.nodes[m.from]
	if src.down || src.incarnation != m.inc {
		return
	}
	to := c.nodes[m.to].id
	run := func() {
		src.core.ReportSnapshot(to, ok)
		c.drain(m.from)
	}
	if src.paused {
		src.held = append(src.held, heldWork{run: run, cancel: func() {}})
		return
	}
	run()
}

// drain does what server i's Core asks until it has nothing more: the
// Ready is stored (Advance writes it into the MemoryStorage, the durable
// store here), its messages sent, and what Advance applied recorded.
func (c *cluster) drain(i int) {
	n := c.nodes[i]
	became := false
	for !c.aborted && n.core.HasReady() {
		rd := n.core.Ready()
		for _, m := range rd.Messages {
			c.send(i, m)
		}
		res, err := n.core.Advance(rd)
		if err != nil {
			c.violate("%s: Advance: %v", n.name, err)
			c.aborted = true
			return
		}
		if rd.SoftState != nil {
			lead := rd.SoftState.RaftState == raft.StateLeader
			if lead && !n.leader {
				became = true
			}
			n.leader = lead
			if lead {
				c.noteLeader(n)
			}
		}
		if res.Restored {
			c.restored[i]++
			n.lastSeen = n.core.Applied()
			c.trace("%s restored a snapshot at %d", n.name, n.core.Applied())
		}
		for _, a := range res.Applied {
			c.record(i, a)
			if c.onApplied != nil {
				c.onApplied(i, a)
			}
		}
		for _, h := range res.InSnapshot {
			c.trace("%s: %x committed, in the snapshot", n.name, h.Hash[:4])
			if c.onHeld != nil {
				c.onHeld(i, h)
			}
		}
		for _, h := range res.Lost {
			c.trace("%s: %x lost", n.name, h[:4])
			if c.onLost != nil {
				c.onLost(i, h)
			}
		}
	}
	if became {
		c.trace("%s leads term %d", n.name, n.core.Status().GetTerm())
		if c.onLeader != nil {
			c.onLeader(i)
		}
	}
}

// record checks a's entry against what other servers applied at its index.
func (c *cluster) record(i int, a chain.Applied) {
	n := c.nodes[i]
	if a.Index <= n.lastSeen {
		c.violate("%s applied index %d after %d", n.name, a.Index, n.lastSeen)
	}
	n.lastSeen = a.Index
	if n.gen != c.gen {
		return // a log a forced promotion left behind
	}
	u := a.Certified.Update()
	e := logEntry{
		term: a.Term, hash: a.Certified.Hash(), key: u.Key, deleted: u.Delete,
		outcome: a.Verdict.Outcome, by: n.name,
	}
	if a.Err != nil {
		e.err = a.Err.Error()
	}
	c.trace("%s applied %d: %v", n.name, a.Index, e)
	old, ok := c.log[a.Index]
	if !ok {
		c.log[a.Index] = e
		return
	}
	if old.term != e.term || old.hash != e.hash || old.outcome != e.outcome || old.err != e.err {
		c.violate("index %d: %s applied %v, %s applied %v", a.Index, old.by, old, n.name, e)
	}
}

// observe checks, after every step, that no two servers lead the same
// term (drain also checks as a server becomes leader).
func (c *cluster) observe() {
	for _, n := range c.nodes {
		if !n.down && n.core.IsLeader() {
			c.noteLeader(n)
		}
	}
}

func (c *cluster) noteLeader(n *simNode) {
	if n.gen != c.gen {
		return
	}
	term := n.core.Status().GetTerm()
	if l, ok := c.leaders[term]; ok && l != n.name {
		c.violate("two leaders of term %d: %s and %s", term, l, n.name)
		return
	}
	c.leaders[term] = n.name
}

// leader is the index of a running server that believes it leads, or -1;
// with several (a stale one and the real one), the one of the highest term.
func (c *cluster) leader() int {
	best, term := -1, uint64(0)
	for i, n := range c.nodes {
		if !n.running() || !n.core.IsLeader() {
			continue
		}
		if t := n.core.Status().GetTerm(); best < 0 || t > term {
			best, term = i, t
		}
	}
	return best
}

// partition cuts the network between groups (both ways); a server in no
// group is cut from everyone.
func (c *cluster) partition(groups ...[]int) {
	group := make([]int, len(c.nodes))
	for i := range group {
		group[i] = -1 - i
	}
	for g, members := range groups {
		for _, i := range members {
			group[i] = g
		}
	}
	for a := range c.nodes {
		for b := range c.nodes {
			c.cut[a][b] = a != b && group[a] != group[b]
		}
	}
}

// isolate cuts server i from every other, both ways.
func (c *cluster) isolate(i int) {
	for j := range c.nodes {
		if j != i {
			c.cut[i][j], c.cut[j][i] = true, true
		}
	}
}

// heal reconnects every link and stops losing messages.
func (c *cluster) heal() {
	for a := range c.cut {
		for b := range c.cut[a] {
			c.cut[a][b] = false
		}
	}
	c.loss = 0
}

// pause stops server i (SIGSTOP).
func (c *cluster) pause(i int) {
	if !c.nodes[i].down {
		c.nodes[i].paused = true
		c.trace("%s paused", c.nodes[i].name)
	}
}

// resume continues server i: first what waited for it (client requests,
// transport reports), then it ticks and receives again.
func (c *cluster) resume(i int) {
	n := c.nodes[i]
	if !n.paused {
		return
	}
	n.paused = false
	c.trace("%s resumed", n.name)
	held := n.held
	n.held = nil
	for _, w := range held {
		if n.down || n.paused || c.aborted {
			w.cancel()
			continue
		}
		w.run()
	}
}

// submit runs fn on server i now, or when it resumes if it is paused;
// fail is called instead if it is down or crashes first.
func (c *cluster) submit(i int, fn func(), fail func()) {
	n := c.nodes[i]
	switch {
	case n.down:
		fail()
	case n.paused:
		n.held = append(n.held, heldWork{run: fn, cancel: fail})
	default:
		fn()
	}
}

// crash kills server i: what it stored survives, the rest is gone.
func (c *cluster) crash(i int) {
	n := c.nodes[i]
	if n.down {
		return
	}
	held := n.held
	n.down, n.paused, n.held, n.core, n.leader = true, false, nil, nil, false
	c.trace("%s crashed", n.name)
	for _, w := range held {
		w.cancel()
	}
}

// restart starts server i again from its durable store: the snapshot, the
// hard state and the log entries, as the peer driver restores them.
func (c *cluster) restart(i int) {
	n := c.nodes[i]
	if !n.down {
		return
	}
	old := n.ms
	snap, err := old.Snapshot()
	if err != nil {
		c.tb.Fatalf("%s: reading snapshot: %v", n.name, err)
	}
	hs, _, err := old.InitialState()
	if err != nil {
		c.tb.Fatalf("%s: reading hard state: %v", n.name, err)
	}
	ms := raft.NewMemoryStorage()
	if err := ms.ApplySnapshot(proto.Clone(snap).(*raftpb.Snapshot)); err != nil {
		c.tb.Fatalf("%s: restoring snapshot: %v", n.name, err)
	}
	if err := ms.SetHardState(proto.Clone(hs).(*raftpb.HardState)); err != nil {
		c.tb.Fatalf("%s: restoring hard state: %v", n.name, err)
	}
	first, _ := old.FirstIndex()
	last, _ := old.LastIndex()
	if last >= first {
		ents, err := old.Entries(first, last+1, math.MaxUint64)
		if err != nil {
			c.tb.Fatalf("%s: reading entries %d..%d: %v", n.name, first, last, err)
		}
		cp := make([]*raftpb.Entry, len(ents))
		for j, e := range ents {
			cp[j] = proto.Clone(e).(*raftpb.Entry)
		}
		if err := ms.Append(cp); err != nil {
			c.tb.Fatalf("%s: restoring entries: %v", n.name, err)
		}
	}
	st, err := chain.RestoreState(c.d.Genesis, snap.GetData())
	if err != nil {
		c.violate("%s: RestoreState: %v", n.name, err)
		c.aborted = true
		return
	}
	n.ms = ms
	n.core = c.newCore(n, st, snap.GetMetadata().GetIndex())
	n.down = false
	n.incarnation++
	n.lastSeen = snap.GetMetadata().GetIndex()
	c.trace("%s restarted from snapshot %d, commit %d, log %d..%d", n.name, n.lastSeen, hs.GetCommit(), first, last)
	c.drain(i)
}

// compact has every running server snapshot and compact its log.
func (c *cluster) compact(every, keep uint64) {
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		if _, err := n.core.Compact(every, keep); err != nil {
			c.violate("%s: Compact: %v", n.name, err)
		}
	}
}

// quiet reports whether the cluster settled: every server runs, exactly
// one leads, and all hold and applied the same log, which the leader
// committed whole.
func (c *cluster) quiet() bool {
	lead := -1
	for i, n := range c.nodes {
		if !n.running() {
			return false
		}
		if n.core.IsLeader() {
			if lead >= 0 {
				return false
			}
			lead = i
		}
	}
	if lead < 0 {
		return false
	}
	ls := c.nodes[lead].core.Status()
	last, _ := c.nodes[lead].ms.LastIndex()
	if ls.LeadTransferee != raft.None || ls.GetCommit() != last {
		return false
	}
	for _, n := range c.nodes {
		st := n.core.Status()
		nl, _ := n.ms.LastIndex()
		if st.GetTerm() != ls.GetTerm() || st.Lead != ls.ID || nl != last || n.core.Applied() != last {
			return false
		}
	}
	return true
}

// checkConverged checks that every server applied the same index and holds
// the same collections.
func (c *cluster) checkConverged() {
	ref := c.nodes[0]
	for _, n := range c.nodes[1:] {
		if n.core.Applied() != ref.core.Applied() {
			c.violate("%s applied %d, %s %d", ref.name, ref.core.Applied(), n.name, n.core.Applied())
		}
		for _, k := range collections.Kinds {
			if a, b := ref.core.State().Digest(k), n.core.State().Digest(k); a != b {
				c.violate("%s digests differ: %s %x, %s %x\n%s", k, ref.name, a[:6], n.name, b[:6],
					recordsDiff(ref.core.State().Records(k), n.core.State().Records(k)))
			}
		}
	}
}

// recordsDiff lists the keys whose records differ.
func recordsDiff(a, b []collections.Record) string {
	type rec struct {
		hash    [32]byte
		deleted bool
	}
	ma, mb := map[string]rec{}, map[string]rec{}
	for _, r := range a {
		ma[r.Key] = rec{r.Hash, r.Deleted}
	}
	for _, r := range b {
		mb[r.Key] = rec{r.Hash, r.Deleted}
	}
	var out []string
	keys := map[string]bool{}
	for k := range ma {
		keys[k] = true
	}
	for k := range mb {
		keys[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		ra, oka := ma[k]
		rb, okb := mb[k]
		if oka != okb || ra != rb {
			out = append(out, fmt.Sprintf("  %s: %x (deleted %v, present %v) vs %x (deleted %v, present %v)",
				k, ra.hash[:4], ra.deleted, oka, rb.hash[:4], rb.deleted, okb))
		}
	}
	return strings.Join(out, "\n")
}

// lastWrites is, per key, the last entry of the log that changed it.
func (c *cluster) lastWrites() map[string]uint64 {
	out := map[string]uint64{}
	for i, e := range c.log {
		if e.err == "" && e.outcome == collections.Accepted && i > out[e.key] {
			out[e.key] = i
		}
	}
	return out
}

// checkStateMatchesLog checks that every server's records of the keys the
// log wrote are the last accepted write of each.
func (c *cluster) checkStateMatchesLog(kind collections.Kind, prefix string) {
	last := c.lastWrites()
	for _, n := range c.nodes {
		seen := map[string]bool{}
		for _, r := range n.core.State().Records(kind) {
			if !strings.HasPrefix(r.Key, prefix) {
				continue
			}
			seen[r.Key] = true
			i, ok := last[r.Key]
			if !ok {
				c.violate("%s holds %s (%x), which no applied entry wrote", n.name, r.Key, r.Hash[:4])
				continue
			}
			if e := c.log[i]; e.hash != r.Hash || e.deleted != r.Deleted {
				c.violate("%s holds %s = %x (deleted %v); the last write in the log is %d: %v", n.name, r.Key, r.Hash[:4], r.Deleted, i, e)
			}
		}
		for key := range last {
			if strings.HasPrefix(key, prefix) && !seen[key] {
				c.violate("%s has no record of %s, written at %d", n.name, key, last[key])
			}
		}
	}
}

// userUpdate is a put of user name with home server home.
func userUpdate(tb testing.TB, name, home string) collections.Update {
	tb.Helper()
	return ct.MustPut(tb, collections.User{Name: name, HomeServer: idOf(home).String()})
}

// hashIn reports whether h is in hs.
func hashIn(h [32]byte, hs [][32]byte) bool {
	return slices.ContainsFunc(hs, func(x [32]byte) bool { return bytes.Equal(x[:], h[:]) })
}

// promote makes server i the sole voter of a new generation, as 'baton
// server promote --force' does: it stores the promotion in place of its
// log and starts a new core from it.
func (c *cluster) promote(i int) chain.Promotion {
	c.tb.Helper()
	n := c.nodes[i]
	p, err := n.core.ForcePromote()
	if err != nil {
		c.tb.Fatalf("%s: ForcePromote: %v", n.name, err)
	}
	ms := raft.NewMemoryStorage()
	if err := ms.ApplySnapshot(p.Snapshot); err != nil {
		c.tb.Fatalf("%s: storing the promotion's snapshot: %v", n.name, err)
	}
	if err := ms.SetHardState(p.HardState); err != nil {
		c.tb.Fatalf("%s: storing the promotion's hard state: %v", n.name, err)
	}
	st, err := chain.RestoreState(c.d.Genesis, p.Snapshot.GetData())
	if err != nil {
		c.tb.Fatalf("%s: RestoreState: %v", n.name, err)
	}
	idx := p.Snapshot.GetMetadata().GetIndex()
	n.ms, n.gen, n.leader = ms, p.Generation, false
	n.core = c.newCore(n, st, idx)
	n.incarnation++
	n.lastSeen = idx
	c.gen = p.Generation
	c.log, c.leaders = map[uint64]logEntry{}, map[uint64]string{}
	c.trace("%s promoted by force: generation %d, snapshot at %d (commit was %d)", n.name, p.Generation.N, idx, p.Commit)
	c.drain(i)
	return p
}

// evict starts server i again with an empty log of generation g, keeping
// what its old log held, as the peer driver does when a message of a
// newer generation arrives.
func (c *cluster) evict(i int, g chain.Generation) {
	n := c.nodes[i]
	held, err := n.core.LogUpdates()
	if err != nil {
		c.violate("%s: LogUpdates: %v", n.name, err)
	}
	n.evicted = held
	st := n.core.State()
	n.ms, n.gen, n.leader = raft.NewMemoryStorage(), g, false
	n.core = c.newCore(n, st, 0)
	n.incarnation++
	n.lastSeen = 0
	c.trace("%s evicted by generation %d: its log held %d updates", n.name, g.N, len(held))
}
