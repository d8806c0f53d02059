package chain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/baton-sync/baton/collections"
)

// Errors of forced promotion.
var (
	// ErrEvicted: a raft message came from a newer generation of the
	// chain (a server was promoted by force since this server's log
	// began). This server's log is not part of that chain's history: its
	// caller reports what the log held, empties it and starts again from
	// the promoted server's snapshot.
	ErrEvicted = errors.New("the chain was promoted by force since this server's log began")
	// ErrStaleGeneration: a raft message came from an older generation:
	// it is ignored (its sender learns of the new one from this chain's
	// messages).
	ErrStaleGeneration = errors.New("raft message from an older generation of the chain")
)

// A Generation names the history a raft log belongs to. A new domain's
// logs are of the zero generation. A forced promotion (ForcePromote)
// starts a new one: the promoted server's log, made sole voter, is its
// history, and a server whose log is of an older generation must not mix
// its log with it. Generations order by N, then Term, then By, so that two
// promotions made on both sides of a partition still order.
type Generation struct {
	// N counts forced promotions.
	N uint64
	// Term is the raft term the promoted server's log starts from.
	Term uint64
	// By is the raft ID of the promoted server.
	By uint64
}

// generationSize is the length of Generation.Marshal.
const generationSize = 24

// Compare orders g and o: -1, 0 or +1.
func (g Generation) Compare(o Generation) int {
	for _, p := range [][2]uint64{{g.N, o.N}, {g.Term, o.Term}, {g.By, o.By}} {
		switch {
		case p[0] < p[1]:
			return -1
		case p[0] > p[1]:
			return 1
		}
	}
	return 0
}

// IsZero reports whether g is a new domain's generation.
func (g Generation) IsZero() bool { return g == Generation{} }

// Marshal encodes g in 24 bytes.
func (g Generation) Marshal() []byte {
	b := make([]byte, 0, generationSize)
	b = binary.BigEndian.AppendUint64(b, g.N)
	b = binary.BigEndian.AppendUint64(b, g.Term)
	return binary.BigEndian.AppendUint64(b, g.By)
}

// UnmarshalGeneration decodes Marshal's encoding; empty input is the zero
// generation.
func UnmarshalGeneration(b []byte) (Generation, error) {
	switch len(b) {
	case 0:
		return Generation{}, nil
	case generationSize:
		return Generation{
			N:    binary.BigEndian.Uint64(b[0:8]),
			Term: binary.BigEndian.Uint64(b[8:16]),
			By:   binary.BigEndian.Uint64(b[16:24]),
		}, nil
	}
	return Generation{}, fmt.Errorf("chain generation: %d bytes, want %d", len(b), generationSize)
}

// Generation is the generation of this core's log.
func (c *Core) Generation() Generation { return c.gen }

// StepFrom hands raft a message that a server of generation g sent. A
// message of an older generation is refused (ErrStaleGeneration); one of
// a newer generation returns an error wrapping ErrEvicted, and the caller
// must replace this core's log (LogUpdates says what it held) with an
// empty one of generation g.
func (c *Core) StepFrom(g Generation, m *raftpb.Message) error {
	switch g.Compare(c.gen) {
	case -1:
		return ErrStaleGeneration
	case 1:
		return fmt.Errorf("%w (generation %d, promoted server %x at term %d)", ErrEvicted, g.N, g.By, g.Term)
	}
	return c.Step(m)
}

// A Promotion is the log a forced promotion leaves: a snapshot of every
// entry the promoted server's log held, committed or not, with the
// promoted server as sole voter, and the hard state to go with it. The
// caller stores both, with the generation, in place of the old log, and
// builds a new Core from them.
type Promotion struct {
	Generation Generation
	Snapshot   *raftpb.Snapshot
	HardState  *raftpb.HardState
	// Commit was the commit index before the promotion; Snapshot's index
	// is the log's last: the entries between were not known committed,
	// and are now.
	Commit uint64
}

