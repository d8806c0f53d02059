package role

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// cluster runs several machines in lockstep and plays their drivers: it
// persists epochs to a simulated disk, delivers messages over links that can
// be cut, crashes and restarts servers, and reports catch-ups. After every
// Ready it applies and after every tick it checks the invariants.
type cluster struct {
	t   testing.TB
	ids []string
	cfg map[string]Config

	nodes  map[string]*Machine // nil while crashed
	paused map[string]bool     // neither ticked nor delivered to
	disk   map[string]uint64   // durable epoch per server
	state  map[string]State    // State last applied by the driver

	cut         map[[2]string]bool // directed links that drop everything
	drop        func(Message) bool // optional extra loss
	autoCatchUp bool

	now        int64
	masterOf   map[uint64]string // epoch -> the server that accepted writes in it
	maxHighest map[string]uint64 // highest epoch seen per running server
	trace      []string
}

// newCluster starts n servers s1..sn with DefaultConfig, overriding the
// mode when majority is not nil.
func newCluster(t testing.TB, n int, majority *bool) *cluster {
	c := &cluster{
		t: t, cfg: map[string]Config{},
		nodes: map[string]*Machine{}, paused: map[string]bool{}, disk: map[string]uint64{}, state: map[string]State{},
		cut: map[[2]string]bool{}, autoCatchUp: true,
		masterOf: map[uint64]string{}, maxHighest: map[string]uint64{},
	}
	for i := range n {
		c.ids = append(c.ids, fmt.Sprintf("s%d", i+1))
	}
	for _, id := range c.ids {
		cfg := DefaultConfig(id, c.ids)
		if majority != nil {
			cfg.Majority = *majority
		}
		c.cfg[id] = cfg
		c.start(id)
	}
	return c
}

func (c *cluster) logf(format string, args ...any) {
	c.trace = append(c.trace, fmt.Sprintf("t%d ", c.now)+fmt.Sprintf(format, args...))
}

func (c *cluster) fatalf(format string, args ...any) {
	c.t.Helper()
	const keep = 60
	tr := c.trace
	if len(tr) > keep {
		tr = tr[len(tr)-keep:]
	}
	c.t.Fatalf("%s\nstatus:\n%s\nlast %d trace lines:\n%s", fmt.Sprintf(format, args...),
		c.statusText(), len(tr), strings.Join(tr, "\n"))
}

func (c *cluster) statusText() string {
	var b strings.Builder
	for _, id := range c.ids {
		m := c.nodes[id]
		if m == nil {
			fmt.Fprintf(&b, "  %s: down (disk epoch %d)\n", id, c.disk[id])
			continue
		}
		s := m.Status()
		fmt.Fprintf(&b, "  %s: %s master=%q epoch=%d highest=%d known=%d caught=%d live=%v applied=%+v\n",
			id, s.Role, s.Master, s.Epoch, s.Highest, s.KnownMaster, s.CaughtUp, s.Live, c.state[id])
	}
	return b.String()
}

func (c *cluster) start(id string) {
	m, err := New(c.cfg[id], Persisted{Epoch: c.disk[id]})
	if err != nil {
		c.t.Fatalf("New(%s): %v", id, err)
	}
	c.nodes[id] = m
	c.state[id] = State{}
	c.maxHighest[id] = c.disk[id]
}

func (c *cluster) mustKnow(id string) {
	c.t.Helper()
	if _, ok := c.cfg[id]; !ok {
		c.t.Fatalf("unknown server %q", id)
	}
}

func (c *cluster) crash(id string) {
	c.mustKnow(id)
	c.nodes[id] = nil
	c.paused[id] = false
	c.state[id] = State{}
	c.logf("crash %s", id)
}

