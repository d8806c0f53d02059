package role

import (
	"fmt"
	"slices"
)

// peerState is what a machine knows about another server of the chain.
type peerState struct {
	heard     bool
	lastHeard int64 // tick of the last message from it
	isMaster  bool  // its last heartbeat said it was master
	caughtUp  uint64
}

// campaignState is an ongoing pre-campaign or campaign.
type campaignState struct {
	epoch  uint64
	start  int64
	grants map[string]bool
}

// Machine decides one server's role. It is not safe for concurrent use: one
// goroutine (the driver) owns it. See the package documentation.
type Machine struct {
	cfg    Config
	pos    map[string]int
	quorum int
	peers  map[string]*peerState

	now              int64
	heartbeatElapsed int

	highest   uint64 // highest epoch seen, granted or used
	persisted uint64 // part of highest the driver has made durable

	role        Role
	epoch       uint64 // this server's epoch as Master or Candidate
	master      string // last master accepted (self when Master)
	masterEpoch uint64
	known       uint64 // highest epoch known to have had a master
	caughtUp    uint64 // highest epoch whose data this server holds
	lastMaster  int64  // last tick a live master existed (or New)

	pre      *campaignState // pre-campaign, while Role is Slave
	campaign *campaignState // campaign, while Role is Candidate

	msgs      []Message
	lastState State // State of the last advanced Ready
}

// New returns a machine for cfg that restarts from persisted. The machine
// starts as a slave that is not caught up: a restarted server must catch up
// from the acting master before it can be promoted.
func New(cfg Config, persisted Persisted) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Chain = slices.Clone(cfg.Chain)
	m := &Machine{
		cfg:       cfg,
		pos:       make(map[string]int, len(cfg.Chain)),
		quorum:    cfg.quorum(),
		peers:     make(map[string]*peerState, len(cfg.Chain)-1),
		highest:   persisted.Epoch,
		persisted: persisted.Epoch,
		// Until told otherwise, assume a master was elected in the
		// highest epoch we have seen, so that this server is not
		// eligible before it catches up.
		known: persisted.Epoch,
		// The first Tick sends a heartbeat.
		heartbeatElapsed: cfg.HeartbeatTicks - 1,
	}
	for i, id := range cfg.Chain {
		m.pos[id] = i
		if id != cfg.Self {
			m.peers[id] = &peerState{}
		}
	}
	return m, nil
}

// Tick advances the machine's clock by one tick.
func (m *Machine) Tick() {
	m.now++
	// A pre-campaign changes nothing anywhere, so it is retried soon: the
	// others may only be a heartbeat behind in noticing the master is gone.
	if m.pre != nil && m.now-m.pre.start >= int64(m.cfg.HeartbeatTicks) {
		m.pre = nil
	}
	switch m.role {
	case Master:
		if m.liveCount() < m.quorum {
			m.stepDown() // lost the majority: stop acknowledging
		}
	case Candidate:
		if m.now-m.campaign.start >= int64(m.cfg.FailAfterTicks) {
			m.stepDown() // campaign failed; a later one uses a higher epoch
		}
	}
	if id, _ := m.liveMaster(); id != "" {
		m.lastMaster = m.now
	}
	if m.role == Slave && m.pre == nil {
		m.maybePromote()
	}
	m.heartbeatElapsed++
	if m.heartbeatElapsed >= m.cfg.HeartbeatTicks {
		m.heartbeat()
	}
}

