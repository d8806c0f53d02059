package syncfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/baton-sync/baton/internal/boltmap"
	"github.com/baton-sync/baton/internal/canon"
)

// PeerStore holds other devices' index entries on disk, so that a host
// keeps none of them in memory, not even their names: a plan compares the
// local entries with the stored entries' summaries (see PeerSummary,
// Summaries and EachSummary) and loads only those that differ. Each index
// is a set of entries under a key the caller chooses; entries are stored
// one per name, each as its summary and then its canonical encoding.
//
// It is a cache, not a record: its file is made anew when opened, written
// without fsync, and whatever it held before is fetched from the peers
// again. The caller verifies the entries before it puts them. PeerStore is
// safe for concurrent use.
type PeerStore struct {
	b   *bbolt.DB
	rel boltmap.Releaser
}

// OpenPeerStore makes a new, empty store at path, replacing any file there.
func OpenPeerStore(path string) (*PeerStore, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("opening peer index store %s: %w", path, err)
	}
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: time.Second, NoSync: true, NoFreelistSync: true,
		InitialMmapSize: boltmap.InitialMmap(peerStoreMmapWindows),
	})
	if err != nil {
		return nil, fmt.Errorf("opening peer index store %s: %w", path, err)
	}
	return &PeerStore{b: b}, nil
}

// peerStoreMmapWindows is the address space a PeerStore maps at first on
// Windows, where the file is made this large: what 100,000 entries of a
// few peers take.
const peerStoreMmapWindows = 64 << 20

// Close closes the store; its file stays until the next OpenPeerStore.
func (s *PeerStore) Close() error { return s.b.Close() }

// Put stores files (each validated by the caller) under key, replacing the
// entries of the same names. Entries sorted by name are the cheapest to
// put.
func (s *PeerStore) Put(key string, files []FileInfo) error {
	defer s.rel.Settle(s.b)
	// In transactions of at most maxTxEntries: bbolt holds a
	// transaction's pages until it commits.
	for len(files) > 0 {
		chunk := files[:min(len(files), maxTxEntries)]
		files = files[len(chunk):]
		err := s.b.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte(key))
			if err != nil {
				return err
			}
			b.FillPercent = 0.9 // pages come in name order
			for _, f := range chunk {
				s.rel.Touched(tx)
				enc, err := canon.Marshal(f)
				if err != nil {
					return fmt.Errorf("encoding %q: %w", f.Name, err)
				}
				v := make([]byte, summaryLen, summaryLen+len(enc))
				binary.LittleEndian.PutUint64(v, uint64(SummaryOf(f)))
				if err := b.Put([]byte(f.Name), append(v, enc...)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("storing %d entries of peer index %s: %w", len(chunk), key, err)
		}
	}
	return nil
}

// Move puts the entries stored under src into dst, replacing those of the
// same names, and drops src. It writes at most maxTxEntries entries a
// transaction: on an error, dst may hold some of src's entries.
func (s *PeerStore) Move(dst, src string) error {
	defer s.rel.Settle(s.b)
	var last []byte
	for done := false; !done; {
		err := s.b.Update(func(tx *bbolt.Tx) error {
			from := tx.Bucket([]byte(src))
			if from == nil {
				done = true
				return nil
			}
			to, err := tx.CreateBucketIfNotExists([]byte(dst))
			if err != nil {
				return err
			}
			c := from.Cursor()
			k, v := seekAfter(c, last)
			for n := 0; k != nil && n < maxTxEntries; k, v = c.Next() {
				s.rel.Touched(tx)
				if err := to.Put(bytes.Clone(k), bytes.Clone(v)); err != nil {
					return err
				}
				last = bytes.Clone(k)
				n++
			}
			done = k == nil
			return nil
		})
		if err != nil {
			return fmt.Errorf("moving peer index %s into %s: %w", src, dst, err)
		}
	}
	return s.Drop(src)
}

// Get returns the entries of names (those key holds) stored under key.
// Their names are the strings of names, not copies. The names are looked
// up in order (sorted first if they are not): each lookup then finds its
// page where the one before it left off, rather than touch one in no
// order.
func (s *PeerStore) Get(key string, names []string) (Snapshot, error) {
	defer s.rel.Settle(s.b)
	if !slices.IsSorted(names) {
		names = slices.Sorted(slices.Values(names))
	}
	out := make(Snapshot, len(names))
	err := s.b.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(key))
		if b == nil {
			return nil
		}
		for _, n := range names {
			s.rel.Touched(tx)
			v := b.Get([]byte(n))
			if v == nil {
				continue
			}
			f, err := decodePeerEntry(n, v)
			if err != nil {
				return err
			}
			f.Name = n
			out[n] = f
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading entries of peer index %s: %w", key, err)
	}
	return out, nil
}

