package chain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/zeebo/blake3"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
)

// MaxVoters is how many servers of the chain vote: the first ones.
const MaxVoters = 5

// Errors callers branch on.
var (
	// ErrNotLeader: only the leader proposes; this server is not it now.
	ErrNotLeader = errors.New("not the leader")
	// ErrDropped: raft dropped the proposal (a leadership transfer in
	// progress, too many uncommitted entries); propose again later.
	ErrDropped = errors.New("proposal dropped")
	// ErrMisplaced: a committed entry's certification names another log
	// position than its own; every server refuses it.
	ErrMisplaced = errors.New("certification names another log position")
	// ErrLost: this server's proposal was not committed: another entry took
	// its log position (its term ended first).
	ErrLost = errors.New("not committed: the master's term ended first")
)

// RaftID is the raft node ID of a host: the first eight bytes of a
// domain-separated BLAKE3 hash of its peer ID (never zero).
func RaftID(p lpeer.ID) uint64 {
	h := blake3.New()
	h.WriteString("baton/raft-id/v1\x00")
	h.Write([]byte(p))
	var sum [32]byte
	h.Sum(sum[:0])
	id := binary.BigEndian.Uint64(sum[:8])
	if id == 0 {
		id = 1
	}
	return id
}

// Membership is the raft configuration a chain asks for: its first
// MaxVoters servers vote, the others are learners.
func Membership(chain []lpeer.ID) *raftpb.ConfState {
	cs := &raftpb.ConfState{}
	for i, id := range chain {
		if i < MaxVoters {
			cs.Voters = append(cs.Voters, RaftID(id))
		} else {
			cs.Learners = append(cs.Learners, RaftID(id))
		}
	}
	return cs
}

// InitialSnapshot is where every server of a new domain starts its log:
// index 1, term 1, the genesis chain's membership and the genesis state
// (empty data). Every server starts from the same one, so none needs to
// bootstrap the others.
func InitialSnapshot(g collections.Genesis) (*raftpb.Snapshot, error) {
	chain := g.Chain.IDs()
	if len(chain) != len(g.Chain.Servers) {
		return nil, fmt.Errorf("genesis chain: %d of %d server IDs do not decode", len(g.Chain.Servers)-len(chain), len(g.Chain.Servers))
	}
	return &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index: new(uint64(1)), Term: new(uint64(1)), ConfState: Membership(chain),
	}}, nil
}

// Config configures a Core.
type Config struct {
	// Key is this server's host key: it certifies what it proposes.
	Key *identity.PrivateKey
	// State is the collections state at Applied: the genesis state or the
	// state restored from Storage's snapshot (RestoreState).
	State *collections.State
	// Storage is the raft log, restored from durable storage.
	Storage *raft.MemoryStorage
	// Applied is the index State reflects (the snapshot's).
	Applied uint64
	// ElectionTicks and HeartbeatTicks are raft's; Tick is called by the
	// driver at a fixed interval.
	ElectionTicks, HeartbeatTicks int
	// Logger receives raft's own log; nil discards it.
	Logger raft.Logger
	// Witness makes this server a witness: a voter that keeps the log and
	// the state but never stays master. When it leads, it hands leadership
	// to any voter of the chain that is caught up and active, not only to
	// an earlier one.
	Witness bool
	// Generation is the generation of the log in Storage (the zero value
	// for a domain's first; see ForcePromote).
	Generation Generation
}

// Core is one server's consensus core. It is not safe for concurrent use.
type Core struct {
	rn      *raft.RawNode
	key     *identity.PrivateKey
	self    uint64
	state   *collections.State
	storage *raft.MemoryStorage
	conf    *raftpb.ConfState
	applied uint64
	// last is the index of the log's last entry as far as this core
	// knows: from the entries of each Ready, plus what it proposed since.
	last uint64
	// mine is this core's proposals not yet applied, by log index.
	mine map[uint64]collections.SignedUpdate
	// lost are proposals found displaced before their position was
	// committed, reported by the next Advance.
	lost [][32]byte
	// confIndex is the index of the configuration change in flight.
	confIndex uint64
	// witness: this server is a witness; witnesses: the other servers
	// known to be witnesses (SetWitnesses), never handed leadership.
	witness   bool
	witnesses map[uint64]bool
	gen       Generation
	// snapIndex is the stored snapshot's index as Compact last saw it:
	// the index only grows, so it stays a lower bound.
	snapIndex uint64
}

