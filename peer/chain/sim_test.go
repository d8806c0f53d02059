package chain_test

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer/chain"
)

// Broken harness variants (-chain.break): each acknowledges or reads what
// a correct client must not, so the checks must catch it on some seeds.
const (
	// breakAckAtPropose acknowledges an update when Propose returns, not
	// when it is applied.
	breakAckAtPropose = "ack-at-propose"
	// breakAckByIndex acknowledges an update when any entry is applied at
	// the index it was certified for, and ignores Result.Lost.
	breakAckByIndex = "ack-by-index"
	// breakAckFrozen acknowledges at Propose time what a paused server
	// proposes on resuming (the frozen master).
	breakAckFrozen = "ack-frozen"
	// breakReadLocal adds reads answered from the state of whichever
	// server believes it leads.
	breakReadLocal = "read-local"
)

var breakModes = []string{breakAckAtPropose, breakAckByIndex, breakAckFrozen, breakReadLocal}

var (
	simSeeds = flag.Int("chain.seeds", 0, "fault simulation: how many seeded schedules to run (default 500, 100 with -short)")
	simSeed  = flag.Uint64("chain.seed", 0, "fault simulation: run only this seed, tracing it with -v")
	// The default size fits 500 seeds in CI's budget with the race
	// detector, where one committed update costs about 9 ms of CPU
	// (signature checks and chain decoding on every server); larger
	// scales run longer schedules with more operations.
	simScale = flag.Float64("chain.scale", 1, "fault simulation: multiply each schedule's length and number of operations")
	simBreak = flag.String("chain.break", "", "fault simulation: break the harness on purpose, to see the checks fail: "+strings.Join(breakModes, ", "))
	simVis   = flag.String("chain.vis", "", "fault simulation: directory for porcupine visualizations of failures (default: a new temporary directory)")
	// simStrictConflict answers a condition that fails already at
	// Propose (VerifyProposal against the leader's applied state) as a
	// definitive conflict instead of a request that never took effect.
	simStrictConflict = flag.Bool("chain.strict-conflict", true, "fault simulation: check conflicts reported by Propose itself for linearizability")
	// simRepropose has a server propose again, when it leads again, the
	// unconditional updates it proposed whose outcome it never learned
	// (as the peer driver's outbox does), so the log holds duplicates.
	simRepropose = flag.Bool("chain.repropose", false, "fault simulation: in every seed (not a third), propose unresolved updates again on regaining leadership (duplicates in the log)")
)

// TestSimulation runs seeded fault schedules against a 3- or 5-server
// chain: partitions (both ways and one way), message loss, delays and
// reordering, paused servers, crashes and restarts, log compaction. Each
// seed then heals everything, runs until the cluster is quiet, and checks:
// at most one leader per term; every server applied the same entry at
// every index; all servers end at the same applied index with equal
// digests; every acknowledged update is in the log at the index it was
// acknowledged for and on every server (unless a later write of the key
// replaced it); nothing reported lost was applied; and the history of
// operations per user record is linearizable (porcupine, a register per
// key).
//
//	go test ./peer/chain/ -run 'TestSimulation$' -chain.seeds=5000
//	go test ./peer/chain/ -run 'TestSimulation$' -chain.seed=123 -v
//
// Seeds run in parallel; each replays exactly on its own (-chain.seed).
func TestSimulation(t *testing.T) {
	opts := simOptions{scale: *simScale, brk: *simBreak, strictConflict: *simStrictConflict, repropose: *simRepropose}
	if opts.brk != "" && !slices.Contains(breakModes, opts.brk) {
		t.Fatalf("-chain.break=%s: want one of %s", opts.brk, strings.Join(breakModes, ", "))
	}
	rnd := useSeededRand(t)
	if *simSeed != 0 {
		opts.trace = testing.Verbose()
		runSeed(t, rnd, *simSeed, opts)
		return
	}
	n := *simSeeds
	if n <= 0 {
		n = 500
		if testing.Short() {
			n = 100
		}
	}
	start := time.Now()
	var mu sync.Mutex
	var total simStats
	failed := 0
	t.Run("seeds", func(t *testing.T) {
		for seed := uint64(1); seed <= uint64(n); seed++ {
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				t.Parallel()
				st := runSeed(t, rnd, seed, opts)
				mu.Lock()
				defer mu.Unlock()
				total.add(st)
				if t.Failed() {
					failed++
				}
			})
		}
	})
	t.Logf("%d seeds in %v, %d failed; %s", n, time.Since(start).Round(time.Millisecond), failed, total)
}