// ForcePromote makes this server the sole voter of a new generation of the
// chain, an operator's decision when no majority of voters is left: every
// entry its log holds is applied (as a new leader would commit them), and
// the state becomes a snapshot whose configuration has this server alone
// as voter. The chain's other servers come back as learners of the new
// generation and are made voters again once caught up; what their own
// logs held and this one lacks they report (LogUpdates, Kept).
//
// The core must not be used afterwards, whatever the outcome: the caller
// builds a new one from the stored promotion, or from its old log if
// storing failed.
func (c *Core) ForcePromote() (Promotion, error) {
	if c.witness {
		return Promotion{}, errors.New("a witness keeps no folders and never stays master: promote a server of the chain instead")
	}
	if len(c.mine) > 0 {
		// The log holds this server's own proposals: they are applied
		// below like every other entry.
		clear(c.mine)
	}
	last, err := c.storage.LastIndex()
	if err != nil {
		return Promotion{}, err
	}
	if last > c.applied {
		ents, err := c.storage.Entries(c.applied+1, last+1, math.MaxUint64)
		if err != nil {
			return Promotion{}, fmt.Errorf("reading the log to promote: %w", err)
		}
		for _, e := range ents {
			if _, _, err := c.apply(e); err != nil {
				return Promotion{}, err
			}
			c.applied = e.GetIndex()
		}
	}
	lastTerm, err := c.storage.Term(last)
	if err != nil {
		return Promotion{}, fmt.Errorf("reading the log to promote: %w", err)
	}
	data, err := EncodeState(c.state)
	if err != nil {
		return Promotion{}, err
	}
	hs, _, err := c.storage.InitialState()
	if err != nil {
		return Promotion{}, err
	}
	term := max(hs.GetTerm(), lastTerm)
	return Promotion{
		Generation: Generation{N: c.gen.N + 1, Term: term, By: c.self},
		Snapshot: &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{
			Index: new(last), Term: new(lastTerm), ConfState: &raftpb.ConfState{Voters: []uint64{c.self}},
		}},
		HardState: &raftpb.HardState{Term: new(term), Commit: new(last)},
		Commit:    hs.GetCommit(),
	}, nil
}

// A LogUpdate is a certified update in the log.
type LogUpdate struct {
	Index, Term uint64
	Certified   collections.Certified
	// Committed: this server knew the entry committed.
	Committed bool
}

// LogUpdates are the certified updates in the log after its snapshot, in
// order: what a server evicted by a newer generation held and may have
// acknowledged.
func (c *Core) LogUpdates() ([]LogUpdate, error) {
	first, err := c.storage.FirstIndex()
	if err != nil {
		return nil, err
	}
	last, err := c.storage.LastIndex()
	if err != nil || last < first {
		return nil, err
	}
	ents, err := c.storage.Entries(first, last+1, math.MaxUint64)
	if err != nil {
		return nil, fmt.Errorf("reading the log: %w", err)
	}
	commit := c.rn.BasicStatus().HardState.GetCommit()
	var out []LogUpdate
	for _, e := range ents {
		if e.GetType() != raftpb.EntryNormal || len(e.GetData()) == 0 {
			continue
		}
		cert, err := collections.UnmarshalCertified(e.GetData())
		if err != nil {
			continue
		}
		out = append(out, LogUpdate{Index: e.GetIndex(), Term: e.GetTerm(), Certified: cert, Committed: e.GetIndex() <= commit})
	}
	return out, nil
}

// Kept reports whether st holds the update that c certifies: st applied
// it, and the record it keeps for that update, if any, is c's. An update
// st applied and later superseded counts as kept.
func Kept(st *collections.State, c collections.Certified) bool {
	held, ok := st.Holds(c.Update())
	if !ok {
		return false
	}
	return held.IsZero() || held.Hash() == c.Hash()
}

// freshSnapshots replaces the snapshot of each MsgSnap in msgs with one of
// the applied state and configuration. The stored snapshot may predate
// the recipient's membership (a server added after the last compaction,
// or after a forced promotion), and raft refuses a snapshot whose
// configuration lacks it.
func (c *Core) freshSnapshots(msgs []*raftpb.Message) {
	var snap *raftpb.Snapshot
	for _, m := range msgs {
		if m.GetType() != raftpb.MsgSnap {
			continue
		}
		if snap == nil {
			term, err := c.storage.Term(c.applied)
			if err != nil {
				return // raft's own snapshot goes
			}
			data, err := EncodeState(c.state)
			if err != nil {
				return
			}
			snap = &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{
				Index: new(c.applied), Term: new(term), ConfState: c.conf,
			}}
		}
		m.Snapshot = snap
	}
}
