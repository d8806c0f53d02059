package collections

import (
	"fmt"
)

// LoadResult says what State.Load read.
type LoadResult struct {
	File      string
	Records   int // entries read
	Accepted  int
	Duplicate int
	Stale     int
	// TornAt is the offset of an incomplete final record (Loaded.TornAt),
	// or -1. The caller rewrites the file (Storage.Replace with Snapshot)
	// before appending again.
	TornAt int64
}

// Load reads collection k's data file from st and applies every record.
// Each record is decoded and verified (Verify with MinEpoch 0 and History:
// the records are historical) against the state as loading proceeds, so
// the file is replayed in its own order. If any record does not decode, verify or
// apply, Load returns a *DataFileError naming the file and the record's
// offset, and s is left unchanged: nothing from the file is applied.
//
// Load the Domain first: the Catalog and Report rules read it.
func (s *State) Load(st Storage, k Kind) (LoadResult, error) {
	if !k.Valid() {
		return LoadResult{}, fmt.Errorf("%w: loading unknown collection %d", ErrMalformed, k)
	}
	l, err := st.Load(k)
	if err != nil {
		return LoadResult{}, fmt.Errorf("loading %s data file: %w", k, err)
	}
	res := LoadResult{File: l.File, TornAt: l.TornAt}
	tmp := s.Clone()
	for _, e := range l.Entries {
		fail := func(err error) (LoadResult, error) {
			return LoadResult{File: l.File, TornAt: l.TornAt}, &DataFileError{File: l.File, Offset: e.Offset, Err: err}
		}
		c, err := UnmarshalCertified(e.Data)
		if err != nil {
			return fail(err)
		}
		if got := c.Update().Collection; got != k {
			return fail(fmt.Errorf("%w: %s update in the %s data file", ErrMalformed, got, k))
		}
		v, err := tmp.Verify(c, VerifyOptions{History: true})
		if err != nil {
			return fail(err)
		}
		res.Records++
		switch verdict := tmp.Apply(v); verdict.Outcome {
		case Accepted:
			res.Accepted++
		case Duplicate:
			res.Duplicate++
		case Stale:
			res.Stale++
		default:
			return fail(verdict.Err)
		}
	}
	*s = *tmp
	return res, nil
}

// Persistence decides when a data file should be compacted. It is pure:
// the caller reports appends and compactions, and asks.
type Persistence struct {
	// MinAppends is the least number of appends before compaction is
	// worth it (default 1024).
	MinAppends int
	// Ratio: compact once the appends since the last compaction exceed
	// Ratio times the records the snapshot would hold (default 1).
	Ratio int

	appends [Report + 1]int
}

// Appended records one append to collection k's data file.
func (p *Persistence) Appended(k Kind) {
	if k.Valid() {
		p.appends[k]++
	}
}

// Compacted records that k's data file was replaced by a snapshot.
func (p *Persistence) Compacted(k Kind) {
	if k.Valid() {
		p.appends[k] = 0
	}
}

// ShouldCompact reports whether k's data file should be replaced by
// State.Snapshot(k), given how many records the snapshot holds.
func (p *Persistence) ShouldCompact(k Kind, snapshotRecords int) bool {
	if !k.Valid() {
		return false
	}
	minAppends, ratio := p.MinAppends, p.Ratio
	if minAppends <= 0 {
		minAppends = 1024
	}
	if ratio <= 0 {
		ratio = 1
	}
	n := p.appends[k]
	return n >= minAppends && n > ratio*snapshotRecords
}

// Retained is how many certified updates Snapshot(k) would hold.
func (s *State) Retained(k Kind) int {
	if !k.Valid() {
		return 0
	}
	return len(s.cols[k].byID)
}