// Step feeds a message from another server. It returns an error wrapping
// [ErrUnknownPeer] or [ErrStaleEpoch] for messages it refuses; a refused
// heartbeat still counts as a sign of life of its sender.
func (m *Machine) Step(msg Message) error {
	p, ok := m.peers[msg.From]
	if !ok {
		return fmt.Errorf("role: %s from %q: %w", msg.Type, msg.From, ErrUnknownPeer)
	}
	if msg.To != "" && msg.To != m.cfg.Self {
		return fmt.Errorf("role: %s addressed to %q: %w", msg.Type, msg.To, ErrUnknownPeer)
	}
	p.heard, p.lastHeard = true, m.now
	switch msg.Type {
	case MsgHeartbeat:
		return m.stepHeartbeat(p, msg)
	case MsgPreCampaign:
		p.isMaster, p.caughtUp = false, msg.CaughtUp
		if msg.Epoch > m.highest && m.promotable(msg.From) {
			m.send(Message{Type: MsgPreGrant, To: msg.From, Epoch: msg.Epoch})
		}
	case MsgPreGrant:
		if m.pre != nil && msg.Epoch == m.pre.epoch {
			m.pre.grants[msg.From] = true
			if len(m.pre.grants) >= m.quorum {
				m.startCampaign()
			}
		}
	case MsgCampaign:
		p.isMaster, p.caughtUp = false, msg.CaughtUp
		if msg.Epoch < m.highest {
			return fmt.Errorf("role: campaign of %q for epoch %d below %d: %w", msg.From, msg.Epoch, m.highest, ErrStaleEpoch)
		}
		// A refused campaign changes nothing here: only a grant fences.
		if msg.Epoch > m.highest && m.promotable(msg.From) {
			m.observe(msg.Epoch)
			m.send(Message{Type: MsgGrant, To: msg.From, Epoch: msg.Epoch})
		}
	case MsgGrant:
		if m.role == Candidate && msg.Epoch == m.campaign.epoch {
			m.campaign.grants[msg.From] = true
			if len(m.campaign.grants) >= m.quorum {
				m.becomeMaster(m.campaign.epoch)
			}
		}
	default:
		return fmt.Errorf("role: unknown message type %d from %q", msg.Type, msg.From)
	}
	return nil
}

func (m *Machine) stepHeartbeat(p *peerState, msg Message) error {
	p.isMaster, p.caughtUp = msg.IsMaster, msg.CaughtUp
	m.observe(msg.Epoch)
	m.known = max(m.known, min(msg.MasterEpoch, m.highest))
	if msg.IsMaster {
		m.known = max(m.known, msg.Epoch)
	}
	if !msg.IsMaster {
		return nil
	}
	if msg.Epoch < m.highest {
		return fmt.Errorf("role: heartbeat of master %q at epoch %d below %d: %w", msg.From, msg.Epoch, m.highest, ErrStaleEpoch)
	}
	switch m.role {
	case Master:
		// Two masters in one epoch cannot arise (epochs are granted once
		// by a majority, or in plain-chain mode each server has its own
		// epochs), but if it did the earlier one in the chain wins and
		// the other resyncs.
		if m.pos[msg.From] > m.pos[m.cfg.Self] {
			return nil
		}
		m.stepDown()
		m.caughtUp = min(m.caughtUp, msg.Epoch-1)
	case Candidate:
		m.stepDown()
	}
	m.pre = nil
	m.master, m.masterEpoch = msg.From, msg.Epoch
	m.lastMaster = m.now
	return nil
}

// CaughtUp tells the machine that this server now holds all data of the
// master at epoch (the driver pulled from State.CatchUpFrom). Epochs above
// the highest seen are clamped to it.
func (m *Machine) CaughtUp(epoch uint64) {
	if e := min(epoch, m.highest); e > m.caughtUp {
		m.caughtUp = e
		// Tell the others at once: they rank servers by it, and a
		// stale view could let a lower-priority server promote itself.
		m.heartbeat()
	}
}

// Fence returns an error wrapping [ErrStaleEpoch] when a master act (an
// acknowledgement, receipt or republish) signed at epoch must be refused
// because a higher epoch has been seen. A higher epoch than any seen is
// accepted: the heartbeats will tell the machine about it.
func (m *Machine) Fence(epoch uint64) error {
	if epoch < m.highest {
		return fmt.Errorf("role: epoch %d below %d: %w", epoch, m.highest, ErrStaleEpoch)
	}
	return nil
}

// HasReady reports whether [Machine.Ready] has anything to do.
func (m *Machine) HasReady() bool {
	return m.highest > m.persisted || len(m.msgs) > 0 || m.state() != m.lastState
}

