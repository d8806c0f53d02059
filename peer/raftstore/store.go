package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// ErrClosed is returned by every method of a Store after Close.
var ErrClosed = errors.New("raft log is closed")

// formatVersion is the layout this package writes and reads.
const formatVersion = 1

// openTimeout bounds the wait for bbolt's file lock at Open.
const openTimeout = time.Second

var (
	bucketMeta    = []byte("meta")
	bucketEntries = []byte("entries")
	keyVersion    = []byte("version")
	keyHardState  = []byte("hardstate")
	keySnapshot   = []byte("snapshot")
	keyGeneration = []byte("generation")
)

// entriesFillPercent packs the entries bucket's pages: entries are appended
// in key order, so half-empty split pages would stay half empty.
const entriesFillPercent = 0.9

// Store is a chain server's durable raft log. It is safe for concurrent
// use, though the driver normally calls it from its Ready loop alone.
type Store struct {
	path string

	mu sync.RWMutex // held for reading by every operation, for writing by Close
	db *bbolt.DB    // nil once closed
}

// Open opens or creates the log file at path (0600), creating parent dirs.
// It fails after a second if another process has the file open, and refuses
// a file of another format version.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("opening raft log %s: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: openTimeout, NoSync: false})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("opening raft log %s: log file is in use by another process (still locked after %v): %w", path, openTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening raft log %s: %w", path, err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return initFile(tx, path) }); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{path: path, db: db}, nil
}

// initFile creates the buckets and the version of a new file, or checks
// those of an existing one.
func initFile(tx *bbolt.Tx, path string) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		foreign := tx.ForEach(func([]byte, *bbolt.Bucket) error { return errForeign })
		if foreign != nil {
			return fmt.Errorf("raft log %s: the file holds other data and no raft log format version; give the server a path of its own for its raft log", path)
		}
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return fmt.Errorf("creating raft log %s: %w", path, err)
		}
		if err := meta.Put(keyVersion, indexKey(formatVersion)); err != nil {
			return fmt.Errorf("creating raft log %s: %w", path, err)
		}
		if _, err := tx.CreateBucket(bucketEntries); err != nil {
			return fmt.Errorf("creating raft log %s: %w", path, err)
		}
		return nil
	}
	v := meta.Get(keyVersion)
	switch {
	case v == nil:
		return fmt.Errorf("raft log %s: the file has no format version; it is damaged or not a raft log: %s", path, damagedAdvice)
	case len(v) != 8:
		return fmt.Errorf("raft log %s: the format version is %d bytes long, want 8; the file is damaged: %s", path, len(v), damagedAdvice)
	}
	switch ver := binary.BigEndian.Uint64(v); {
	case ver > formatVersion:
		return fmt.Errorf("raft log %s: format version %d is newer than this baton reads (version %d); run the baton release that wrote it, or a later one", path, ver, formatVersion)
	case ver != formatVersion:
		return fmt.Errorf("raft log %s: format version %d was never written by baton (this baton reads version %d); the file is damaged: %s", path, ver, formatVersion, damagedAdvice)
	}
	if tx.Bucket(bucketEntries) == nil {
		return fmt.Errorf("raft log %s: the file has no entries bucket; it is damaged: %s", path, damagedAdvice)
	}
	return nil
}

// damagedAdvice is what to do about a damaged log. A backup is no cure: an
// older copy of a raft log forgets votes and acknowledged entries, which
// raft's safety rests on.
const damagedAdvice = "remove this server from the chain, move the file aside and add the server back with an empty log"

// errForeign stops the scan of a file's root buckets at the first one.
var errForeign = errors.New("foreign bucket")