// New builds a Core from restored storage. It does no I/O.
func New(cfg Config) (*Core, error) {
	if cfg.Key == nil || cfg.State == nil || cfg.Storage == nil {
		return nil, errors.New("chain: config needs a key, a state and storage")
	}
	if cfg.ElectionTicks <= 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.HeartbeatTicks <= 0 {
		cfg.HeartbeatTicks = 1
	}
	if cfg.HeartbeatTicks >= cfg.ElectionTicks {
		cfg.HeartbeatTicks = max(1, cfg.ElectionTicks/2)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = discard{}
	}
	self := RaftID(cfg.Key.ID())
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                        self,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             cfg.HeartbeatTicks,
		Storage:                   cfg.Storage,
		Applied:                   cfg.Applied,
		MaxSizePerMsg:             1 << 20,
		MaxInflightMsgs:           256,
		MaxUncommittedEntriesSize: 64 << 20,
		CheckQuorum:               true,
		PreVote:                   true,
		DisableProposalForwarding: true,
		StepDownOnRemoval:         true,
		Logger:                    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("starting raft: %w", err)
	}
	_, cs, err := cfg.Storage.InitialState()
	if err != nil {
		return nil, fmt.Errorf("reading raft storage: %w", err)
	}
	last, err := cfg.Storage.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("reading raft storage: %w", err)
	}
	return &Core{
		rn: rn, key: cfg.Key, self: self, state: cfg.State, storage: cfg.Storage,
		conf: cs, applied: cfg.Applied, last: last, mine: map[uint64]collections.SignedUpdate{},
		witness: cfg.Witness, witnesses: map[uint64]bool{}, gen: cfg.Generation,
	}, nil
}

// State is the applied state. The caller must not change it.
func (c *Core) State() *collections.State { return c.state }

// Applied is the index of the last applied entry.
func (c *Core) Applied() uint64 { return c.applied }

// ConfState is the applied raft configuration.
func (c *Core) ConfState() *raftpb.ConfState { return c.conf }

// IsLeader reports whether this server leads its current term.
func (c *Core) IsLeader() bool { return c.rn.BasicStatus().RaftState == raft.StateLeader }

// Alone reports whether this server leads a configuration of itself only
// (no other voter or learner, no change under way) and the chain names no
// other server. Its ticks then time nothing: no other server to send
// heartbeats to or hear from, and no configuration to move until the
// chain changes (which Tick, on the leader, then starts).
func (c *Core) Alone() bool {
	if !c.IsLeader() || c.confIndex > c.applied {
		return false
	}
	cs := c.conf
	if len(cs.GetVoters()) != 1 || cs.GetVoters()[0] != c.self || len(cs.GetLearners()) > 0 ||
		len(cs.GetVotersOutgoing()) > 0 || len(cs.GetLearnersNext()) > 0 {
		return false
	}
	chain := c.state.Chain().IDs()
	return len(chain) == 1 && RaftID(chain[0]) == c.self
}

// Lead is the raft ID of the leader this server knows of (0: none).
func (c *Core) Lead() uint64 { return c.rn.BasicStatus().Lead }

// Term is this server's current term.
func (c *Core) Term() uint64 { return c.rn.BasicStatus().HardState.GetTerm() }

// Status is raft's view of this server.
func (c *Core) Status() raft.Status { return c.rn.Status() }

// Tick advances raft's logical clock one tick. On the leader it also
// moves the configuration toward the chain's and hands leadership to an
// earlier server of the chain that is caught up.
func (c *Core) Tick() {
	c.rn.Tick()
	if !c.IsLeader() {
		return
	}
	c.reconfigure()
	c.handBack()
}

// Step hands raft a message from another server. Messages from hosts
// outside the configuration are raft's to ignore; local message types are
// refused.
func (c *Core) Step(m *raftpb.Message) error {
	if raft.IsLocalMsg(m.GetType()) {
		return fmt.Errorf("chain: refusing local message type %s from the network", m.GetType())
	}
	if m.GetTo() != c.self {
		return fmt.Errorf("chain: message for %x, not this server", m.GetTo())
	}
	return c.rn.Step(m)
}

// ReportUnreachable tells raft a message to id could not be sent.
func (c *Core) ReportUnreachable(id uint64) { c.rn.ReportUnreachable(id) }

// ReportSnapshot tells raft whether a snapshot sent to id arrived.
func (c *Core) ReportSnapshot(id uint64, ok bool) {
	st := raft.SnapshotFinish
	if !ok {
		st = raft.SnapshotFailure
	}
	c.rn.ReportSnapshot(id, st)
}

