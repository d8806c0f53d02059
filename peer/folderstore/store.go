package folderstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/boltmap"
	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/syncfs"
)

// ErrMissingBlock is returned by Commit for a snapshot that references a
// block the block store does not hold, and by Verify for a committed
// snapshot that does.
var ErrMissingBlock = errors.New("snapshot references a block the store does not hold")

// ErrSnapshotNotFound is returned for a folder and sequence that have no
// snapshot (never committed, or dropped by retention).
var ErrSnapshotNotFound = errors.New("snapshot not found")

// ErrTampered is returned when a snapshot's record or entries no longer
// match its root hash, its root is not signed by a trusted server key, the
// chain of roots is broken, or the store's indexes disagree with the
// snapshots: the metadata file was altered or damaged. Data from such a
// snapshot is never returned.
var ErrTampered = errors.New("snapshot record does not match its signed root")

// ErrBadEvidence is returned by Append for evidence (the authoring device's
// signed index pages) that does not verify or does not cover every entry.
var ErrBadEvidence = errors.New("evidence does not cover the snapshot")

// ErrClosed is returned by every method of a Store after Close.
var ErrClosed = errors.New("folder store is closed")

// PurposeSnapshot is what a server signs a snapshot's root for.
const PurposeSnapshot identity.Purpose = "baton/folder-snapshot/v1"

// openTimeout is how long Open waits for another process's lock on the
// metadata file before giving up.
const openTimeout = time.Second

// maxRecord bounds a decoded snapshot header (index bytes, block list of a
// snapshot committed with Commit, evidence pages).
const maxRecord = 1 << 30

// Top-level buckets; snapshots, entries, paths and times each hold one
// bucket per folder.
var (
	bucketMeta      = []byte("meta")
	bucketSnapshots = []byte("snapshots") // seq → header (Snapshot without Entries)
	bucketEntries   = []byte("entries")   // seq ‖ name → FileInfo
	bucketPaths     = []byte("paths")     // name ‖ 0 ‖ seq → empty
	bucketTimes     = []byte("times")     // time ‖ seq → empty
	bucketRefs      = []byte("refs")      // hash ‖ seq ‖ name → block size (4 bytes)
	keyVersion      = []byte("version")
	folderBuckets   = [][]byte{bucketSnapshots, bucketEntries, bucketPaths, bucketTimes, bucketRefs}
)

// formatVersion is the version of the metadata file's layout. Version 2
// added roots, signatures and the entries, paths and times buckets;
// version 3 the refs bucket (version 2 files are given it when opened);
// version 1 files are refused.
const formatVersion = 3

// Snapshot is one committed version of a folder. A snapshot written by
// Append holds the entries that changed since the folder's previous
// snapshot; one written by Commit holds an index as opaque signed bytes and
// the blocks it references.
//
// Root chains it to the folder's previous snapshot (Prev) and covers every
// other field and every entry (see the package documentation); ServerSig is
// the hosting server's signature of Root.
type Snapshot struct {
	Folder string        `cbor:"1,keyasint"`
	Seq    uint64        `cbor:"2,keyasint"` // 1 for a folder's first snapshot, then higher (gaps where retention dropped some)
	Time   int64         `cbor:"3,keyasint"` // when it was committed, Unix nanoseconds; never before the previous snapshot's
	Index  []byte        `cbor:"4,keyasint"` // the signed index, as given to Commit
	Blocks []syncfs.Hash `cbor:"5,keyasint"` // blocks it references, sorted, each once; for Append the entries' (filled by Append and Snapshot, not Snapshots)

	// Set by Append: the entries that changed since the folder's previous
	// snapshot (tombstones for deletions), in name order, and the device
	// that authored the change. Entries are stored apart from the header:
	// Snapshots leaves them out, Snapshot and Append fill them in.
	Entries []syncfs.FileInfo `cbor:"-"`
	Author  string            `cbor:"7,keyasint,omitempty"`

	Count     uint64      `cbor:"8,keyasint"`            // len(Entries)
	Prev      syncfs.Hash `cbor:"9,keyasint"`            // Root of the previous snapshot, zero for the first
	Root      syncfs.Hash `cbor:"10,keyasint"`           // see RootOf
	Evidence  [][]byte    `cbor:"11,keyasint,omitempty"` // the author's signed index pages (syncfs.SignIndex), if given
	ServerKey []byte      `cbor:"12,keyasint,omitempty"` // the signing server's public key, raw
	ServerSig []byte      `cbor:"13,keyasint,omitempty"` // its signature of Root for PurposeSnapshot

	// Delta is set on a snapshot of Append: it holds Entries, and its
	// Blocks are derived from them (not stored in its header).
	Delta bool `cbor:"14,keyasint,omitempty"`

	// Set by Append WithRequester: the user and device that asked for the
	// change when the author made it on their behalf (a restore).
	ReqUser   string `cbor:"15,keyasint,omitempty"`
	ReqDevice string `cbor:"16,keyasint,omitempty"`
}