// Load returns what is stored: the hard state (zero value if none), the
// latest snapshot (nil if none) and every entry after the snapshot's index, in order.
// The entries are contiguous, the first at the snapshot's index plus one
// (one without a snapshot); a file that breaks this is reported as damaged.
func (s *Store) Load() (hs *raftpb.HardState, snap *raftpb.Snapshot, ents []*raftpb.Entry, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		hs = &raftpb.HardState{}
		if v := meta.Get(keyHardState); v != nil {
			if err := proto.Unmarshal(v, hs); err != nil {
				return fmt.Errorf("raft log %s: decoding the hard state: %w", s.path, err)
			}
		}
		var err error
		if snap, err = s.snapshot(meta); err != nil {
			return err
		}
		next := snap.GetMetadata().GetIndex() + 1
		c := tx.Bucket(bucketEntries).Cursor()
		for k, v := c.Seek(indexKey(next)); k != nil; k, v = c.Next() {
			i, ok := keyIndex(k)
			if !ok {
				return fmt.Errorf("raft log %s: entry key %x after index %d is not an index", s.path, k, next-1)
			}
			if i != next {
				return fmt.Errorf("raft log %s: entry %d is missing (the next stored is %d)", s.path, next, i)
			}
			e := &raftpb.Entry{}
			if err := proto.Unmarshal(v, e); err != nil {
				return fmt.Errorf("raft log %s: decoding entry %d: %w", s.path, i, err)
			}
			if e.GetIndex() != i {
				return fmt.Errorf("raft log %s: entry stored at %d has index %d", s.path, i, e.GetIndex())
			}
			ents = append(ents, e)
			next++
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return hs, snap, ents, nil
}

// snapshot decodes the stored snapshot, nil if none.
func (s *Store) snapshot(meta *bbolt.Bucket) (*raftpb.Snapshot, error) {
	v := meta.Get(keySnapshot)
	if v == nil {
		return nil, nil
	}
	snap := &raftpb.Snapshot{}
	if err := proto.Unmarshal(v, snap); err != nil {
		return nil, fmt.Errorf("raft log %s: decoding the snapshot: %w", s.path, err)
	}
	return snap, nil
}

// snapshotMetadata decodes only the metadata of the stored snapshot (index
// 0 if none), leaving its data, which may be large, undecoded and uncopied.
func (s *Store) snapshotMetadata(meta *bbolt.Bucket) (*raftpb.SnapshotMetadata, error) {
	md := &raftpb.SnapshotMetadata{}
	v := meta.Get(keySnapshot)
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return nil, fmt.Errorf("raft log %s: decoding the snapshot: %w", s.path, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, v[n:])
		if m < 0 {
			return nil, fmt.Errorf("raft log %s: decoding the snapshot: %w", s.path, protowire.ParseError(m))
		}
		if num == snapshotMetadataField && typ == protowire.BytesType {
			b, _ := protowire.ConsumeBytes(v[n:])
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(b, md); err != nil {
				return nil, fmt.Errorf("raft log %s: decoding the snapshot's metadata: %w", s.path, err)
			}
		}
		v = v[n+m:]
	}
	return md, nil
}

// snapshotMetadataField is the field number of raftpb.Snapshot's metadata.
var snapshotMetadataField = (&raftpb.Snapshot{}).ProtoReflect().Descriptor().Fields().ByName("metadata").Number()

// Save stores, in one fsynced transaction: snap (if non-nil and non-empty: it replaces the
// stored snapshot and drops every stored entry, see below), then ents (an entry at index i
// replaces the stored entry at i and drops every stored entry after i first, as raft's log
// truncation requires; ents are contiguous), then hs (if non-nil and not empty). Any may be nil.
//
// snap is a snapshot received from the leader (Ready.Snapshot), which
// replaces the whole log as MemoryStorage.ApplySnapshot does: the entries
// after its index are dropped along with those at or below it, since raft
// only restores a snapshot that its log does not match (their terms differ
// from the leader's), and the file must not keep entries raft has
// discarded. Like ApplySnapshot, Save refuses a snapshot whose index is not
// above the stored one's, with an error wrapping raft.ErrSnapOutOfDate.
//
// Entries at or below the snapshot's index are skipped, as MemoryStorage.Append
// does. ents must continue the log: the first entry kept must be at most one
// past the last stored index, and each entry must follow the one before it.
// On any error nothing of the call is stored.
func (s *Store) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	withSnap := snap != nil && !raft.IsEmptySnap(snap)
	withHS := !raft.IsEmptyHardState(hs)
	if !withSnap && len(ents) == 0 && !withHS {
		return s.checkOpen()
	}
	return s.update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if withSnap {
			if err := s.restoreSnapshot(tx, meta, snap); err != nil {
				return err
			}
		}
		if len(ents) > 0 {
			if err := s.append(tx, meta, ents); err != nil {
				return err
			}
		}
		if withHS {
			v, err := proto.Marshal(hs)
			if err != nil {
				return fmt.Errorf("raft log %s: encoding the hard state: %w", s.path, err)
			}
			if err := meta.Put(keyHardState, v); err != nil {
				return fmt.Errorf("raft log %s: storing the hard state: %w", s.path, err)
			}
		}
		return nil
	})
}

