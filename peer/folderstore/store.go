package folderstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/syncfs"
)

// ErrMissingBlock is returned by Commit for a snapshot that references a
// block the block store does not hold, and by Verify for a committed
// snapshot that does.
var ErrMissingBlock = errors.New("snapshot references a block the store does not hold")

// ErrSnapshotNotFound is returned by Snapshot for a folder and sequence
// that have no snapshot.
var ErrSnapshotNotFound = errors.New("snapshot not found")

// ErrClosed is returned by every method of a Store after Close.
var ErrClosed = errors.New("folder store is closed")

// openTimeout is how long Open waits for another process's lock on the
// metadata file before giving up.
const openTimeout = time.Second

// maxRecord bounds a decoded snapshot record (the index bytes and block list).
const maxRecord = 1 << 30

var (
	bucketMeta      = []byte("meta")
	bucketSnapshots = []byte("snapshots") // holds one bucket per folder
	keyVersion      = []byte("version")
)

// formatVersion is the version of the metadata file's layout.
const formatVersion = 1

// Snapshot is one committed version of a folder: the index the server
// accepted, as the signed bytes it was given, and the blocks its files are
// made of.
type Snapshot struct {
	Folder string        `cbor:"1,keyasint"`
	Seq    uint64        `cbor:"2,keyasint"` // 1 for a folder's first snapshot, then one more each
	Time   int64         `cbor:"3,keyasint"` // when it was committed, Unix nanoseconds
	Index  []byte        `cbor:"4,keyasint"` // the signed index, as given to Commit
	Blocks []syncfs.Hash `cbor:"5,keyasint"` // every block it references, sorted, each once

	// Set by Append: the entries that changed since the folder's previous
	// snapshot (tombstones for deletions), in name order, and the device
	// that authored the change.
	Entries []syncfs.FileInfo `cbor:"6,keyasint,omitempty"`
	Author  string            `cbor:"7,keyasint,omitempty"`
}

// At returns the snapshot's time.
func (s Snapshot) At() time.Time { return time.Unix(0, s.Time).UTC() }

// Store keeps folders' snapshots: their records in a bbolt file, their
// blocks in a BlockStore shared by every folder and snapshot. Its methods
// are safe for concurrent use, except Close, which must come after all
// others have returned.
type Store struct {
	path   string
	db     *bbolt.DB
	blocks BlockStore
	// fault, when set, is called before each step of a commit with the
	// step's name; an error it returns fails the commit there (tests).
	fault func(step string) error
}

// Open opens (creating if needed) the snapshot metadata file at path, over
// the block store blocks. Only one process may have the file open.
func Open(path string, blocks BlockStore) (*Store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: openTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("opening folder store %s: file is in use by another process (still locked after %v): %w", path, openTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening folder store %s: %w", path, err)
	}
	if err := db.Update(initFile); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening folder store %s: %w", path, err)
	}
	return &Store{path: path, db: db, blocks: blocks}, nil
}

func initFile(tx *bbolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		var err error
		if meta, err = tx.CreateBucket(bucketMeta); err != nil {
			return err
		}
		if err := meta.Put(keyVersion, binary.BigEndian.AppendUint64(nil, formatVersion)); err != nil {
			return err
		}
	}
	v := meta.Get(keyVersion)
	if len(v) != 8 {
		return fmt.Errorf("the format version is %d bytes long, want 8; the file is damaged or not a folder store", len(v))
	}
	if ver := binary.BigEndian.Uint64(v); ver != formatVersion {
		return fmt.Errorf("format version %d, this baton reads version %d", ver, formatVersion)
	}
	_, err := tx.CreateBucketIfNotExists(bucketSnapshots)
	return err
}

// Close closes the metadata file. The block store needs no closing.
func (s *Store) Close() error {
	if s.db == nil {
		return ErrClosed
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return fmt.Errorf("closing folder store %s: %w", s.path, err)
	}
	return nil
}

// Blocks returns the store's block store.
func (s *Store) Blocks() BlockStore { return s.blocks }

func (s *Store) step(name string) error {
	if s.fault == nil {
		return nil
	}
	return s.fault(name)
}

// Commit records a new snapshot of folder: the index bytes as given and the
// blocks it references, at time at, with the folder's next sequence number.
//
// Every block must already be durable in the block store (each Put having
// returned nil): Commit checks that each is held and refuses the snapshot
// with an error wrapping ErrMissingBlock otherwise. The record is written in
// one bbolt transaction, fsynced before Commit returns, so a crash leaves
// the folder's snapshots as they were or with the new one, complete.
func (s *Store) Commit(folder string, at time.Time, index []byte, blocks []syncfs.Hash) (Snapshot, error) {
	return s.commit(Snapshot{Folder: folder, Time: at.UnixNano(), Index: bytes.Clone(index), Blocks: slices.Clone(blocks)})
}