// All returns every entry stored under key.
func (s *PeerStore) All(key string) (Snapshot, error) {
	defer s.rel.Settle(s.b)
	out := Snapshot{}
	err := s.b.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(key))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			s.rel.Touched(tx)
			f, err := decodePeerEntry(string(k), v)
			if err != nil {
				return err
			}
			out[f.Name] = f
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("loading peer index %s: %w", key, err)
	}
	return out, nil
}

// Summaries calls fn with each of names and the summary of its entry
// stored under key (ok false if key holds none), in one read transaction.
// It sorts names first, in place, and looks them up in that order, as Get
// does. fn must not use the store.
func (s *PeerStore) Summaries(key string, names []string, fn func(name string, sum PeerSummary, ok bool)) error {
	if !slices.IsSorted(names) {
		slices.Sort(names)
	}
	defer s.rel.Settle(s.b)
	err := s.b.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(key))
		for _, name := range names {
			s.rel.Touched(tx)
			if b == nil {
				fn(name, 0, false)
				continue
			}
			v := b.Get([]byte(name))
			if v == nil {
				fn(name, 0, false)
				continue
			}
			sum, err := summaryIn(name, v)
			if err != nil {
				return err
			}
			fn(name, sum, true)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading summaries of peer index %s: %w", key, err)
	}
	return nil
}

// EachSummary calls fn with the name and summary of each entry stored
// under key after the name after ("": from the first), in name order, in
// one read transaction, until fn returns false. The name's bytes are the
// store's: valid only during the call, and never to be modified. fn must
// not use the store.
func (s *PeerStore) EachSummary(key, after string, fn func(name []byte, sum PeerSummary) bool) error {
	defer s.rel.Settle(s.b)
	err := s.b.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(key))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.First()
		if after != "" {
			k, v = c.Seek([]byte(after))
			if k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			sum, err := summaryIn(k, v)
			if err != nil {
				return err
			}
			s.rel.Touched(tx)
			if !fn(k, sum) {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading summaries of peer index %s: %w", key, err)
	}
	return nil
}

// summaryLen is the size of the summary a stored entry begins with.
const summaryLen = 8

// summaryIn returns the summary of the entry v stored under the name n
// (a string or the store's bytes: a walk converts no name it reads).
func summaryIn[N string | []byte](n N, v []byte) (PeerSummary, error) {
	if len(v) < summaryLen {
		return 0, fmt.Errorf("%w: entry %q of %d bytes", ErrBadDB, n, len(v))
	}
	return PeerSummary(binary.LittleEndian.Uint64(v)), nil
}

// Drop forgets the entries stored under key. They are deleted
// maxTxEntries a transaction before the bucket is: bbolt deletes a bucket
// by reading every page of it, which made a peer's 100,000 entries (14
// MiB) resident at once.
func (s *PeerStore) Drop(key string) error {
	defer s.rel.Settle(s.b)
	for done := false; !done; {
		err := s.b.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte(key))
			if b == nil {
				done = true
				return nil
			}
			var keys [][]byte
			c := b.Cursor()
			for k, _ := c.First(); k != nil && len(keys) < maxTxEntries; k, _ = c.Next() {
				s.rel.Touched(tx)
				keys = append(keys, bytes.Clone(k))
			}
			if len(keys) == 0 {
				done = true
				return tx.DeleteBucket([]byte(key))
			}
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("dropping peer index %s: %w", key, err)
		}
	}
	return nil
}

// decodePeerEntry decodes the entry stored under the name n.
func decodePeerEntry(n string, v []byte) (FileInfo, error) {
	if _, err := summaryIn(n, v); err != nil {
		return FileInfo{}, err
	}
	var f FileInfo
	if err := canon.Unmarshal(v[summaryLen:], &f, maxEntrySize); err != nil {
		return FileInfo{}, fmt.Errorf("%w: entry %q: %v", ErrBadDB, n, err)
	}
	if f.Name != n {
		return FileInfo{}, fmt.Errorf("%w: entry %q stored under %q", ErrBadDB, f.Name, n)
	}
	return f, nil
}

// PeerSummary is what a PeerStore keeps beside each entry of a peer's
// index, to be read without decoding the entry: a digest of its version, enough to tell,
// without loading the entry, that it is at the version of the local one
// (and so that a plan has nothing to do with it). The digest is keyed
// with a seed drawn when the process starts, so no peer can choose a
// version whose digest is another's; two versions of a name sharing a
// digest by chance (one in 2^64) would leave that change unplanned until
// the entry changes again.
type PeerSummary uint64

// SummaryOf returns f's summary.
func SummaryOf(f FileInfo) PeerSummary {
	var h maphash.Hash
	h.SetSeed(summarySeed)
	var b [8]byte
	for _, c := range f.Version.Counters {
		binary.LittleEndian.PutUint64(b[:], uint64(len(c.Device)))
		h.Write(b[:])
		h.WriteString(c.Device)
		binary.LittleEndian.PutUint64(b[:], c.Value)
		h.Write(b[:])
	}
	return PeerSummary(h.Sum64())
}

// summarySeed keys SummaryOf.
var summarySeed = maphash.MakeSeed()