// crashAfterPersist makes id crash while handling a Ready: after the epoch
// is durable but before anything is sent or applied.
func (c *cluster) crashAfterPersist(id string) {
	if m := c.nodes[id]; m != nil && m.HasReady() {
		if rd := m.Ready(); rd.PersistEpoch != 0 {
			c.persist(id, rd.PersistEpoch)
		}
	}
	c.crash(id)
}

func (c *cluster) restart(id string) {
	c.mustKnow(id)
	if c.nodes[id] != nil {
		c.t.Fatalf("restart %s: it is running", id)
	}
	c.start(id)
	c.logf("restart %s from epoch %d", id, c.disk[id])
}

// pause freezes id with its state, like SIGSTOP; resume lets it go on.
func (c *cluster) pause(id string) {
	c.mustKnow(id)
	c.paused[id] = true
	c.logf("pause %s", id)
}

func (c *cluster) resume(id string) {
	c.mustKnow(id)
	c.paused[id] = false
	c.logf("resume %s", id)
}

// active reports whether id is running and not paused.
func (c *cluster) active(id string) bool { return c.nodes[id] != nil && !c.paused[id] }

// partition cuts every link between servers of different groups. Servers
// named in no group form one more group.
func (c *cluster) partition(groups [][]string) {
	group := map[string]int{}
	for i, g := range groups {
		for _, id := range g {
			c.mustKnow(id)
			group[id] = i + 1
		}
	}
	c.cut = map[[2]string]bool{}
	for _, a := range c.ids {
		for _, b := range c.ids {
			if group[a] != group[b] {
				c.cut[[2]string{a, b}] = true
			}
		}
	}
	c.logf("partition %v", groups)
}

func (c *cluster) heal() {
	c.cut = map[[2]string]bool{}
	c.logf("heal")
}

func (c *cluster) linked(a, b string) bool { return !c.cut[[2]string{a, b}] }

func (c *cluster) persist(id string, e uint64) {
	if e <= c.disk[id] {
		c.fatalf("%s: PersistEpoch %d not above durable epoch %d", id, e, c.disk[id])
	}
	c.disk[id] = e
}

// tick advances every running server by one tick, then delivers until
// quiet, then plays the catch-up pulls.
func (c *cluster) tick() {
	c.t.Helper()
	c.now++
	for _, id := range c.ids {
		if c.active(id) {
			c.nodes[id].Tick()
		}
	}
	c.stabilize()
	if c.autoCatchUp {
		for _, id := range c.ids {
			if from := c.state[id].CatchUpFrom; from != "" {
				c.caughtUp(id)
			}
		}
		c.stabilize()
	}
}

// caughtUp plays a completed pull of id from the server it catches up
// from, if that server is reachable and holds the data of the epoch: it is
// or was master in it, or caught up to it.
func (c *cluster) caughtUp(id string) bool {
	st := c.state[id]
	from := st.CatchUpFrom
	if from == "" || !c.active(id) || !c.active(from) || !c.linked(id, from) || !c.linked(from, id) {
		return false
	}
	if st.CatchUpEpoch == 0 || c.nodes[from].Status().CaughtUp < st.CatchUpEpoch {
		return false
	}
	c.nodes[id].CaughtUp(st.CatchUpEpoch)
	c.logf("%s caught up from %s at epoch %d", id, from, st.CatchUpEpoch)
	return true
}

// stabilize applies Readys and delivers messages until nothing is left.
func (c *cluster) stabilize() {
	c.t.Helper()
	for round := 0; ; round++ {
		if round > 100 {
			c.fatalf("messages still flowing after %d rounds", round)
		}
		var inflight []Message
		for _, id := range c.ids {
			m := c.nodes[id]
			if !c.active(id) || !m.HasReady() {
				continue
			}
			rd := m.Ready()
			c.apply(id, rd)
			m.Advance(rd)
			inflight = append(inflight, rd.Messages...)
		}
		if len(inflight) == 0 {
			break
		}
		for _, msg := range inflight {
			for _, to := range c.ids {
				if to == msg.From || (msg.To != "" && msg.To != to) {
					continue
				}
				if !c.active(to) || !c.linked(msg.From, to) || (c.drop != nil && c.drop(msg)) {
					continue
				}
				if err := c.nodes[to].Step(msg); err != nil {
					c.logf("%s refused %v: %v", to, msg, err)
				}
			}
		}
	}
	c.checkInvariants()
}