// Ready returns the work to do now. It changes nothing: call
// [Machine.Advance] with the result once it has been acted on.
func (m *Machine) Ready() Ready {
	rd := Ready{Messages: slices.Clone(m.msgs), State: m.state()}
	if m.highest > m.persisted {
		rd.PersistEpoch = m.highest
	}
	rd.StateChanged = rd.State != m.lastState
	return rd
}

// Advance records that rd, returned by the latest [Machine.Ready], has been
// acted on: its epoch persisted, its messages handed to the network and its
// State applied.
func (m *Machine) Advance(rd Ready) {
	if len(rd.Messages) > len(m.msgs) {
		panic("role: Advance with a Ready this machine did not produce")
	}
	m.persisted = max(m.persisted, rd.PersistEpoch)
	m.msgs = slices.Delete(m.msgs, 0, len(rd.Messages))
	m.lastState = rd.State
}

// Status returns a snapshot for display.
func (m *Machine) Status() Status {
	st := m.state()
	s := Status{
		Self: m.cfg.Self, Role: st.Role, Master: st.Master, Epoch: st.Epoch,
		Highest: m.highest, Persisted: m.persisted, KnownMaster: m.known,
		CaughtUp: m.caughtUp, Tick: m.now,
	}
	for _, id := range m.cfg.Chain {
		if m.live(id) {
			s.Live = append(s.Live, id)
		}
	}
	return s
}

func (m *Machine) state() State {
	if m.role == Candidate {
		return State{Role: Candidate}
	}
	id, e := m.liveMaster()
	s := State{Role: m.role, Master: id, Epoch: e}
	switch {
	case m.role != Slave:
	case id != "":
		if m.caughtUp < e {
			s.CatchUpFrom, s.CatchUpEpoch = id, e
		}
	case m.caughtUp < m.known:
		// No master: catch up from a live server that holds the latest
		// master's data, so that this server can be promoted if it comes
		// first in the chain.
		if src := m.firstCaughtUp(); src != "" {
			s.CatchUpFrom, s.CatchUpEpoch = src, m.known
		}
	}
	return s
}

// live reports whether id has been heard from within FailAfterTicks.
func (m *Machine) live(id string) bool {
	if id == m.cfg.Self {
		return true
	}
	p := m.peers[id]
	return p.heard && m.now-p.lastHeard < int64(m.cfg.FailAfterTicks)
}

func (m *Machine) liveCount() int {
	n := 0
	for _, id := range m.cfg.Chain {
		if m.live(id) {
			n++
		}
	}
	return n
}

func (m *Machine) caughtUpOf(id string) uint64 {
	if id == m.cfg.Self {
		return m.caughtUp
	}
	return m.peers[id].caughtUp
}

// liveMaster returns the master this server acknowledges now: itself, or
// the last master accepted if it is live, still says it is master, and has
// not been fenced by a higher epoch.
func (m *Machine) liveMaster() (string, uint64) {
	if m.role == Master {
		return m.cfg.Self, m.epoch
	}
	if m.master == "" || m.master == m.cfg.Self || m.masterEpoch < m.highest {
		return "", 0
	}
	if p := m.peers[m.master]; !p.isMaster || !m.live(m.master) {
		return "", 0
	}
	return m.master, m.masterEpoch
}

// rightful returns the server that should be master in this server's view,
// or "" while it is too early to tell: the first live server in chain order,
// as long as a live server holds the data of the latest master's epoch (the
// acting master always does). A server ahead of it that does not hold that
// data yet catches up from it first (see [Machine.promotable]); only when
// the master has been gone for StartupGraceTicks is the first live server
// that holds it rightful instead, so that a server that cannot catch up
// does not block the chain. When no live server holds that data and no
// master has been seen for StartupGraceTicks, it is the first live server.
func (m *Machine) rightful() string {
	up := m.firstCaughtUp()
	grace := m.now-m.lastMaster < int64(m.cfg.StartupGraceTicks)
	switch {
	case up != "" && grace:
		return m.firstLive()
	case up != "":
		return up
	case grace:
		return ""
	}
	return m.firstLive()
}