// Propose checks su against the applied state, certifies it for the log
// position it is about to take, and proposes it. It returns the
// certification; the update is acknowledged only once Advance reports it
// applied. Only the leader proposes (ErrNotLeader), and only once it is
// Serving (ErrDropped before: propose again).
func (c *Core) Propose(su collections.SignedUpdate) (collections.Certified, error) {
	st := c.rn.BasicStatus()
	if st.RaftState != raft.StateLeader {
		return collections.Certified{}, ErrNotLeader
	}
	if st.LeadTransferee != raft.None || !c.Serving() {
		return collections.Certified{}, ErrDropped
	}
	p, err := c.state.VerifyProposal(su, c.key.ID())
	if err != nil {
		return collections.Certified{}, err
	}
	term, index := st.HardState.GetTerm(), c.last+1
	cert, _, err := p.Certify(c.key, term, index)
	if err != nil {
		return collections.Certified{}, err
	}
	if err := c.rn.Propose(cert.Marshal()); err != nil {
		if errors.Is(err, raft.ErrProposalDropped) {
			return collections.Certified{}, ErrDropped
		}
		return collections.Certified{}, fmt.Errorf("proposing: %w", err)
	}
	c.last = index
	if old, ok := c.mine[index]; ok {
		// The log no longer holds the earlier proposal at this position.
		c.lost = append(c.lost, old.Hash())
	}
	c.mine[index] = su
	return cert, nil
}

// Serving reports whether this server leads and its applied state is
// current: it applied an entry of its own term, so every entry committed
// before its term too. Only then does a check against the state (a
// proposal's conditions, a read) see every acknowledged change. A new
// leader serves once its first entry is committed and applied.
func (c *Core) Serving() bool {
	st := c.rn.BasicStatus()
	if st.RaftState != raft.StateLeader {
		return false
	}
	t, err := c.storage.Term(c.applied)
	return err == nil && t == st.HardState.GetTerm()
}

// Pending reports whether this core proposed the update with hash h and has
// not yet seen its log position committed (applied or lost).
func (c *Core) Pending(h [32]byte) bool {
	for _, m := range c.mine {
		if m.Hash() == h {
			return true
		}
	}
	return false
}

// SetWitnesses says which other servers are witnesses (by raft ID): the
// leader never hands leadership to one of them. Witnesses announce
// themselves on the network, not in the Domain, so the caller learns them
// as it connects to them.
func (c *Core) SetWitnesses(ids []uint64) {
	clear(c.witnesses)
	for _, id := range ids {
		if id != c.self {
			c.witnesses[id] = true
		}
	}
}

// Campaign starts an election now (a server made sole voter need not wait
// for its election timeout).
func (c *Core) Campaign() { _ = c.rn.Campaign() }

// TransferLeader asks raft to hand leadership to id.
func (c *Core) TransferLeader(id uint64) { c.rn.TransferLeader(id) }

// HasReady reports whether Ready has anything.
func (c *Core) HasReady() bool { return c.rn.HasReady() }

// Ready is what raft asks of the caller now: persist rd.HardState,
// rd.Entries and rd.Snapshot durably, then send rd.Messages, then call
// Advance(rd).
func (c *Core) Ready() raft.Ready {
	rd := c.rn.Ready()
	c.freshSnapshots(rd.Messages)
	return rd
}

// Applied entries, as Advance reports them.
type Applied struct {
	Index, Term uint64
	// Certified is the entry's certified update; zero for the leader's
	// empty entries and configuration changes.
	Certified collections.Certified
	// Verdict is what State.Apply did; Outcome is zero if it was refused.
	Verdict collections.Verdict
	// Err says why the entry changed nothing, if it was refused: a
	// misplaced certification, a failed condition (collections.ErrConflict),
	// a write rule.
	Err error
}

// Result is what Advance did.
type Result struct {
	// Applied are the committed entries applied, in log order.
	Applied []Applied
	// Lost are this server's proposals that another entry displaced: they
	// will never commit. They are reported with the hash of the update.
	Lost [][32]byte
	// InSnapshot are this server's proposals whose log position a
	// snapshot from the leader covered, and that the snapshot's state
	// holds: they were committed.
	InSnapshot []Held
	// Restored is set when a snapshot replaced the state: everything
	// derived from it must be recomputed.
	Restored bool
	// ConfChanged is set when the raft configuration changed.
	ConfChanged bool
}

// Held is a proposal found committed in a snapshot: its hash, and its
// certification while the state retains it (zero if superseded).
type Held struct {
	Hash      [32]byte
	Certified collections.Certified
}

