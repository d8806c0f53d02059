package collections

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/zeebo/blake3"

	"github.com/baton-sync/baton/identity"
)

// Outcome is what Apply did with an update.
type Outcome uint8

// Apply outcomes.
const (
	// Accepted: the update is now the record at its key.
	Accepted Outcome = iota + 1
	// Duplicate: the exact update was already applied; nothing changed.
	Duplicate
	// Stale: the update is valid but older than the record at its key, or
	// its sequence number was already seen; the record did not change.
	Stale
	// Rejected: the update conflicts with what its author signed before
	// (equivocation), or was not verified; nothing changed.
	Rejected
)

func (o Outcome) String() string {
	switch o {
	case Accepted:
		return "accepted"
	case Duplicate:
		return "duplicate"
	case Stale:
		return "stale"
	case Rejected:
		return "rejected"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Verdict is the result of Apply.
type Verdict struct {
	Outcome Outcome
	// Err is the reason for any outcome but Accepted: ErrDuplicate,
	// ErrSuperseded, ErrEquivocation or ErrNotVerified, wrapped.
	Err error
	// Store says the certified update is now retained by the State (it is
	// in Snapshot and Missing): the caller appends it to the data file.
	Store bool
}

// entry is one retained update.
type entry struct {
	u       Update
	hash    [32]byte
	c       Certified // zero for records seeded from the genesis
	genesis bool
	// val is u's record, decoded once when the entry is made (nil for a
	// delete). Entries are shared by clones and never change after.
	val Value
}

// wins reports whether a beats b: the later position in the chain's
// consensus log (the certification's index, then its term), then the
// greater author bytes, then the greater update hash. Records from the
// genesis are at position zero. Servers apply the log in order, so the
// last committed write of a key wins there, and any host that merges the
// same certified updates in another order keeps the same one.
func wins(a, b *entry) bool {
	if fa, fb := a.final(), b.final(); fa != fb {
		return fa
	}
	if c := cmp.Compare(a.c.MasterSeq(), b.c.MasterSeq()); c != 0 {
		return c > 0
	}
	if c := cmp.Compare(a.c.Epoch(), b.c.Epoch()); c != 0 {
		return c > 0
	}
	if c := cmp.Compare(a.u.Author, b.u.Author); c != 0 {
		return c > 0
	}
	return bytes.Compare(a.hash[:], b.hash[:]) > 0
}

// final reports whether e's record is final: a revoked device. A final
// record beats every record of its key that is not final, wherever the two
// stand in the log, so that no later write (a renewal, a login) undoes it,
// in whatever order a host merges them; the write rules refuse every write
// over it (ErrFinal).
func (e *entry) final() bool {
	switch v := e.val.(type) {
	case Device:
		return v.Revoked
	}
	return false
}

type updateID struct {
	author string
	seq    uint64
}

// collection is one collection's replicated state.
type collection struct {
	records map[string]*entry   // the winning update per key, tombstones included
	heads   map[string]*entry   // per author, the update with the highest sequence number
	seen    map[string]Ranges   // per author, every sequence number applied
	byID    map[updateID]*entry // every retained update
}

func newCollection() *collection {
	return &collection{
		records: make(map[string]*entry),
		heads:   make(map[string]*entry),
		seen:    make(map[string]Ranges),
		byID:    make(map[updateID]*entry),
	}
}

func (c *collection) clone() *collection {
	n := &collection{
		records: maps.Clone(c.records),
		heads:   maps.Clone(c.heads),
		seen:    make(map[string]Ranges, len(c.seen)),
		byID:    maps.Clone(c.byID),
	}
	for a, r := range c.seen {
		n.seen[a] = slices.Clone(r)
	}
	return n
}

// retained reports whether e must be kept: it wins its key, is its
// author's head, or is a chain update (kept so that replaying a snapshot in
// clock order meets every server before its certifications).
func (c *collection) retained(e *entry) bool {
	return c.records[e.u.Key] == e || c.heads[e.u.Author] == e || e.u.Key == ChainKey && e.u.Collection == Domain
}

func (c *collection) release(e *entry) {
	if e != nil && !e.genesis && !c.retained(e) {
		delete(c.byID, updateID{e.u.Author, e.u.Seq})
	}
}

// State is a replica's copy of the three collections, seeded from a genesis.
// It is not safe for concurrent use: one goroutine owns it.
//
// Only Verify and VerifyProposal make the Verified values Apply accepts, and
// they read the current State: the Domain decides who may write what.
type State struct {
	genesis  Genesis
	cols     [Report + 1]*collection
	maxClock uint64
	maxEpoch uint64

	// hosts remembers verified host records by update hash (a cache: not
	// part of the state, not shared by clones).
	hosts *hostCache
}

// hostCache is safe for concurrent use, so a State that is only read may be
// shared by goroutines even though lookups fill the cache.
type hostCache struct {
	mu sync.Mutex
	m  map[[32]byte]identity.HostRecord
}

func (c *hostCache) get(h [32]byte) (identity.HostRecord, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[h]
	return r, ok
}

func (c *hostCache) put(h [32]byte, r identity.HostRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 1<<16 {
		c.m = map[[32]byte]identity.HostRecord{}
	}
	c.m[h] = r
}

// NewState seeds a State from an opened genesis: the domain record, the
// chain and the host records, at clock 0, so every replica of the domain
// starts from the same digests.
func NewState(g Genesis) (*State, error) {
	if g.raw == nil {
		return nil, fmt.Errorf("%w: genesis was not opened with OpenGenesis", ErrNotVerified)
	}
	hosts, err := g.validate()
	if err != nil {
		return nil, err
	}
	s := &State{genesis: g, hosts: &hostCache{}}
	for _, k := range Kinds {
		s.cols[k] = newCollection()
	}
	seed := func(v Value) error {
		b, err := EncodeValue(v)
		if err != nil {
			return err
		}
		u := Update{Collection: v.Collection(), Key: v.Key(), Value: b, Author: g.Chain.Servers[0], Issued: g.Created}
		payload, err := u.Marshal()
		if err != nil {
			return err
		}
		h := blake3.New()
		h.WriteString("baton/genesis-record/v1\x00")
		h.Write(g.hash[:])
		h.Write(payload)
		val, err := u.Decode()
		if err != nil {
			return err
		}
		e := &entry{u: u, genesis: true, val: val}
		h.Sum(e.hash[:0])
		s.cols[Domain].records[u.Key] = e
		return nil
	}
	if err := seed(g.Domain); err != nil {
		return nil, fmt.Errorf("seeding domain record: %w", err)
	}
	if err := seed(g.Chain); err != nil {
		return nil, fmt.Errorf("seeding chain: %w", err)
	}
	for _, b := range g.Hosts {
		if err := seed(Host{Record: b}); err != nil {
			return nil, fmt.Errorf("seeding host: %w", err)
		}
	}
	_ = hosts
	return s, nil
}

// Genesis is the genesis the state was seeded from.
func (s *State) Genesis() Genesis { return s.genesis }

// Clone returns an independent copy of s.
func (s *State) Clone() *State {
	n := *s
	n.hosts = &hostCache{}
	for _, k := range Kinds {
		n.cols[k] = s.cols[k].clone()
	}
	return &n
}

// Apply merges a verified update into the state. It never fails: the
// Verdict says what happened. Applying the same set of verified updates in
// any order gives the same records and digests.
func (s *State) Apply(v Verified) Verdict {
	if v.c.IsZero() {
		return Verdict{Outcome: Rejected, Err: fmt.Errorf("%w: zero Verified", ErrNotVerified)}
	}
	u, hash := v.c.Update(), v.c.Hash()
	col := s.cols[u.Collection]
	id := updateID{u.Author, u.Seq}
	if col.seen[u.Author].Contains(u.Seq) {
		if old := col.byID[id]; old != nil {
			if old.hash != hash {
				return Verdict{Outcome: Rejected, Err: fmt.Errorf("%w: %s signed two different %s updates with sequence number %d", ErrEquivocation, u.Author, u.Collection, u.Seq)}
			}
			s.observe(v)
			return Verdict{Outcome: Duplicate, Err: fmt.Errorf("%w: %s update %d by %s", ErrDuplicate, u.Collection, u.Seq, u.Author)}
		}
		return Verdict{Outcome: Stale, Err: fmt.Errorf("%w: %s update %d by %s was already seen and superseded", ErrSuperseded, u.Collection, u.Seq, u.Author)}
	}
	col.seen[u.Author] = col.seen[u.Author].Add(u.Seq)
	s.observe(v)

	e := &entry{u: u, hash: hash, c: v.c}
	if !u.Delete {
		// Verify decoded it already: it cannot fail here.
		if val, err := u.Decode(); err == nil {
			e.val = val
		}
	}
	verdict := Verdict{Outcome: Stale, Err: fmt.Errorf("%w: %s/%s holds a newer update", ErrSuperseded, u.Collection, u.Key)}
	if old := col.heads[u.Author]; old == nil || u.Seq > old.u.Seq {
		col.heads[u.Author] = e
		col.release(old)
	}
	if old := col.records[u.Key]; old == nil || wins(e, old) {
		col.records[u.Key] = e
		col.release(old)
		verdict = Verdict{Outcome: Accepted}
	}
	if col.retained(e) {
		col.byID[id] = e
		verdict.Store = true
	}
	return verdict
}

func (s *State) observe(v Verified) {
	s.maxClock = max(s.maxClock, v.c.Update().Clock)
	s.maxEpoch = max(s.maxEpoch, v.c.Epoch())
}

// MarkSeen records every sequence number sum holds as seen, so that
// replaying one changes nothing (Stale): for a state rebuilt from a
// snapshot, which holds only the updates it retains, of a state that had
// seen more.
func (s *State) MarkSeen(sum Summary) {
	for k, authors := range sum {
		if !k.Valid() {
			continue
		}
		col := s.cols[k]
		for a, r := range authors {
			col.seen[a] = col.seen[a].Union(r)
		}
	}
}

// Holds reports whether the state applied u (its author's sequence number
// in its collection was seen) and returns its certification while the
// state retains it (zero once superseded everywhere).
func (s *State) Holds(u Update) (Certified, bool) {
	if !u.Collection.Valid() {
		return Certified{}, false
	}
	col := s.cols[u.Collection]
	if !col.seen[u.Author].Contains(u.Seq) {
		return Certified{}, false
	}
	if e := col.byID[updateID{u.Author, u.Seq}]; e != nil {
		return e.c, true
	}
	return Certified{}, true
}

// NextClock is the Lamport clock for this replica's next update: one more
// than any clock applied.
func (s *State) NextClock() uint64 { return s.maxClock + 1 }

// MaxEpoch is the highest certification epoch applied.
func (s *State) MaxEpoch() uint64 { return s.maxEpoch }

// NextSeq is the next sequence number for author in collection k: one more
// than the highest applied. An author with updates still waiting for
// certification (an outbox) must also count those.
func (s *State) NextSeq(author lpeer.ID, k Kind) uint64 {
	if !k.Valid() {
		return 0
	}
	return s.cols[k].seen[author.String()].Max() + 1
}

// Prepare fills in u's author, sequence number, clock and issue time for
// author's next update.
func (s *State) Prepare(author lpeer.ID, u Update, now time.Time) Update {
	u.Author = author.String()
	u.Seq = s.NextSeq(author, u.Collection)
	u.Clock = s.NextClock()
	u.Issued = now.UnixNano()
	return u
}

// Record is the state of one key: its winning update, possibly a tombstone.
type Record struct {
	Collection Kind
	Key        string
	Deleted    bool
	Value      []byte // canonical record; nil if deleted
	Author     string
	Seq        uint64 // 0 for records from the genesis
	Clock      uint64 // 0 for records from the genesis
	Hash       [32]byte
}

// Decode returns the record's value (nil for a tombstone).
func (r Record) Decode() (Value, error) {
	if r.Deleted {
		return nil, nil
	}
	return DecodeValue(r.Collection, r.Key, r.Value)
}

func (e *entry) record() Record {
	return Record{
		Collection: e.u.Collection, Key: e.u.Key, Deleted: e.u.Delete, Value: e.u.Value,
		Author: e.u.Author, Seq: e.u.Seq, Clock: e.u.Clock, Hash: e.hash,
	}
}

// Records is every key of collection k, tombstones included, sorted by key.
func (s *State) Records(k Kind) []Record {
	if !k.Valid() {
		return nil
	}
	col := s.cols[k]
	out := make([]Record, 0, len(col.records))
	for _, key := range slices.Sorted(maps.Keys(col.records)) {
		out = append(out, col.records[key].record())
	}
	return out
}

// Lookup returns the record at key of collection k. ok is false if there is
// none or it was deleted.
func (s *State) Lookup(k Kind, key string) (r Record, ok bool) {
	if !k.Valid() {
		return Record{}, false
	}
	e := s.cols[k].records[key]
	if e == nil || e.u.Delete {
		return Record{}, false
	}
	return e.record(), true
}

// Count is the number of live (not deleted) records in collection k.
func (s *State) Count(k Kind) int {
	if !k.Valid() {
		return 0
	}
	n := 0
	for _, e := range s.cols[k].records {
		if !e.u.Delete {
			n++
		}
	}
	return n
}

const digestLabel = "baton/collection-digest/v1\x00"

// Digest identifies collection k's contents: BLAKE3 over the genesis hash,
// the collection, and every key with its winning update's hash and
// tombstone flag, in key order. Two replicas of a domain with the same
// records have the same digest.
func (s *State) Digest(k Kind) [32]byte {
	h := blake3.New()
	h.WriteString(digestLabel)
	gh := s.genesis.hash
	h.Write(gh[:])
	h.Write([]byte{byte(k)})
	if k.Valid() {
		col := s.cols[k]
		var buf []byte
		for _, key := range slices.Sorted(maps.Keys(col.records)) {
			e := col.records[key]
			buf = binary.AppendUvarint(buf[:0], uint64(len(key)))
			buf = append(buf, key...)
			buf = append(buf, e.hash[:]...)
			if e.u.Delete {
				buf = append(buf, 1)
			} else {
				buf = append(buf, 0)
			}
			h.Write(buf)
		}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// Summary is what this replica has seen, for anti-entropy.
func (s *State) Summary() Summary {
	sum := make(Summary)
	for _, k := range Kinds {
		for a, r := range s.cols[k].seen {
			if len(r) == 0 {
				continue
			}
			if sum[k] == nil {
				sum[k] = make(map[string]Ranges)
			}
			sum[k][a] = slices.Clone(r)
		}
	}
	return sum
}

// retainedSorted is every retained certified update of k in replay order:
// by log position, then author, then sequence number. Replaying in this
// order applies every chain update before the certifications it enables.
func (s *State) retainedSorted(k Kind, keep func(*entry) bool) []*entry {
	col := s.cols[k]
	out := make([]*entry, 0, len(col.byID))
	for _, e := range col.byID {
		if keep == nil || keep(e) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *entry) int {
		return cmp.Or(cmp.Compare(a.c.MasterSeq(), b.c.MasterSeq()), cmp.Compare(a.u.Author, b.u.Author), cmp.Compare(a.u.Seq, b.u.Seq))
	})
	return out
}

// Missing is the retained certified updates theirs does not record, by
// collection, then in replay order (log position, author, sequence number). Only
// what the State retains is sent: updates superseded everywhere are not.
func (s *State) Missing(theirs Summary) []Certified {
	var out []Certified
	for _, k := range Kinds {
		for _, e := range s.retainedSorted(k, func(e *entry) bool {
			return !theirs[k][e.u.Author].Contains(e.u.Seq)
		}) {
			out = append(out, e.c)
		}
	}
	return out
}

// Snapshot is collection k compacted: the encoded certified updates the
// State retains (winning updates and tombstones, each author's latest, the
// chain's history) in replay order, for Storage.Replace. Loading a snapshot
// gives the same records and digest.
func (s *State) Snapshot(k Kind) [][]byte {
	if !k.Valid() {
		return nil
	}
	es := s.retainedSorted(k, nil)
	out := make([][]byte, len(es))
	for i, e := range es {
		out[i] = e.c.Marshal()
	}
	return out
}