// apply plays the driver's handling of rd and checks the Ready contract.
func (c *cluster) apply(id string, rd Ready) {
	c.t.Helper()
	if rd.PersistEpoch != 0 {
		c.persist(id, rd.PersistEpoch)
	}
	for _, msg := range rd.Messages {
		if msg.From != id {
			c.fatalf("%s sent a message from %q", id, msg.From)
		}
		// A pre-campaign names an epoch it does not claim yet.
		prospective := msg.Type == MsgPreCampaign || msg.Type == MsgPreGrant
		if msg.Epoch > c.disk[id] && !prospective {
			c.fatalf("%s sent %v before persisting epoch %d (durable %d)", id, msg, msg.Epoch, c.disk[id])
		}
	}
	st := rd.State
	if st.Epoch > c.disk[id] {
		c.fatalf("%s acts on epoch %d before persisting it (durable %d)", id, st.Epoch, c.disk[id])
	}
	if st.AcceptWrites() {
		if st.Master != id || st.Epoch == 0 {
			c.fatalf("%s: master State %+v", id, st)
		}
		if other, ok := c.masterOf[st.Epoch]; ok && other != id {
			c.fatalf("two masters in epoch %d: %s and %s", st.Epoch, other, id)
		}
		c.masterOf[st.Epoch] = id
	}
	if rd.StateChanged != (st != c.state[id]) {
		c.fatalf("%s: StateChanged=%t, but applied %+v and new %+v", id, rd.StateChanged, c.state[id], st)
	}
	if rd.StateChanged {
		c.logf("%s -> %+v", id, st)
	}
	c.state[id] = st
}

func (c *cluster) checkInvariants() {
	c.t.Helper()
	for _, id := range c.ids {
		m := c.nodes[id]
		if !c.active(id) {
			continue
		}
		s := m.Status()
		if s.Highest < c.maxHighest[id] {
			c.fatalf("%s: highest epoch went down from %d to %d", id, c.maxHighest[id], s.Highest)
		}
		c.maxHighest[id] = s.Highest
		if s.Persisted != c.disk[id] || s.Highest != c.disk[id] {
			c.fatalf("%s: quiet, yet highest %d, persisted %d, durable %d", id, s.Highest, s.Persisted, c.disk[id])
		}
		if s.Role == Master && s.Epoch != s.Highest {
			c.fatalf("%s: master at epoch %d but has seen %d", id, s.Epoch, s.Highest)
		}
	}
}

// writers returns the active servers whose applied State accepts writes.
func (c *cluster) writers() []string {
	var w []string
	for _, id := range c.ids {
		if c.active(id) && c.state[id].AcceptWrites() {
			w = append(w, id)
		}
	}
	return w
}

func (c *cluster) maxEpoch() uint64 {
	var e uint64
	for _, id := range c.ids {
		e = max(e, c.disk[id])
	}
	return e
}

// settled reports whether every running server follows one master at one
// epoch and none needs to catch up; it returns that master.
func (c *cluster) settled() (string, bool) {
	w := c.writers()
	if len(w) != 1 {
		return "", false
	}
	master, epoch := w[0], c.state[w[0]].Epoch
	for _, id := range c.ids {
		if !c.active(id) {
			continue
		}
		st := c.state[id]
		if st.Master != master || st.Epoch != epoch || st.CatchUpFrom != "" {
			return "", false
		}
	}
	return master, true
}

func (c *cluster) running() []string {
	return slices.DeleteFunc(slices.Clone(c.ids), func(id string) bool { return c.nodes[id] == nil })
}