// runSeed runs one seed, fails t with its violations.
func runSeed(t *testing.T, rnd *seededRand, seed uint64, opts simOptions) simStats {
	rnd.register(t, seed)
	r := runSim(t, seed, opts)
	if len(r.violations) > 0 {
		t.Errorf("seed %d: %d violations (rerun: go test ./peer/chain/ -run 'TestSimulation$' -chain.seed=%d -v%s):\n%s",
			seed, len(r.violations), seed, opts.flags(), strings.Join(r.violations, "\n"))
	}
	return r.stats
}

type simOptions struct {
	scale          float64
	brk            string
	strictConflict bool
	repropose      bool
	trace          bool
}

func (o simOptions) flags() string {
	s := ""
	if o.scale != 1 {
		s += fmt.Sprintf(" -chain.scale=%g", o.scale)
	}
	if o.brk != "" {
		s += " -chain.break=" + o.brk
	}
	if o.strictConflict {
		s += " -chain.strict-conflict"
	}
	if o.repropose {
		s += " -chain.repropose"
	}
	return s
}

type simStats struct {
	ops, acked, conflicts, lost, unknown, failed, preConflicts int
	restarts, snapshots, steps, reproposed                     int
}

func (s *simStats) add(o simStats) {
	s.ops += o.ops
	s.acked += o.acked
	s.conflicts += o.conflicts
	s.lost += o.lost
	s.unknown += o.unknown
	s.failed += o.failed
	s.preConflicts += o.preConflicts
	s.restarts += o.restarts
	s.snapshots += o.snapshots
	s.steps += o.steps
	s.reproposed += o.reproposed
}

func (s simStats) String() string {
	return fmt.Sprintf("ops %d: acknowledged %d, refused by a condition %d, lost %d, indeterminate %d, not proposed %d (of which conflicts found by Propose %d); restarts %d, snapshots installed %d, steps %d, proposed again %d",
		s.ops, s.acked, s.conflicts, s.lost, s.unknown, s.failed, s.preConflicts, s.restarts, s.snapshots, s.steps, s.reproposed)
}

type simResult struct {
	violations []string
	stats      simStats
}

// Operations on a user record, and what became of them.
type opKind uint8

const (
	opPut    opKind = iota // unconditional write
	opCreate               // IfAbsent
	opCAS                  // IfPrev
	opDelete               // unconditional tombstone
	opRead
)

func (k opKind) String() string {
	return [...]string{"put", "create", "cas", "delete", "read"}[k]
}

type opResult uint8

const (
	resNone     opResult = iota // not yet handled by its server
	resPending                  // proposed, outcome not yet known
	resOK                       // acknowledged (applied, or read)
	resConflict                 // refused: its condition failed
	resFailed                   // never proposed (not the leader, dropped, server down)
	resLost                     // reported lost by its server
	resUnknown                  // outcome never learned
)

type simOp struct {
	kind      opKind
	key       string // user name
	node      int    // the server it was sent to
	frozen    bool   // sent to a paused server
	call, ret int64
	hash      [32]byte
	prev      [32]byte
	index     uint64
	res       opResult
	read      regState
	su        collections.SignedUpdate
	inflight  int  // proposals of it its server has not settled
	unsure    bool // a server crashed with it in flight: it may have been applied
	dup       bool // acknowledged without its position: a duplicate, or found in a snapshot
}