// promotable reports whether id may become master now in this server's
// view: it is rightful and holds the data of the latest master's epoch, or
// no live server does (a cold start).
func (m *Machine) promotable(id string) bool {
	if id == "" || m.rightful() != id {
		return false
	}
	return m.caughtUpOf(id) >= m.known || m.firstCaughtUp() == ""
}

// firstCaughtUp returns the first live server in chain order that holds the
// data of the latest master's epoch, or "".
func (m *Machine) firstCaughtUp() string {
	for _, id := range m.cfg.Chain {
		if m.live(id) && m.caughtUpOf(id) >= m.known {
			return id
		}
	}
	return ""
}

// firstLive returns the first live server in chain order (at worst self).
func (m *Machine) firstLive() string {
	for _, id := range m.cfg.Chain {
		if m.live(id) {
			return id
		}
	}
	return m.cfg.Self
}

func (m *Machine) maybePromote() {
	// A freshly started server first listens for FailAfterTicks, so that it
	// has heard every live server, and while there is no master for
	// StartupGraceTicks, so that a cold start elects the chain's head.
	if m.now < int64(m.cfg.FailAfterTicks) {
		return
	}
	if id, _ := m.liveMaster(); id == "" && m.now < int64(m.cfg.StartupGraceTicks) {
		return
	}
	if !m.promotable(m.cfg.Self) || m.liveCount() < m.quorum {
		return
	}
	if m.quorum == 1 {
		m.becomeMaster(m.nextPlainEpoch())
		return
	}
	e := m.highest + 1
	m.pre = &campaignState{epoch: e, start: m.now, grants: map[string]bool{m.cfg.Self: true}}
	m.send(Message{Type: MsgPreCampaign, Epoch: e, CaughtUp: m.caughtUp})
}

// nextPlainEpoch returns the epoch a server takes in plain-chain mode: the
// smallest one above every epoch seen that is congruent to its chain
// position plus one modulo the chain length. Servers that promote
// themselves without a majority's grant thus never share an epoch.
func (m *Machine) nextPlainEpoch() uint64 {
	n := uint64(len(m.cfg.Chain))
	want := uint64(m.pos[m.cfg.Self]+1) % n
	e := m.highest + 1
	e += (want + n - e%n) % n
	return e
}

func (m *Machine) startCampaign() {
	e := m.pre.epoch
	m.pre = nil
	if e <= m.highest {
		return // overtaken by a higher epoch while pre-campaigning
	}
	m.observe(e)
	m.role, m.epoch = Candidate, e
	m.campaign = &campaignState{epoch: e, start: m.now, grants: map[string]bool{m.cfg.Self: true}}
	m.send(Message{Type: MsgCampaign, Epoch: e, CaughtUp: m.caughtUp})
}

func (m *Machine) becomeMaster(e uint64) {
	m.observe(e)
	m.role, m.epoch = Master, e
	m.campaign, m.pre = nil, nil
	m.master, m.masterEpoch = m.cfg.Self, e
	m.known = max(m.known, e)
	m.caughtUp = e
	m.lastMaster = m.now
	m.heartbeat() // tell the others now, so a deposed master steps down at once
}

func (m *Machine) stepDown() {
	m.role, m.epoch = Slave, 0
	m.campaign = nil
	if m.master == m.cfg.Self {
		m.master, m.masterEpoch = "", 0
	}
}

// observe raises the highest epoch seen to e. A master or candidate of a
// lower epoch is fenced by it and steps down.
func (m *Machine) observe(e uint64) {
	if e <= m.highest {
		return
	}
	m.highest = e
	m.pre = nil
	if m.role != Slave && m.epoch < e {
		m.stepDown()
	}
}

func (m *Machine) heartbeat() {
	m.heartbeatElapsed = 0
	id, _ := m.liveMaster()
	m.send(Message{
		Type: MsgHeartbeat, Epoch: m.highest,
		Master: id, MasterEpoch: m.known,
		IsMaster: m.role == Master, CaughtUp: m.caughtUp,
	})
}

func (m *Machine) send(msg Message) {
	msg.From = m.cfg.Self
	m.msgs = append(m.msgs, msg)
}