// restoreSnapshot stores snap, received from the leader, as the whole log.
func (s *Store) restoreSnapshot(tx *bbolt.Tx, meta *bbolt.Bucket, snap *raftpb.Snapshot) error {
	old, err := s.snapshotMetadata(meta)
	if err != nil {
		return err
	}
	if idx := snap.GetMetadata().GetIndex(); old.GetIndex() != 0 && idx <= old.GetIndex() {
		return fmt.Errorf("raft log %s: snapshot at index %d does not follow the stored one at %d: %w",
			s.path, idx, old.GetIndex(), raft.ErrSnapOutOfDate)
	}
	if err := s.putSnapshot(meta, snap); err != nil {
		return err
	}
	if err := tx.DeleteBucket(bucketEntries); err != nil {
		return fmt.Errorf("raft log %s: dropping the entries: %w", s.path, err)
	}
	if _, err := tx.CreateBucket(bucketEntries); err != nil {
		return fmt.Errorf("raft log %s: dropping the entries: %w", s.path, err)
	}
	return nil
}

func (s *Store) putSnapshot(meta *bbolt.Bucket, snap *raftpb.Snapshot) error {
	v, err := proto.Marshal(snap)
	if err != nil {
		return fmt.Errorf("raft log %s: encoding the snapshot at index %d: %w", s.path, snap.GetMetadata().GetIndex(), err)
	}
	if err := meta.Put(keySnapshot, v); err != nil {
		return fmt.Errorf("raft log %s: storing the snapshot at index %d: %w", s.path, snap.GetMetadata().GetIndex(), err)
	}
	return nil
}

// append stores ents, dropping the stored entries from the first one's index on.
func (s *Store) append(tx *bbolt.Tx, meta *bbolt.Bucket, ents []*raftpb.Entry) error {
	for k, e := range ents {
		if e == nil {
			return fmt.Errorf("raft log %s: entry %d of %d to save is nil", s.path, k+1, len(ents))
		}
		if k > 0 && e.GetIndex() != ents[k-1].GetIndex()+1 {
			return fmt.Errorf("raft log %s: entries to save are not contiguous: %d follows %d", s.path, e.GetIndex(), ents[k-1].GetIndex())
		}
	}
	snap, err := s.snapshotMetadata(meta)
	if err != nil {
		return err
	}
	first := snap.GetIndex() + 1
	if ents[0].GetIndex() < first {
		if n := first - ents[0].GetIndex(); n < uint64(len(ents)) {
			ents = ents[n:]
		} else {
			return nil // all covered by the snapshot
		}
	}
	b := tx.Bucket(bucketEntries)
	b.FillPercent = entriesFillPercent
	last := first - 1
	if k, _ := b.Cursor().Last(); k != nil {
		i, ok := keyIndex(k)
		if !ok {
			return fmt.Errorf("raft log %s: last entry key %x is not an index", s.path, k)
		}
		last = max(last, i)
	}
	if at := ents[0].GetIndex(); at > last+1 {
		return fmt.Errorf("raft log %s: entry %d would leave a gap after the last stored index %d", s.path, at, last)
	}
	if err := deleteFrom(b, ents[0].GetIndex()); err != nil {
		return fmt.Errorf("raft log %s: truncating at entry %d: %w", s.path, ents[0].GetIndex(), err)
	}
	for _, e := range ents {
		v, err := proto.Marshal(e)
		if err != nil {
			return fmt.Errorf("raft log %s: encoding entry %d: %w", s.path, e.GetIndex(), err)
		}
		if err := b.Put(indexKey(e.GetIndex()), v); err != nil {
			return fmt.Errorf("raft log %s: storing entry %d: %w", s.path, e.GetIndex(), err)
		}
	}
	return nil
}