// At returns the snapshot's time.
func (s Snapshot) At() time.Time { return time.Unix(0, s.Time).UTC() }

// Option configures Open.
type Option func(*Store)

// WithServerKey makes the store sign every snapshot root it writes (Append,
// Commit, and snapshots rewritten by retention) with key, and trust
// signatures by key's public key. A store opened with a key refuses, as
// tampered, every snapshot not signed by a trusted key.
func WithServerKey(key *identity.PrivateKey) Option {
	return func(s *Store) {
		s.key = key
		s.trusted = append(s.trusted, key.Public())
	}
}

// WithTrustedKeys adds server public keys whose snapshot signatures verify
// (earlier keys of a server whose key was rotated).
func WithTrustedKeys(keys ...identity.PublicKey) Option {
	return func(s *Store) { s.trusted = append(s.trusted, keys...) }
}

// Store keeps folders' snapshots: their records in a bbolt file, their
// blocks in a BlockStore shared by every folder and snapshot. Its methods
// are safe for concurrent use, except Close, which must come after all
// others have returned.
type Store struct {
	path    string
	db      *bbolt.DB
	blocks  BlockStore
	key     *identity.PrivateKey
	trusted []identity.PublicKey
	// fault, when set, is called before each step of a commit, a prune and
	// a collection with the step's name; an error it returns fails the
	// operation there (tests).
	fault func(step string) error
	// onRead, when set, is called with each snapshot a read checks and
	// takes entries from (tests).
	onRead func(seq uint64)

	// chunk bounds the entries Append writes in one transaction
	// (appendChunk; tests set less).
	chunk int
	// writeMu serializes the writers of snapshots (Append, Commit,
	// Prune): an Append spans several transactions.
	writeMu sync.Mutex

	// rel lets go of the map's pages that transactions touched: every
	// releaseEvery entries (folderTx.touched) and after each operation
	// (settle).
	rel boltmap.Releaser

	// gen counts the write transactions done; usage holds each folder's
	// last Usage walk and the gen it began at (usage.go).
	gen   atomic.Uint64
	usage usageMemo

	gcRun sync.Mutex // one collection at a time
	pinMu sync.Mutex // guards pins, sweeping, recent; held by the collector around each delete
	pins  map[syncfs.Hash]int
	// sweeping is set while a collection runs; recent then gathers the
	// blocks of snapshots committed since its mark began.
	sweeping bool
	recent   map[syncfs.Hash]struct{}
}