type sim struct {
	seed uint64
	t    testing.TB
	c    *cluster
	rng  *rand.Rand
	opts simOptions
	ops  []*simOp
	// pending are the proposals of each server's current incarnation
	// whose outcome it has not reported.
	pending []map[[32]byte]*simOp
	seq     map[string]uint64
	clock   uint64
	events  int64
	keys    []string
	written map[string][][32]byte
	// repropose: servers propose again what they never settled once they
	// lead again (-chain.repropose, and a third of the seeds).
	repropose bool
	stats     simStats
}

func (s *sim) event() int64 {
	s.events++
	return s.events
}

func runSim(t testing.TB, seed uint64, opts simOptions) simResult {
	rng := rand.New(rand.NewPCG(seed, 0x6261746f6e))
	servers := 3
	if rng.IntN(100) < 12 {
		servers = 5
	}
	d := testDomain(t, servers)
	c := newCluster(t, d, rng)
	if opts.trace {
		c.logf = t.Logf
	}
	s := &sim{
		seed: seed, t: t, c: c, rng: rng, opts: opts, seq: map[string]uint64{},
		keys: []string{"u1", "u2", "u3"}, written: map[string][][32]byte{},
	}
	for range c.nodes {
		s.pending = append(s.pending, map[[32]byte]*simOp{})
	}
	c.onApplied, c.onLost, c.onHeld, c.onLeader = s.applied, s.lost, s.held, s.leads

	phase := int(opts.scale * float64(40+rng.IntN(26)))
	nops := int(opts.scale * float64(8+rng.IntN(4)))
	pOp := float64(nops) / float64(phase)
	pFault := 0.04 + 0.06*rng.Float64()
	crashes := rng.IntN(3) != 0
	var every, keep uint64
	if rng.IntN(10) < 7 {
		every = 2 + rng.Uint64N(10)
		keep = rng.Uint64N(min(every, 4))
	}
	c.tickProb = 0.8 + 0.2*rng.Float64()
	s.repropose = opts.repropose || rng.IntN(3) == 0
	c.trace("seed %d: %d servers, %d steps, ~%d ops, faults %.3f/step, crashes %v, compact every %d keep %d, propose again %v",
		seed, servers, phase, nops, pFault, crashes, every, keep, s.repropose)

	scheduled := map[int64][]func(){}
	later := func(steps int, fn func()) { scheduled[c.now+int64(steps)] = append(scheduled[c.now+int64(steps)], fn) }
	target := func() int {
		if l := c.leader(); l >= 0 && rng.IntN(2) == 0 {
			return l
		}
		return rng.IntN(len(c.nodes))
	}

	// Elect a first leader on a quiet network, then the faults begin.
	c.run(40, func() bool { return c.leader() >= 0 })
	for range phase {
		if c.aborted {
			break
		}
		for _, fn := range scheduled[c.now+1] {
			fn()
		}
		delete(scheduled, c.now+1)
		if rng.Float64() < pFault {
			s.fault(target, later, crashes)
		}
		for rng.Float64() < pOp {
			s.newOp()
			if rng.IntN(4) != 0 {
				break
			}
		}
		c.step()
		if every > 0 {
			c.compact(every, keep)
		}
	}

	// Heal everything and run until quiet.
	c.trace("healing")
	c.heal()
	c.delayMax = 2
	for i := range c.nodes {
		c.resume(i)
		if c.nodes[i].down {
			c.restart(i)
			s.stats.restarts++
		}
	}
	quiet := c.run(3000, func() bool {
		if every > 0 {
			c.compact(every, keep)
		}
		return c.quiet()
	})
	s.stats.steps += int(c.now)
	if !quiet && !c.aborted {
		var st []string
		for _, n := range c.nodes {
			rs := n.core.Status()
			last, _ := n.ms.LastIndex()
			st = append(st, fmt.Sprintf("%s: %s term %d lead %x commit %d applied %d last %d", n.name, rs.RaftState, rs.GetTerm(), rs.Lead, rs.GetCommit(), n.core.Applied(), last))
		}
		c.violate("not quiet 3000 steps after healing:\n  %s", strings.Join(st, "\n  "))
	}
	if !c.aborted && quiet {
		s.finish()
	}
	for i := range c.nodes {
		s.stats.snapshots += c.restored[i]
	}
	return simResult{violations: c.violations, stats: s.stats}
}

