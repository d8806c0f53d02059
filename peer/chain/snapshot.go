package chain

import (
	"fmt"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/internal/canon"
)

// maxSnapshot caps a decoded snapshot.
const maxSnapshot = 1 << 30

// snapshotData is the state machine's part of a raft snapshot: every
// certified update the State retains, per collection, in replay order.
type snapshotData struct {
	Version int      `cbor:"1,keyasint"`
	Domain  [][]byte `cbor:"2,keyasint"`
	Catalog [][]byte `cbor:"3,keyasint"`
	Report  [][]byte `cbor:"4,keyasint"`
	// Seen is every author's sequence numbers the state applied, also
	// those of updates it no longer retains: replaying one after a
	// restore must change nothing.
	Seen []byte `cbor:"5,keyasint"`
}

// EncodeState is the snapshot data of st.
func EncodeState(st *collections.State) ([]byte, error) {
	seen, err := canon.Marshal(st.Summary())
	if err != nil {
		return nil, fmt.Errorf("encoding snapshot: %w", err)
	}
	b, err := canon.Marshal(snapshotData{
		Version: 1,
		Domain:  st.Snapshot(collections.Domain),
		Catalog: st.Snapshot(collections.Catalog),
		Report:  st.Snapshot(collections.Report),
		Seen:    seen,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding snapshot: %w", err)
	}
	return b, nil
}

// RestoreState rebuilds a State from genesis g and snapshot data (empty
// data: the genesis state). Every record is verified as it is loaded.
func RestoreState(g collections.Genesis, data []byte) (*collections.State, error) {
	st, err := collections.NewState(g)
	if err != nil {
		return nil, fmt.Errorf("restoring snapshot: %w", err)
	}
	if len(data) == 0 {
		return st, nil
	}
	var sd snapshotData
	if err := canon.Unmarshal(data, &sd, maxSnapshot); err != nil {
		return nil, fmt.Errorf("restoring snapshot: %w", err)
	}
	if sd.Version != 1 {
		return nil, fmt.Errorf("restoring snapshot: version %d, want 1", sd.Version)
	}
	mem := memStorage{collections.Domain: sd.Domain, collections.Catalog: sd.Catalog, collections.Report: sd.Report}
	for _, k := range collections.Kinds {
		if _, err := st.Load(mem, k); err != nil {
			return nil, fmt.Errorf("restoring snapshot: %w", err)
		}
	}
	if len(sd.Seen) > 0 {
		seen, err := collections.UnmarshalSummary(sd.Seen)
		if err != nil {
			return nil, fmt.Errorf("restoring snapshot: %w", err)
		}
		st.MarkSeen(seen)
	}
	return st, nil
}

// memStorage serves snapshot records to State.Load.
type memStorage map[collections.Kind][][]byte

func (m memStorage) Append(collections.Kind, []byte) error {
	return fmt.Errorf("snapshot is read-only")
}
func (m memStorage) Replace(collections.Kind, [][]byte) error {
	return fmt.Errorf("snapshot is read-only")
}
func (m memStorage) Load(k collections.Kind) (collections.Loaded, error) {
	l := collections.Loaded{File: "snapshot/" + k.String(), TornAt: -1}
	for i, b := range m[k] {
		l.Entries = append(l.Entries, collections.Entry{Offset: int64(i), Data: b})
	}
	return l, nil
}

// Compact makes a snapshot of the applied state and drops the log up to
// keep entries before it, so a server that was away long catches up by
// snapshot. It returns the snapshot for the caller to store durably
// (before anything else is written). It does nothing (nil) if fewer than
// every entries were applied since the last snapshot.
// The driver asks after every Ready and tick: with nothing to do it
// returns at once, without copying the stored snapshot (which holds the
// whole state).
func (c *Core) Compact(every, keep uint64) (*raftpb.Snapshot, error) {
	if c.applied < c.snapIndex+every {
		return nil, nil
	}
	old, err := c.storage.Snapshot()
	if err != nil {
		return nil, err
	}
	if c.snapIndex = old.GetMetadata().GetIndex(); c.applied < c.snapIndex+every {
		return nil, nil
	}
	data, err := EncodeState(c.state)
	if err != nil {
		return nil, err
	}
	snap, err := c.storage.CreateSnapshot(c.applied, c.conf, data)
	if err != nil {
		return nil, fmt.Errorf("creating snapshot: %w", err)
	}
	c.snapIndex = c.applied
	if c.applied > keep {
		if err := c.storage.Compact(c.applied - keep); err != nil {
			return nil, fmt.Errorf("compacting log: %w", err)
		}
	}
	return snap, nil
}