// Open opens (creating if needed) the snapshot metadata file at path, over
// the block store blocks. Only one process may have the file open.
func Open(path string, blocks BlockStore, opts ...Option) (*Store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: openTimeout, InitialMmapSize: boltmap.InitialMmap(0)})
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
	s := &Store{path: path, db: db, blocks: blocks, pins: map[syncfs.Hash]int{}, chunk: appendChunk}
	for _, o := range opts {
		o(s)
	}
	// What an Append that did not commit (a crash) left.
	var folders []string
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEachBucket(func(k []byte) error {
			folders = append(folders, string(k))
			return nil
		})
	})
	for _, f := range folders {
		if err == nil {
			err = s.dropPending(f)
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening folder store %s: %w", path, err)
	}
	return s, nil
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
	ver := binary.BigEndian.Uint64(v)
	if ver != formatVersion && ver != 2 {
		return fmt.Errorf("format version %d, this baton reads version %d", ver, formatVersion)
	}
	for _, b := range folderBuckets {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	if ver == 2 {
		if err := addRefs(tx); err != nil {
			return fmt.Errorf("adding the block references index to a version 2 file: %w", err)
		}
		return meta.Put(keyVersion, binary.BigEndian.AppendUint64(nil, formatVersion))
	}
	return nil
}

// addRefs fills the refs index of a version 2 file from its snapshots.
func addRefs(tx *bbolt.Tx) error {
	return tx.Bucket(bucketSnapshots).ForEachBucket(func(name []byte) error {
		fb, err := createFolder(tx, string(name), nil)
		if err != nil {
			return err
		}
		err = fb.snaps.ForEach(func(k, v []byte) error {
			hdr, err := decodeHeader(fb.folder, k, v)
			if err != nil {
				return err
			}
			return fb.putHeaderRefs(hdr)
		})
		if err != nil {
			return err
		}
		return fb.entries.ForEach(func(k, v []byte) error {
			if len(k) < 8 {
				return fmt.Errorf("entry key %x: %w", k, ErrTampered)
			}
			seq := binary.BigEndian.Uint64(k[:8])
			fi, err := rawEntry{string(k[8:]), v}.decode(seq)
			if err != nil {
				return err
			}
			return fb.putRefs(seq, fi)
		})
	})
}

// settle lets go of the map's pages an operation touched (see rel). It
// is called once the operation's transactions are done.
func (s *Store) settle() {
	if db := s.db; db != nil {
		s.rel.Settle(db)
	}
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

// commit writes snap as folder's next snapshot. snap.Entries must be sorted
// by name, names unique; for a snapshot with entries, snap.Blocks must be
// their blocks.
func (s *Store) commit(snap Snapshot) (Snapshot, error) {
	folder := snap.Folder
	if s.db == nil {
		return Snapshot{}, ErrClosed
	}
	defer s.settle()
	if folder == "" {
		return Snapshot{}, errors.New("committing a snapshot: no folder name")
	}
	snap.Blocks = sortHashes(snap.Blocks)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.dropPending(folder); err != nil {
		return Snapshot{}, fmt.Errorf("committing a snapshot of %q: %w", folder, err)
	}
	// Pinned from the check until the record is committed, so that a
	// collection running now cannot delete a block between the two.
	release := s.Pin(snap.Blocks...)
	defer release()
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
	raws := make([]rawEntry, len(snap.Entries))
	for i, fi := range snap.Entries {
		var err error
		if raws[i], err = encodeEntry(fi); err != nil {
			return Snapshot{}, fmt.Errorf("committing a snapshot of %q: %w", folder, err)
		}
	}
	err := s.update(func(tx *bbolt.Tx) error {
		fb, err := s.createFolder(tx, folder)
		if err != nil {
			return err
		}
		if k, v := fb.snaps.Cursor().Last(); k != nil {
			last, err := decodeHeader(folder, k, v)
			if err != nil {
				return err
			}
			snap.Seq, snap.Prev = last.Seq, last.Root
			snap.Time = max(snap.Time, last.Time)
		}
		snap.Seq++
		snap.Count = uint64(len(snap.Entries))
		if err := s.seal(&snap, func(r *rooter) error {
			for _, e := range raws {
				r.addRaw(e)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := s.step("put"); err != nil {
			return err
		}
		if err := fb.putHeader(snap); err != nil {
			return err
		}
		for _, e := range raws {
			if err := fb.putEntry(snap.Seq, e); err != nil {
				return err
			}
		}
		return s.step("tx")
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("committing a snapshot of %q: %w", folder, err)
	}
	s.noteCommitted(snap.Blocks)
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
		all = append(all, syncfs.HashBytes(b))
	}
	release := s.Pin(all...)
	defer release()
	for _, b := range blocks {
		h := syncfs.HashBytes(b)
		if err := s.blocks.Put(h, b); err != nil {
			return Snapshot{}, fmt.Errorf("writing a snapshot of %q: %w", folder, err)
		}
	}
	return s.Commit(folder, at, index, all)
}

func sortHashes(hs []syncfs.Hash) []syncfs.Hash {
	slices.SortFunc(hs, func(a, b syncfs.Hash) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(hs)
}

// folderTx is one folder's buckets in a transaction.
type folderTx struct {
	folder                             string
	snaps, entries, paths, times, refs *bbolt.Bucket
	rel                                *boltmap.Releaser // the Store's
}

// touched counts an entry the transaction read or wrote (see
// boltmap.Releaser): a walk or a write of many entries lets go of the
// pages of the map as it goes.
func (f *folderTx) touched() {
	if f.rel != nil {
		f.rel.Touched(f.snaps.Tx())
	}
}

func (s *Store) createFolder(tx *bbolt.Tx, folder string) (*folderTx, error) {
	return createFolder(tx, folder, &s.rel)
}

// createFolder returns folder's buckets, made if need be, counting what
// they touch in rel (nil: nothing).
func createFolder(tx *bbolt.Tx, folder string, rel *boltmap.Releaser) (*folderTx, error) {
	var bs [5]*bbolt.Bucket
	for i, name := range folderBuckets {
		b, err := tx.Bucket(name).CreateBucketIfNotExists([]byte(folder))
		if err != nil {
			return nil, err
		}
		bs[i] = b
	}
	return &folderTx{folder, bs[0], bs[1], bs[2], bs[3], bs[4], rel}, nil
}

// openFolder returns folder's buckets, or nil if it has none.
func (s *Store) openFolder(tx *bbolt.Tx, folder string) (*folderTx, error) {
	var bs [5]*bbolt.Bucket
	for i, name := range folderBuckets {
		bs[i] = tx.Bucket(name).Bucket([]byte(folder))
	}
	if bs[0] == nil {
		return nil, nil
	}
	for i, b := range bs {
		if b == nil {
			return nil, fmt.Errorf("folder %q has snapshots but no %s bucket: %w", folder, folderBuckets[i], ErrTampered)
		}
	}
	return &folderTx{folder, bs[0], bs[1], bs[2], bs[3], bs[4], &s.rel}, nil
}

func (f *folderTx) putHeader(snap Snapshot) error {
	rec, err := encodeHeader(snap)
	if err != nil {
		return err
	}
	if err := f.snaps.Put(seqKey(snap.Seq), rec); err != nil {
		return err
	}
	if err := f.putHeaderRefs(snap); err != nil {
		return err
	}
	return f.times.Put(timeKey(snap.Time, snap.Seq), nil)
}

// deleteHeader removes snap's header, its time and the references of a
// snapshot of Commit (its entries are deleted apart, deleteEntry).
func (f *folderTx) deleteHeader(snap Snapshot) error {
	if err := f.snaps.Delete(seqKey(snap.Seq)); err != nil {
		return err
	}
	if !snap.Delta {
		for _, h := range snap.Blocks {
			if err := f.refs.Delete(refKey(h, snap.Seq, "")); err != nil {
				return err
			}
		}
	}
	return f.times.Delete(timeKey(snap.Time, snap.Seq))
}

// putHeaderRefs records the blocks of a snapshot of Commit (of unknown
// size: 0) in the refs index.
func (f *folderTx) putHeaderRefs(snap Snapshot) error {
	if snap.Delta {
		return nil
	}
	for _, h := range snap.Blocks {
		if err := f.refs.Put(refKey(h, snap.Seq, ""), sizeValue(0)); err != nil {
			return err
		}
	}
	return nil
}

// putRefs records the blocks of fi, an entry of snapshot seq, in the refs
// index: one key per distinct block.
func (f *folderTx) putRefs(seq uint64, fi syncfs.FileInfo) error {
	for _, b := range liveBlocks(fi) {
		if err := f.refs.Put(refKey(b.Hash, seq, fi.Name), sizeValue(b.Size)); err != nil {
			return err
		}
	}
	return nil
}

func (f *folderTx) deleteRefs(seq uint64, fi syncfs.FileInfo) error {
	for _, b := range liveBlocks(fi) {
		if err := f.refs.Delete(refKey(b.Hash, seq, fi.Name)); err != nil {
			return err
		}
	}
	return nil
}

// refKey is hash ‖ seq ‖ name: a block's references are adjacent.
func refKey(h syncfs.Hash, seq uint64, name string) []byte {
	return append(binary.BigEndian.AppendUint64(append([]byte(nil), h[:]...), seq), name...)
}

func sizeValue(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

func encodeHeader(snap Snapshot) ([]byte, error) {
	if snap.Delta {
		snap.Blocks = nil
	}
	return canon.Marshal(snap)
}

// rawEntry is an entry as stored: its name (from its key) and its
// canonical encoding, decoded only when needed.
type rawEntry struct {
	name string
	enc  []byte
}

func encodeEntry(fi syncfs.FileInfo) (rawEntry, error) {
	enc, err := canon.Marshal(fi)
	if err != nil {
		return rawEntry{}, fmt.Errorf("encoding entry %q: %w", fi.Name, err)
	}
	return rawEntry{fi.Name, enc}, nil
}

// decode decodes e, which snapshot seq holds.
func (e rawEntry) decode(seq uint64) (syncfs.FileInfo, error) {
	var fi syncfs.FileInfo
	if err := canon.Unmarshal(e.enc, &fi, maxRecord); err != nil {
		return fi, fmt.Errorf("decoding entry %q of snapshot %d: %v: %w", e.name, seq, err, ErrTampered)
	}
	if fi.Name != e.name {
		return fi, fmt.Errorf("entry stored as %q in snapshot %d says it is %q: %w", e.name, seq, fi.Name, ErrTampered)
	}
	return fi, nil
}

func (f *folderTx) putEntry(seq uint64, e rawEntry) error {
	f.touched()
	fi, err := e.decode(seq)
	if err != nil {
		return err
	}
	if err := f.entries.Put(entryKey(seq, e.name), e.enc); err != nil {
		return err
	}
	if err := f.putRefs(seq, fi); err != nil {
		return err
	}
	return f.paths.Put(pathKey(e.name, seq), nil)
}

func (f *folderTx) deleteEntry(seq uint64, name string) error {
	f.touched()
	if v := f.entries.Get(entryKey(seq, name)); v != nil {
		fi, err := rawEntry{name, v}.decode(seq)
		if err != nil {
			return err
		}
		if err := f.deleteRefs(seq, fi); err != nil {
			return err
		}
	}
	if err := f.entries.Delete(entryKey(seq, name)); err != nil {
		return err
	}
	return f.paths.Delete(pathKey(name, seq))
}

// header reads snapshot seq's header (Entries not loaded, Blocks of an
// Append snapshot not derived), or ErrSnapshotNotFound.
func (f *folderTx) header(seq uint64) (Snapshot, error) {
	v := f.snaps.Get(seqKey(seq))
	if v == nil {
		return Snapshot{}, ErrSnapshotNotFound
	}
	return decodeHeader(f.folder, seqKey(seq), v)
}

// eachRaw calls fn with snapshot seq's entries as stored, in name order.
// Their bytes are valid until the transaction ends or the bucket changes.
func (f *folderTx) eachRaw(seq uint64, fn func(rawEntry) error) error {
	prefix := seqKey(seq)
	c := f.entries.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		f.touched()
		if err := fn(rawEntry{string(k[8:]), v}); err != nil {
			return err
		}
	}
	return nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func entryKey(seq uint64, name string) []byte { return append(seqKey(seq), name...) }

// pathKey is name, a zero byte (no name holds one, syncfs.CheckName) and
// seq: a path's versions are adjacent and in order, and a directory's
// entries follow its own.
func pathKey(name string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(name), 0), seq)
}

func splitPathKey(k []byte) (string, uint64, bool) {
	if len(k) < 9 || k[len(k)-9] != 0 {
		return "", 0, false
	}
	return string(k[:len(k)-9]), binary.BigEndian.Uint64(k[len(k)-8:]), true
}

// timeKey orders by time (the sign bit flipped so that times before 1970
// sort first), then by sequence.
func timeKey(t int64, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(t)^1<<63), seq)
}

// Snapshots returns folder's snapshots, oldest first, without their
// entries (Snapshot reads them). Each header's root and signature are
// checked (the entries are not: Verify and the readers check them).
func (s *Store) Snapshots(folder string) ([]Snapshot, error) {
	if s.db == nil {
		return nil, ErrClosed
	}
	var out []Snapshot
	err := s.db.View(func(tx *bbolt.Tx) error {
		fb, err := s.openFolder(tx, folder)
		if err != nil || fb == nil {
			return err
		}
		return fb.snaps.ForEach(func(k, v []byte) error {
			snap, err := decodeHeader(folder, k, v)
			if err != nil {
				return err
			}
			if err := s.checkSignature(snap); err != nil {
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

// Snapshot returns folder's snapshot seq with its entries, checked against
// its root and signature (ErrTampered), or an error wrapping
// ErrSnapshotNotFound.
func (s *Store) Snapshot(folder string, seq uint64) (Snapshot, error) {
	if s.db == nil {
		return Snapshot{}, ErrClosed
	}
	var snap Snapshot
	err := s.viewSnapshot(folder, seq, func(fb *folderTx, hdr Snapshot) error {
		snap = hdr
		var entries []syncfs.FileInfo
		err := s.checkSnapshot(fb, snap, func(e rawEntry) error {
			fi, err := e.decode(seq)
			entries = append(entries, fi)
			return err
		})
		if err != nil {
			return err
		}
		if snap.Delta {
			snap.Entries = entries
			snap.Blocks = entryBlocks(entries)
		}
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("reading snapshot %d of %q in %s: %w", seq, folder, s.path, err)
	}
	return snap, nil
}

// viewSnapshot calls fn, in a read transaction, with folder's buckets and
// the header of its snapshot seq, or returns ErrSnapshotNotFound.
func (s *Store) viewSnapshot(folder string, seq uint64, fn func(fb *folderTx, hdr Snapshot) error) error {
	if s.db == nil {
		return ErrClosed
	}
	return s.db.View(func(tx *bbolt.Tx) error {
		fb, err := s.openFolder(tx, folder)
		if err != nil {
			return err
		}
		if fb == nil {
			return ErrSnapshotNotFound
		}
		hdr, err := fb.header(seq)
		if err != nil {
			return err
		}
		return fn(fb, hdr)
	})
}

// Folders returns the names of the folders with snapshots, sorted.
func (s *Store) Folders() ([]string, error) {
	if s.db == nil {
		return nil, ErrClosed
	}
	var out []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEachBucket(func(name []byte) error {
			// A folder whose first Append is under way (or did not
			// commit) has buckets but no snapshot yet.
			if k, _ := tx.Bucket(bucketSnapshots).Bucket(name).Cursor().First(); k != nil {
				out = append(out, string(name))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing folders in %s: %w", s.path, err)
	}
	return out, nil
}

func decodeHeader(folder string, k, v []byte) (Snapshot, error) {
	var snap Snapshot
	if len(k) != 8 {
		return snap, fmt.Errorf("snapshot key %x is not a sequence number: %w", k, ErrTampered)
	}
	if err := canon.Unmarshal(v, &snap, maxRecord); err != nil {
		return snap, fmt.Errorf("decoding snapshot %d: %v: %w", binary.BigEndian.Uint64(k), err, ErrTampered)
	}
	if snap.Folder != folder || snap.Seq != binary.BigEndian.Uint64(k) {
		return snap, fmt.Errorf("snapshot stored as %q %d says it is %q %d: %w", folder, binary.BigEndian.Uint64(k), snap.Folder, snap.Seq, ErrTampered)
	}
	return snap, nil
}

// entryBlocks returns the blocks of entries' live files, sorted, each once.
func entryBlocks(entries []syncfs.FileInfo) []syncfs.Hash {
	var out []syncfs.Hash
	for _, fi := range entries {
		for _, b := range liveBlocks(fi) {
			out = append(out, b.Hash)
		}
	}
	return sortHashes(out)
}

func compareNames(a, b syncfs.FileInfo) int { return strings.Compare(a.Name, b.Name) }