// fault injects one fault.
func (s *sim) fault(target func() int, later func(int, func()), crashes bool) {
	c, rng := s.c, s.rng
	n := len(c.nodes)
	switch rng.IntN(9) {
	case 0: // two sides
		p := rng.Perm(n)
		k := 1 + rng.IntN(n-1)
		c.partition(p[:k], p[k:])
		c.trace("partition %v | %v", names(c, p[:k]), names(c, p[k:]))
	case 1:
		i := target()
		c.isolate(i)
		c.trace("isolate %s", c.nodes[i].name)
	case 2: // one way
		a := target()
		b := (a + 1 + rng.IntN(n-1)) % n
		if rng.IntN(2) == 0 {
			a, b = b, a
		}
		c.cut[a][b] = true
		c.trace("cut %s -> %s", c.nodes[a].name, c.nodes[b].name)
	case 3:
		c.heal()
		c.trace("heal the network")
	case 4:
		c.loss = []float64{0, 0.05, 0.2, 0.5}[rng.IntN(4)]
		c.trace("loss %.2f", c.loss)
	case 5:
		c.delayMax = 1 + rng.Int64N(6)
		c.trace("delays 1..%d", c.delayMax)
	case 6, 7:
		i := target()
		if c.nodes[i].running() {
			c.pause(i)
			later(5+rng.IntN(40), func() { c.resume(i) })
		}
	case 8:
		i := target()
		if crashes && !c.nodes[i].down {
			s.crash(i)
			later(3+rng.IntN(40), func() {
				if c.nodes[i].down {
					c.restart(i)
					s.stats.restarts++
				}
			})
		}
	}
}

func names(c *cluster, is []int) []string {
	var out []string
	for _, i := range is {
		out = append(out, c.nodes[i].name)
	}
	return out
}

// crash crashes server i: its proposals' outcomes are unknown to clients.
func (s *sim) crash(i int) {
	for _, h := range slices.SortedFunc(maps.Keys(s.pending[i]), cmpHash) {
		op := s.pending[i][h]
		if op.res != resOK && op.res != resConflict {
			op.res = resUnknown
		}
		op.unsure, op.inflight = true, 0
	}
	clear(s.pending[i])
	s.c.crash(i)
}

// newOp has a client send a new operation to a server: mostly one that
// believes it leads (a paused one too: the client does not know).
func (s *sim) newOp() {
	c, rng := s.c, s.rng
	op := &simOp{key: s.keys[rng.IntN(len(s.keys))]}
	switch r := rng.IntN(10); {
	case r < 4:
		op.kind = opPut
	case r < 6:
		op.kind = opCreate
	case r < 8:
		op.kind = opCAS
	default:
		op.kind = opDelete
	}
	if s.opts.brk == breakReadLocal && rng.IntN(3) == 0 {
		op.kind = opRead
	}
	op.node = rng.IntN(len(c.nodes))
	if rng.IntN(10) < 7 {
		var leaders []int
		for i, n := range c.nodes {
			if !n.down && n.core.IsLeader() {
				leaders = append(leaders, i)
			}
		}
		if len(leaders) > 0 {
			op.node = leaders[rng.IntN(len(leaders))]
		}
	}
	s.ops = append(s.ops, op)
	op.call = s.event()
	op.frozen = c.nodes[op.node].paused
	c.submit(op.node, func() { s.propose(op) }, func() { op.res = resFailed })
}