func (s *Store) commit(snap Snapshot) (Snapshot, error) {
	folder := snap.Folder
	if s.db == nil {
		return Snapshot{}, ErrClosed
	}
	if folder == "" {
		return Snapshot{}, errors.New("committing a snapshot: no folder name")
	}
	slices.SortFunc(snap.Blocks, func(a, b syncfs.Hash) int { return bytes.Compare(a[:], b[:]) })
	snap.Blocks = slices.Compact(snap.Blocks)
	if err := s.step("check"); err != nil {
		return Snapshot{}, fmt.Errorf("committing a snapshot of %q: %w", folder, err)
	}
	for _, h := range snap.Blocks {
		ok, err := s.blocks.Has(h)
		if err != nil {
			return Snapshot{}, fmt.Errorf("committing a snapshot of %q: %w", folder, err)
		}
		if !ok {
			return Snapshot{}, fmt.Errorf("committing a snapshot of %q: block %x: %w", folder, h[:8], ErrMissingBlock)
		}
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		fb, err := tx.Bucket(bucketSnapshots).CreateBucketIfNotExists([]byte(folder))
		if err != nil {
			return err
		}
		if k, _ := fb.Cursor().Last(); k != nil {
			snap.Seq = binary.BigEndian.Uint64(k)
		}
		snap.Seq++
		rec, err := canon.Marshal(snap)
		if err != nil {
			return err
		}
		if err := s.step("put"); err != nil {
			return err
		}
		if err := fb.Put(seqKey(snap.Seq), rec); err != nil {
			return err
		}
		return s.step("tx")
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("committing a snapshot of %q: %w", folder, err)
	}
	return snap, nil
}

// Write stores blocks in the block store and then commits a snapshot of
// folder referencing them (and any further blocks already held, in refs),
// in that order: the snapshot is committed only once every block is
// durable. On an error nothing is committed; blocks already stored stay
// (unreferenced, for a later collection).
func (s *Store) Write(folder string, at time.Time, index []byte, blocks [][]byte, refs []syncfs.Hash) (Snapshot, error) {
	all := slices.Clone(refs)
	for _, b := range blocks {
		h := syncfs.HashBytes(b)
		if err := s.blocks.Put(h, b); err != nil {
			return Snapshot{}, fmt.Errorf("writing a snapshot of %q: %w", folder, err)
		}
		all = append(all, h)
	}
	return s.Commit(folder, at, index, all)
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// Snapshots returns folder's snapshots, oldest first.
func (s *Store) Snapshots(folder string) ([]Snapshot, error) {
	if s.db == nil {
		return nil, ErrClosed
	}
	var out []Snapshot
	err := s.db.View(func(tx *bbolt.Tx) error {
		fb := tx.Bucket(bucketSnapshots).Bucket([]byte(folder))
		if fb == nil {
			return nil
		}
		return fb.ForEach(func(k, v []byte) error {
			snap, err := decodeSnapshot(folder, k, v)
			if err != nil {
				return err
			}
			out = append(out, snap)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing snapshots of %q in %s: %w", folder, s.path, err)
	}
	return out, nil
}

// Snapshot returns folder's snapshot seq, or an error wrapping
// ErrSnapshotNotFound.
func (s *Store) Snapshot(folder string, seq uint64) (Snapshot, error) {
	if s.db == nil {
		return Snapshot{}, ErrClosed
	}
	var snap Snapshot
	err := s.db.View(func(tx *bbolt.Tx) error {
		var v []byte
		if fb := tx.Bucket(bucketSnapshots).Bucket([]byte(folder)); fb != nil {
			v = fb.Get(seqKey(seq))
		}
		if v == nil {
			return ErrSnapshotNotFound
		}
		var err error
		snap, err = decodeSnapshot(folder, seqKey(seq), v)
		return err
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("reading snapshot %d of %q in %s: %w", seq, folder, s.path, err)
	}
	return snap, nil
}

// Folders returns the names of the folders with snapshots, sorted.
func (s *Store) Folders() ([]string, error) {
	if s.db == nil {
		return nil, ErrClosed
	}
	var out []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEachBucket(func(k []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing folders in %s: %w", s.path, err)
	}
	return out, nil
}

func decodeSnapshot(folder string, k, v []byte) (Snapshot, error) {
	var snap Snapshot
	if len(k) != 8 {
		return snap, fmt.Errorf("snapshot key %x is not a sequence number; the file is damaged", k)
	}
	if err := canon.Unmarshal(v, &snap, maxRecord); err != nil {
		return snap, fmt.Errorf("decoding snapshot %d: %w", binary.BigEndian.Uint64(k), err)
	}
	if snap.Folder != folder || snap.Seq != binary.BigEndian.Uint64(k) {
		return snap, fmt.Errorf("snapshot stored as %q %d says it is %q %d; the file is damaged", folder, binary.BigEndian.Uint64(k), snap.Folder, snap.Seq)
	}
	return snap, nil
}

// Verify checks every committed snapshot of every folder: each block it
// references is held and hashes to its name. It returns every problem
// found, joined (each wrapping ErrMissingBlock or ErrCorruptBlock), or nil.
// It reads every block once.
func (s *Store) Verify() error {
	folders, err := s.Folders()
	if err != nil {
		return err
	}
	checked := map[syncfs.Hash]error{}
	var errs []error
	for _, f := range folders {
		snaps, err := s.Snapshots(f)
		if err != nil {
			return err
		}
		for _, snap := range snaps {
			for _, h := range snap.Blocks {
				err, done := checked[h]
				if !done {
					_, err = s.blocks.Get(h)
					if errors.Is(err, ErrBlockNotFound) {
						err = fmt.Errorf("block %x: %w", h[:8], ErrMissingBlock)
					}
					checked[h] = err
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("snapshot %d of %q: %w", snap.Seq, f, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}