// Advance is called once the caller persisted rd and sent its messages:
// it stores rd in the in-memory log, applies the committed entries to the
// state in order, and tells raft.
func (c *Core) Advance(rd raft.Ready) (Result, error) {
	var res Result
	if rd.HardState != nil && rd.HardState.GetTerm() != 0 {
		if err := c.storage.SetHardState(rd.HardState); err != nil {
			return res, fmt.Errorf("storing hard state: %w", err)
		}
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := c.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return res, fmt.Errorf("applying snapshot: %w", err)
		}
		st, err := RestoreState(c.state.Genesis(), rd.Snapshot.GetData())
		if err != nil {
			return res, err
		}
		md := rd.Snapshot.GetMetadata()
		c.state, c.applied, c.conf = st, md.GetIndex(), md.GetConfState()
		c.last = max(c.last, md.GetIndex())
		for i, su := range c.mine {
			if i > md.GetIndex() {
				continue
			}
			// The snapshot covers its position: the state says whether
			// it was committed (there or at another position).
			if cert, ok := st.Holds(su.Update()); ok {
				res.InSnapshot = append(res.InSnapshot, Held{Hash: su.Hash(), Certified: cert})
			} else {
				res.Lost = append(res.Lost, su.Hash())
			}
			delete(c.mine, i)
		}
		res.Restored, res.ConfChanged = true, true
	}
	res.Lost, c.lost = append(res.Lost, c.lost...), nil
	if len(rd.Entries) > 0 {
		if err := c.storage.Append(rd.Entries); err != nil {
			return res, fmt.Errorf("appending entries: %w", err)
		}
		c.last = rd.Entries[len(rd.Entries)-1].GetIndex()
		// Entries from a leader replace this server's own uncommitted
		// proposals at their positions.
		for _, e := range rd.Entries {
			su, ok := c.mine[e.GetIndex()]
			if !ok {
				continue
			}
			if cert, err := collections.UnmarshalCertified(e.GetData()); err == nil && cert.Hash() == su.Hash() {
				continue
			}
			res.Lost = append(res.Lost, su.Hash())
			delete(c.mine, e.GetIndex())
		}
		for i, su := range c.mine {
			if i > c.last {
				// The log was cut below it.
				res.Lost = append(res.Lost, su.Hash())
				delete(c.mine, i)
			}
		}
	}
	for _, e := range rd.CommittedEntries {
		if e.GetIndex() <= c.applied {
			continue
		}
		a, changed, err := c.apply(e)
		if err != nil {
			return res, err
		}
		c.applied = e.GetIndex()
		if su, ok := c.mine[e.GetIndex()]; ok {
			if a.Certified.IsZero() || a.Certified.Hash() != su.Hash() {
				res.Lost = append(res.Lost, su.Hash())
			}
			delete(c.mine, e.GetIndex())
		}
		res.ConfChanged = res.ConfChanged || changed
		if !a.Certified.IsZero() {
			res.Applied = append(res.Applied, a)
		}
	}
	c.rn.Advance(rd)
	return res, nil
}

// apply applies one committed entry.
func (c *Core) apply(e *raftpb.Entry) (Applied, bool, error) {
	a := Applied{Index: e.GetIndex(), Term: e.GetTerm()}
	switch e.GetType() {
	case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeI
		if e.GetType() == raftpb.EntryConfChange {
			var v1 raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &v1); err != nil {
				return a, false, fmt.Errorf("configuration change at %d: %w", e.GetIndex(), err)
			}
			cc = &v1
		} else {
			var v2 raftpb.ConfChangeV2
			if err := proto.Unmarshal(e.GetData(), &v2); err != nil {
				return a, false, fmt.Errorf("configuration change at %d: %w", e.GetIndex(), err)
			}
			cc = &v2
		}
		c.conf = c.rn.ApplyConfChange(cc)
		if c.confIndex == e.GetIndex() {
			c.confIndex = 0
		}
		return a, true, nil
	}
	if len(e.GetData()) == 0 {
		return a, false, nil // a new leader's empty entry
	}
	cert, err := collections.UnmarshalCertified(e.GetData())
	if err != nil {
		a.Err = fmt.Errorf("entry %d: %w", e.GetIndex(), err)
		return a, false, nil
	}
	a.Certified = cert
	if cert.Epoch() != e.GetTerm() || cert.MasterSeq() != e.GetIndex() {
		a.Err = fmt.Errorf("%w: entry %d of term %d is certified for %d of term %d", ErrMisplaced, e.GetIndex(), e.GetTerm(), cert.MasterSeq(), cert.Epoch())
		return a, false, nil
	}
	v, err := c.state.Verify(cert, collections.VerifyOptions{Log: true})
	if err != nil {
		a.Err = err
		return a, false, nil
	}
	a.Verdict = c.state.Apply(v)
	return a, false, nil
}