// record returns the record of user key in st, tombstones included.
func record(st *collections.State, key string) (collections.Record, bool) {
	for _, r := range st.Records(collections.Domain) {
		if r.Key == collections.UserPrefix+key {
			return r, true
		}
	}
	return collections.Record{}, false
}

// propose has op's server handle it.
func (s *sim) propose(op *simOp) {
	c, rng := s.c, s.rng
	n := c.nodes[op.node]
	if op.kind == opRead {
		if !n.core.IsLeader() {
			op.res = resFailed
			return
		}
		if r, ok := record(n.core.State(), op.key); ok {
			op.read = regState{h: r.Hash, live: !r.Deleted}
		}
		op.res, op.ret = resOK, s.event()
		return
	}
	var u collections.Update
	switch op.kind {
	case opDelete:
		u = collections.Delete(collections.Domain, collections.UserPrefix+op.key)
	default:
		u = userUpdate(s.t, op.key, c.nodes[rng.IntN(len(c.nodes))].name)
	}
	switch op.kind {
	case opCreate:
		u.IfAbsent = true
	case opCAS:
		// Mostly what this server holds (what a client would have read
		// from it), else any earlier value of the key, else nothing.
		if r, ok := record(n.core.State(), op.key); ok && rng.IntN(4) != 0 {
			op.prev = r.Hash
		} else if w := s.written[op.key]; len(w) > 0 {
			op.prev = w[rng.IntN(len(w))]
		}
		u.IfPrev = append([]byte(nil), op.prev[:]...)
	}
	s.seq[n.name]++
	s.clock++
	su := sign(s.t, n.name, u, s.seq[n.name], s.clock)
	op.su, op.hash = su, su.Hash()
	s.written[op.key] = append(s.written[op.key], op.hash)
	s.submitProposal(op)
}

// submitProposal proposes op at its server, which handles it now.
func (s *sim) submitProposal(op *simOp) {
	c := s.c
	n := c.nodes[op.node]
	first := op.res == resNone
	cert, err := n.core.Propose(op.su)
	switch {
	case err == nil:
		op.index = cert.MasterSeq()
		c.trace("%s proposed %s %s %x at %d", n.name, op.kind, op.key, op.hash[:4], op.index)
		if s.opts.brk == breakAckAtPropose || s.opts.brk == breakAckFrozen && op.frozen {
			op.res, op.ret = resOK, s.event()
		} else {
			if op.res != resOK && op.res != resConflict {
				op.res = resPending
			}
			op.inflight++
			s.pending[op.node][op.hash] = op
		}
		c.drain(op.node)
	case errors.Is(err, collections.ErrConflict):
		s.stats.preConflicts++
		c.trace("%s refused %s %s %x at once (applied %d, commit %d): %v", n.name, op.kind, op.key, op.hash[:4], n.core.Applied(), n.core.Status().GetCommit(), err)
		if s.opts.strictConflict && first {
			op.res, op.ret = resConflict, s.event()
		} else {
			s.notProposed(op)
		}
	case errors.Is(err, chain.ErrNotLeader), errors.Is(err, chain.ErrDropped):
		s.notProposed(op)
	default:
		c.violate("%s: Propose(%s %s): %v", n.name, op.kind, op.key, err)
		s.notProposed(op)
	}
}

// notProposed settles op, which its server just refused to propose.
func (s *sim) notProposed(op *simOp) {
	switch {
	case op.inflight > 0 || op.res == resOK || op.res == resConflict:
	case op.unsure:
		op.res = resUnknown
	default:
		op.res = resFailed
	}
}