// SaveSnapshot stores snap as the latest snapshot and drops entries at or below index
// (log compaction after the state machine made a snapshot at snap's index). It refuses a
// snapshot older than the stored one.
//
// Entries after the snapshot's index stay. The refusal wraps
// raft.ErrSnapOutOfDate; a snapshot at the stored one's index replaces it.
// SaveSnapshot also refuses an empty snapshot, and one whose term differs
// from the term the log holds at its index.
func (s *Store) SaveSnapshot(snap *raftpb.Snapshot) error {
	if snap == nil || raft.IsEmptySnap(snap) {
		return fmt.Errorf("raft log %s: refusing to store an empty snapshot", s.path)
	}
	idx, term := snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm()
	return s.update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		old, err := s.snapshotMetadata(meta)
		if err != nil {
			return err
		}
		if old.GetIndex() != 0 {
			oldIdx, oldTerm := old.GetIndex(), old.GetTerm()
			if idx < oldIdx {
				return fmt.Errorf("raft log %s: snapshot at index %d is older than the stored one at %d: %w",
					s.path, idx, oldIdx, raft.ErrSnapOutOfDate)
			}
			if idx == oldIdx && term != oldTerm {
				return fmt.Errorf("raft log %s: snapshot at index %d has term %d, the stored one at that index %d", s.path, idx, term, oldTerm)
			}
		}
		b := tx.Bucket(bucketEntries)
		if v := b.Get(indexKey(idx)); v != nil {
			e := &raftpb.Entry{}
			if err := proto.Unmarshal(v, e); err != nil {
				return fmt.Errorf("raft log %s: decoding entry %d: %w", s.path, idx, err)
			}
			if e.GetTerm() != term {
				return fmt.Errorf("raft log %s: snapshot at index %d has term %d, the log's entry there %d", s.path, idx, term, e.GetTerm())
			}
		}
		if err := s.putSnapshot(meta, snap); err != nil {
			return err
		}
		if err := deleteThrough(b, idx); err != nil {
			return fmt.Errorf("raft log %s: compacting through entry %d: %w", s.path, idx, err)
		}
		return nil
	})
}

// Restore builds a raft.MemoryStorage from what Load returns (ApplySnapshot, SetHardState,
// Append), for raft.Config.Storage.
func (s *Store) Restore() (*raft.MemoryStorage, error) {
	hs, snap, ents, err := s.Load()
	if err != nil {
		return nil, err
	}
	ms := raft.NewMemoryStorage()
	if snap != nil {
		if err := ms.ApplySnapshot(snap); err != nil {
			return nil, fmt.Errorf("raft log %s: restoring the snapshot at index %d: %w", s.path, snap.GetMetadata().GetIndex(), err)
		}
	}
	if err := ms.SetHardState(hs); err != nil {
		return nil, fmt.Errorf("raft log %s: restoring the hard state: %w", s.path, err)
	}
	if err := ms.Append(ents); err != nil {
		return nil, fmt.Errorf("raft log %s: restoring the entries: %w", s.path, err)
	}
	return ms, nil
}

// Generation returns the generation the log belongs to, as SetGeneration
// stored it (nil if never set: a domain's first log).
func (s *Store) Generation() ([]byte, error) {
	var g []byte
	err := s.view(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyGeneration); v != nil {
			g = append([]byte(nil), v...)
		}
		return nil
	})
	return g, err
}

// SetGeneration stores the generation the log belongs to (opaque to the
// store).
func (s *Store) SetGeneration(g []byte) error {
	return s.update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put(keyGeneration, g); err != nil {
			return fmt.Errorf("raft log %s: storing the generation: %w", s.path, err)
		}
		return nil
	})
}

// Backup writes a consistent copy of the log to path (0600), which must
// not exist, and syncs it.
func (s *Store) Backup(path string) error {
	return s.view(func(tx *bbolt.Tx) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("copying raft log %s: %w", s.path, err)
		}
		_, err = tx.WriteTo(f)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(path)
			return fmt.Errorf("copying raft log %s to %s: %w", s.path, path, err)
		}
		return nil
	})
}

// Close closes the file. Calling it again does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return fmt.Errorf("closing raft log %s: %w", s.path, err)
	}
	return nil
}

// checkOpen returns ErrClosed after Close.
func (s *Store) checkOpen() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return nil
}

func (s *Store) view(fn func(*bbolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return s.db.View(fn)
}

// update runs fn in a write transaction, committed and fsynced before it returns.
func (s *Store) update(fn func(*bbolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return s.db.Update(fn)
}

// deleteFrom deletes the entries at index from and above.
func deleteFrom(b *bbolt.Bucket, from uint64) error {
	c := b.Cursor()
	start := indexKey(from)
	// Seek again after each Delete: a cursor's Next skips a key after Delete.
	for k, _ := c.Seek(start); k != nil; k, _ = c.Seek(start) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// deleteThrough deletes the entries at index through and below.
func deleteThrough(b *bbolt.Bucket, through uint64) error {
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.First() {
		i, ok := keyIndex(k)
		if !ok {
			return fmt.Errorf("entry key %x is not an index", k)
		}
		if i > through {
			return nil
		}
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// indexKey is the entries bucket's key for index i (and the encoding of the
// format version).
func indexKey(i uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), i)
}

// keyIndex decodes an entries bucket key.
func keyIndex(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}