// reconfigure proposes the next single step from the applied raft
// configuration toward the chain's Membership, if none is in flight.
func (c *Core) reconfigure() {
	if c.confIndex != 0 && c.confIndex > c.applied {
		return
	}
	chain := c.state.Chain().IDs()
	if len(chain) == 0 {
		return
	}
	var st *raft.Status
	caughtUp := func(id uint64) bool {
		if st == nil {
			s := c.rn.Status()
			st = &s
		}
		pr, ok := st.Progress[id]
		return ok && pr.RecentActive && pr.Match >= st.HardState.GetCommit()
	}
	cc, ok := nextStep(c.conf, Membership(chain), c.self, caughtUp)
	if !ok {
		return
	}
	if err := c.rn.ProposeConfChange(cc); err != nil {
		return
	}
	c.last++
	c.confIndex = c.last
}

// nextStep is one configuration change from have toward want: voters
// first, then demotions and removals, then learners. A server becomes a
// voter only as a learner that caughtUp says holds the log: a new voter
// that is down or far behind would otherwise count toward the majority
// from the start. It never removes or demotes self (the leader hands
// leadership over first).
func nextStep(have, want *raftpb.ConfState, self uint64, caughtUp func(uint64) bool) (*raftpb.ConfChangeV2, bool) {
	one := func(t raftpb.ConfChangeType, id uint64) (*raftpb.ConfChangeV2, bool) {
		return &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: t.Enum(), NodeId: new(id)}}}, true
	}
	hv, wv, wl := have.GetVoters(), want.GetVoters(), want.GetLearners()
	for _, id := range wv {
		switch {
		case slices.Contains(hv, id):
		case !slices.Contains(have.GetLearners(), id):
			return one(raftpb.ConfChangeAddLearnerNode, id)
		case caughtUp(id):
			return one(raftpb.ConfChangeAddNode, id)
		}
	}
	for _, id := range hv {
		if slices.Contains(wv, id) || id == self {
			continue
		}
		if slices.Contains(wl, id) {
			return one(raftpb.ConfChangeAddLearnerNode, id)
		}
		return one(raftpb.ConfChangeRemoveNode, id)
	}
	for _, id := range wl {
		if !slices.Contains(have.GetLearners(), id) {
			return one(raftpb.ConfChangeAddLearnerNode, id)
		}
	}
	for _, id := range have.GetLearners() {
		if !slices.Contains(wl, id) && !slices.Contains(wv, id) && id != self {
			return one(raftpb.ConfChangeRemoveNode, id)
		}
	}
	return nil, false
}

// handBack transfers leadership to the earliest voter of the chain before
// this server that is active and holds every committed entry; on a
// witness, to the earliest such voter of the whole chain. Known witnesses
// are passed over.
func (c *Core) handBack() {
	st := c.rn.Status()
	if st.LeadTransferee != raft.None {
		return
	}
	commit := st.HardState.GetCommit()
	for _, id := range c.state.Chain().IDs() {
		rid := RaftID(id)
		if rid == c.self {
			if c.witness {
				continue
			}
			return
		}
		if c.witnesses[rid] {
			continue
		}
		pr, ok := st.Progress[rid]
		if !ok || pr.IsLearner || !pr.RecentActive || pr.Match < commit {
			continue
		}
		c.rn.TransferLeader(rid)
		return
	}
}

// discard is a raft.Logger that drops everything but panics.
type discard struct{}

func (discard) Debug(...any)                   {}
func (discard) Debugf(string, ...any)          {}
func (discard) Error(...any)                   {}
func (discard) Errorf(string, ...any)          {}
func (discard) Info(...any)                    {}
func (discard) Infof(string, ...any)           {}
func (discard) Warning(...any)                 {}
func (discard) Warningf(string, ...any)        {}
func (discard) Fatal(v ...any)                 { panic(fmt.Sprint(v...)) }
func (discard) Fatalf(f string, v ...any)      { panic(fmt.Sprintf(f, v...)) }
func (discard) Panic(v ...any)                 { panic(fmt.Sprint(v...)) }
func (discard) Panicf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