// applied acknowledges, at the server that proposed it, an update Advance
// reports applied, or answers that its condition failed.
func (s *sim) applied(i int, a chain.Applied) {
	c := s.c
	if s.opts.brk == breakAckByIndex {
		for _, h := range slices.SortedFunc(maps.Keys(s.pending[i]), cmpHash) {
			if op := s.pending[i][h]; op.index == a.Index {
				delete(s.pending[i], h)
				op.res, op.ret = resOK, s.event()
			}
		}
		return
	}
	h := a.Certified.Hash()
	op := s.pending[i][h]
	if op == nil {
		return
	}
	if op.inflight--; op.inflight <= 0 {
		delete(s.pending[i], h)
	}
	if op.res == resOK || op.res == resConflict {
		return // a duplicate of what was settled
	}
	switch {
	case a.Err == nil && a.Verdict.Outcome == collections.Accepted:
		op.res, op.ret, op.index = resOK, s.event(), a.Index
	case errors.Is(a.Err, collections.ErrConflict) && (op.kind == opCreate || op.kind == opCAS):
		op.res, op.ret, op.index = resConflict, s.event(), a.Index
	case a.Err == nil && s.repropose && (a.Verdict.Outcome == collections.Duplicate || a.Verdict.Outcome == collections.Stale):
		// Proposed again, and applied already under the first
		// certification: it took effect then.
		op.res, op.ret, op.index, op.dup = resOK, s.event(), a.Index, true
	default:
		c.violate("%s: its own proposal %s %s %x applied at %d: %v, %v", c.nodes[i].name, op.kind, op.key, h[:4], a.Index, a.Verdict.Outcome, a.Err)
		op.res = resUnknown
	}
}

// held acknowledges an update its server found committed in a snapshot
// that covered its position.
func (s *sim) held(i int, h chain.Held) {
	if s.opts.brk == breakAckByIndex {
		return
	}
	op := s.pending[i][h.Hash]
	if op == nil {
		return
	}
	if op.inflight--; op.inflight <= 0 {
		delete(s.pending[i], h.Hash)
	}
	if op.res != resOK && op.res != resConflict {
		op.res, op.ret, op.dup = resOK, s.event(), true
	}
}

// lost records an update its server reports lost.
func (s *sim) lost(i int, h [32]byte) {
	if s.opts.brk == breakAckByIndex {
		return
	}
	op := s.pending[i][h]
	if op == nil {
		if !s.repropose {
			for _, o := range s.ops {
				if o.hash == h && o.node == i && o.res == resOK {
					s.c.violate("%s reported %s %s %x lost after it was acknowledged", s.c.nodes[i].name, o.kind, o.key, h[:4])
				}
			}
		}
		return
	}
	if op.inflight--; op.inflight > 0 {
		return
	}
	delete(s.pending[i], h)
	switch {
	case op.res == resOK || op.res == resConflict:
	case op.unsure:
		op.res = resUnknown
	default:
		op.res = resLost
	}
}

// leads proposes again, with -chain.repropose, the unconditional updates
// server i proposed and did not settle, now that it leads: as the peer
// driver's outbox does when a master regains leadership.
func (s *sim) leads(i int) {
	if !s.repropose {
		return
	}
	for _, op := range s.ops {
		if op.node != i || op.su.IsZero() || op.kind == opCreate || op.kind == opCAS {
			continue
		}
		if op.res != resLost && op.res != resUnknown && op.res != resPending {
			continue
		}
		if !s.c.nodes[i].core.IsLeader() {
			return
		}
		s.stats.reproposed++
		s.submitProposal(op)
	}
}

