package foldersync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/baton-sync/baton/internal/boltmap"
)

// spillAbove is how many entries a published index holds in memory
// whole: past it, the chunks it makes keep their entries in the
// engine's chunkStore, and only their bounds in memory (about 60 bytes
// an entry of a small file otherwise): as the Local's limit
// (syncfs.DefaultLocalWhole), a folder that grows through it while it
// syncs holds that many in memory at its peak.
const spillAbove = 1 << 15

// chunkStore keeps the encoded entries of published index chunks on disk
// (pubchunks.db in Config.DataDir: a cache, made anew at each start and
// written without fsync). A chunk stored there holds only its bounds in
// memory, and reads its entries back each time it is read. A chunk's
// record goes at the first store after no index holds the chunk any more
// (the garbage collector says when). A chunk that could not be stored
// keeps its entries in memory. It is safe for concurrent use.
type chunkStore struct {
	b     *bbolt.DB
	rel   boltmap.Releaser
	log   *slog.Logger
	above int // spill the chunks of trees of more entries than this

	mu    sync.Mutex
	next  uint64   // the next chunk's key
	freed []uint64 // chunks no tree holds: removed at the next put
	// freedPlaces are the buckets of the block indexes no published index
	// holds: removed at the next put.
	freedPlaces [][]byte
	failed      bool // a write failed (logged once)
}

var bucketChunks = []byte("chunks")

// openChunkStore opens the store at path, emptied.
func openChunkStore(path string, log *slog.Logger) (*chunkStore, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("opening published index store %s: %w", path, err)
	}
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: time.Second, NoSync: true, NoFreelistSync: true,
		InitialMmapSize: boltmap.InitialMmap(64 << 20),
	})
	if err != nil {
		return nil, fmt.Errorf("opening published index store %s: %w", path, err)
	}
	err = b.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketChunks)
		return err
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("opening published index store %s: %w", path, err)
	}
	return &chunkStore{b: b, log: log, above: spillAbove, next: 1}, nil
}

// Close closes the store; its file stays until the next open.
func (s *chunkStore) Close() error { return s.b.Close() }

func (s *chunkStore) fail(what string, err error) {
	s.mu.Lock()
	first := !s.failed
	s.failed = true
	s.mu.Unlock()
	if first {
		s.log.Error("published index store: "+what+" (further failures are not logged)", "err", err)
	}
}

func chunkKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// put stores the data of chunks (made in memory, not shared yet) in one
// transaction, with the removal of the freed chunks and block indexes,
// and lets go of their data. A chunk whose store fails keeps its data.
func (s *chunkStore) put(chunks []*pubChunk) {
	s.mu.Lock()
	freed, freedPlaces := s.freed, s.freedPlaces
	s.freed, s.freedPlaces = nil, nil
	first := s.next
	s.next += uint64(len(chunks))
	s.mu.Unlock()
	defer s.rel.Settle(s.b)
	err := s.b.Update(func(tx *bbolt.Tx) error {
		for _, name := range freedPlaces {
			if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, bbolt.ErrBucketNotFound) {
				return err
			}
		}
		b := tx.Bucket(bucketChunks)
		for _, id := range freed {
			s.rel.Touched(tx)
			if err := b.Delete(chunkKey(id)); err != nil {
				return err
			}
		}
		if len(chunks) > 0 {
			b.FillPercent = 0.9 // keys only grow
		}
		for i, c := range chunks {
			s.rel.Touched(tx)
			if err := b.Put(chunkKey(first+uint64(i)), c.data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.mu.Lock()
		s.freed = append(s.freed, freed...)
		s.freedPlaces = append(s.freedPlaces, freedPlaces...)
		s.mu.Unlock()
		s.fail("storing chunks", err)
		return
	}
	for i, c := range chunks {
		c.id, c.store, c.data = first+uint64(i), s, nil
		runtime.AddCleanup(c, s.free, c.id)
	}
}

// free notes that no tree holds chunk id any more.
func (s *chunkStore) free(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.freed = append(s.freed, id)
}

// get returns a copy of the data of chunk id; nil once the store is
// closed (the engine stopped).
func (s *chunkStore) get(id uint64) []byte {
	var out []byte
	s.view(id, func(data []byte) { out = append([]byte(nil), data...) })
	return out
}

// view calls fn with the data of chunk id, valid only until fn returns;
// it does not call fn once the store is closed (the engine stopped).
func (s *chunkStore) view(id uint64, fn func(data []byte)) {
	err := s.b.View(func(tx *bbolt.Tx) error {
		s.rel.Touched(tx)
		v := tx.Bucket(bucketChunks).Get(chunkKey(id))
		if v == nil {
			// Its record goes only once no tree holds it.
			panic(fmt.Sprintf("foldersync: published index chunk %d missing from its store", id))
		}
		fn(v)
		return nil
	})
	if err != nil && !errors.Is(err, bbolt.ErrDatabaseNotOpen) {
		panic(fmt.Sprintf("foldersync: reading published index chunk %d: %v", id, err))
	}
}

// The places of a block index kept in the store (see blockIndex): a
// bucket per index, each place a key of its block's key, its offset (8
// bytes each, big-endian) and its file's name, with no value. A bucket
// goes at the first store after no index holds it.

// newPlaces returns the name of a new, empty bucket of places.
func (s *chunkStore) newPlaces() ([]byte, error) {
	s.mu.Lock()
	id := s.next
	s.next++
	s.mu.Unlock()
	name := append([]byte("places"), chunkKey(id)...)
	err := s.b.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket(name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("making a block index in the published index store: %w", err)
	}
	return name, nil
}

// placesTx is the most places one transaction writes: bbolt holds a
// transaction's pages in memory until it commits.
const placesTx = 8192

// putPlaces adds places (sorted by key) to bucket.
func (s *chunkStore) putPlaces(bucket []byte, places []blockPlace) error {
	defer s.rel.Settle(s.b)
	for len(places) > 0 {
		batch := places[:min(len(places), placesTx)]
		places = places[len(batch):]
		err := s.b.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(bucket)
			if b == nil {
				return fmt.Errorf("block index %x missing", bucket)
			}
			for _, p := range batch {
				s.rel.Touched(tx)
				// A new key each: bbolt holds it until the transaction ends.
				if err := b.Put(placeKey(nil, p), nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("storing a block index's places: %w", err)
		}
	}
	return nil
}

func placeKey(b []byte, p blockPlace) []byte {
	b = binary.BigEndian.AppendUint64(b, p.key)
	b = binary.BigEndian.AppendUint64(b, uint64(p.offset))
	return append(b, p.name...)
}

// findPlaces calls fn with the places in bucket of blocks whose key is
// key, until it returns false.
func (s *chunkStore) findPlaces(bucket []byte, key uint64, fn func(blockPlace) bool) {
	var found []blockPlace // fn runs outside the transaction
	err := s.b.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return fmt.Errorf("block index %x missing", bucket)
		}
		s.rel.Touched(tx)
		prefix := binary.BigEndian.AppendUint64(nil, key)
		c := b.Cursor()
		for k, _ := c.Seek(prefix); len(k) >= 16 && string(k[:8]) == string(prefix); k, _ = c.Next() {
			found = append(found, blockPlace{key: key, offset: int64(binary.BigEndian.Uint64(k[8:16])), name: string(k[16:])})
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, bbolt.ErrDatabaseNotOpen) {
			s.fail("reading a block index", err)
		}
		return
	}
	for _, p := range found {
		if !fn(p) {
			return
		}
	}
}

// freePlaces notes that no index holds bucket any more.
func (s *chunkStore) freePlaces(bucket []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.freedPlaces = append(s.freedPlaces, bucket)
}