// finish checks the healed, quiet cluster.
func (s *sim) finish() {
	c := s.c
	c.checkConverged()
	c.checkStateMatchesLog(collections.Domain, collections.UserPrefix)

	// What servers never learned the outcome of stays unknown.
	for i := range c.nodes {
		for _, h := range slices.SortedFunc(maps.Keys(s.pending[i]), cmpHash) {
			op := s.pending[i][h]
			if op.res == resOK || op.res == resConflict {
				continue
			}
			if op.index <= c.nodes[i].core.Applied() && s.opts.brk == "" {
				c.violate("%s never reported its proposal %s %s %x at %d applied or lost (applied %d)",
					c.nodes[i].name, op.kind, op.key, h[:4], op.index, c.nodes[i].core.Applied())
			}
			op.res = resUnknown
		}
	}
	for _, op := range s.ops {
		if op.res == resNone || op.res == resPending {
			op.res = resUnknown
		}
	}

	// Every acknowledged update is in the log where it was acknowledged,
	// and on every server unless a later write of its key replaced it.
	byHash := map[[32]byte][]uint64{}
	for i, e := range c.log {
		byHash[e.hash] = append(byHash[e.hash], i)
	}
	last := c.lastWrites()
	for _, op := range s.ops {
		if op.kind == opRead {
			continue
		}
		e, ok := c.log[op.index]
		switch op.res {
		case resOK:
			if op.dup {
				if !slices.ContainsFunc(byHash[op.hash], func(i uint64) bool { return c.log[i].outcome == collections.Accepted && c.log[i].err == "" }) {
					c.violate("%s %s %x acknowledged (a duplicate, or in a snapshot), but never accepted in the log", op.kind, op.key, op.hash[:4])
				}
				continue
			}
			if !ok {
				c.violate("%s %s %x acknowledged at %d, but no update was applied there", op.kind, op.key, op.hash[:4], op.index)
				continue
			}
			if e.hash != op.hash || e.err != "" || e.outcome != collections.Accepted {
				c.violate("%s %s %x acknowledged at %d, but the log has %v there", op.kind, op.key, op.hash[:4], op.index, e)
				continue
			}
			for _, n := range c.nodes {
				r, ok := record(n.core.State(), op.key)
				switch {
				case last[collections.UserPrefix+op.key] < op.index:
					c.violate("%s: acknowledged %s %s at %d, but the last write of the key is at %d", n.name, op.kind, op.key, op.index, last[collections.UserPrefix+op.key])
				case last[collections.UserPrefix+op.key] == op.index && (!ok || r.Hash != op.hash):
					c.violate("%s: acknowledged %s %s %x at %d is not its record (%x)", n.name, op.kind, op.key, op.hash[:4], op.index, r.Hash[:4])
				}
			}
		case resConflict:
			if op.index != 0 && (!ok || e.hash != op.hash || !strings.Contains(e.err, collections.ErrConflict.Error())) {
				c.violate("%s %s %x refused at %d, but the log has %v there", op.kind, op.key, op.hash[:4], op.index, e)
			}
		case resLost:
			// Lost: it never took effect (a refused conditional update
			// whose position a snapshot covered is reported lost too).
			for _, i := range byHash[op.hash] {
				if e := c.log[i]; e.err == "" && e.outcome == collections.Accepted {
					c.violate("%s %s %x reported lost by %s, but accepted at %d: %v", op.kind, op.key, op.hash[:4], c.nodes[op.node].name, i, e)
				}
			}
		}
	}

	for _, op := range s.ops {
		s.stats.ops++
		switch op.res {
		case resOK:
			s.stats.acked++
		case resConflict:
			s.stats.conflicts++
		case resLost:
			s.stats.lost++
		case resUnknown:
			s.stats.unknown++
		case resFailed:
			s.stats.failed++
		}
	}
	s.checkLinearizable()
}

// The register model: each user record is a register holding the hash of
// the update that last wrote it (a tombstone too), or nothing.
type regState struct {
	h    [32]byte
	live bool
}

type regInput struct {
	kind    opKind
	key     string
	h, prev [32]byte
}

type regOutput struct {
	res  opResult // resOK, resConflict or resUnknown
	read regState
}

var registerModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(regInput).key
			by[k] = append(by[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range slices.Sorted(maps.Keys(by)) {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() []any { return []any{regState{}} },
	Step: func(state, input, output any) []any {
		st, in, out := state.(regState), input.(regInput), output.(regOutput)
		var next regState
		allowed := true
		switch in.kind {
		case opRead:
			if out.read == st {
				return []any{st}
			}
			return nil
		case opPut:
			next = regState{h: in.h, live: true}
		case opDelete:
			next = regState{h: in.h}
		case opCreate:
			next, allowed = regState{h: in.h, live: true}, !st.live
		case opCAS:
			next, allowed = regState{h: in.h, live: true}, st.h != [32]byte{} && st.h == in.prev
		}
		switch {
		case out.res == resOK && allowed:
			return []any{next}
		case out.res == resConflict && !allowed:
			return []any{st}
		case out.res == resUnknown && allowed:
			return []any{st, next}
		case out.res == resUnknown:
			return []any{st}
		}
		return nil
	},
	Equal: func(a, b any) bool { return a.(regState) == b.(regState) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		res := map[opResult]string{resOK: "ok", resConflict: "conflict", resUnknown: "?"}[out.res]
		switch in.kind {
		case opRead:
			return fmt.Sprintf("read(%s) -> %s", in.key, describeReg(out.read))
		case opCAS:
			return fmt.Sprintf("cas(%s, %x -> %x) -> %s", in.key, in.prev[:3], in.h[:3], res)
		}
		return fmt.Sprintf("%s(%s, %x) -> %s", in.kind, in.key, in.h[:3], res)
	},
	DescribeState: func(state any) string { return describeReg(state.(regState)) },
}

func describeReg(s regState) string {
	switch {
	case s.h == [32]byte{}:
		return "none"
	case !s.live:
		return fmt.Sprintf("deleted %x", s.h[:3])
	}
	return fmt.Sprintf("%x", s.h[:3])
}

// checkLinearizable checks the history of every user record, ending with
// a read of what the healed cluster holds.
func (s *sim) checkLinearizable() {
	c := s.c
	var history []porcupine.Operation
	for _, op := range s.ops {
		switch op.res {
		case resOK, resConflict, resUnknown:
		default:
			continue // never proposed, or lost: it never took effect
		}
		in := regInput{kind: op.kind, key: op.key, h: op.hash, prev: op.prev}
		out := regOutput{res: op.res, read: op.read}
		ret := op.ret
		if op.res == resUnknown {
			ret = 1 << 62 // may take effect any time after its call
		}
		history = append(history, porcupine.Operation{ClientId: len(history), Input: in, Call: op.call, Output: out, Return: ret})
	}
	for _, key := range s.keys {
		var rs regState
		if r, ok := record(c.nodes[0].core.State(), key); ok {
			rs = regState{h: r.Hash, live: !r.Deleted}
		}
		call := s.event()
		history = append(history, porcupine.Operation{
			ClientId: len(history), Input: regInput{kind: opRead, key: key},
			Call: call, Output: regOutput{res: resOK, read: rs}, Return: s.event(),
		})
	}
	model := registerModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(model, history, 30*time.Second)
	switch res {
	case porcupine.Illegal:
		dir, err := visDir()
		if err != nil {
			c.violate("history not linearizable (no visualization: %v)", err)
			return
		}
		path := filepath.Join(dir, fmt.Sprintf("seed-%d.html", s.seed))
		if err := porcupine.VisualizePath(model, info, path); err != nil {
			c.violate("history not linearizable (visualization failed: %v)", err)
			return
		}
		c.violate("history not linearizable; see %s", path)
	case porcupine.Unknown:
		c.trace("linearizability check timed out")
	}
}

var vis struct {
	sync.Mutex
	dir string
}

// visDir is where visualizations of non-linearizable histories go:
// -chain.vis, or one new temporary directory per run, kept after the test
// ends so that they can be opened.
func visDir() (string, error) {
	vis.Lock()
	defer vis.Unlock()
	if vis.dir == "" {
		if vis.dir = *simVis; vis.dir == "" {
			dir, err := os.MkdirTemp("", "chain-sim-")
			if err != nil {
				return "", err
			}
			vis.dir = dir
		}
	}
	return vis.dir, nil
}

func cmpHash(a, b [32]byte) int { return strings.Compare(string(a[:]), string(b[:])) }
