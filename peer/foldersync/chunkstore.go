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
// an entry of a small file otherwise).
const spillAbove = 1 << 16

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

	mu     sync.Mutex
	next   uint64   // the next chunk's key
	freed  []uint64 // chunks no tree holds: removed at the next put
	failed bool     // a write failed (logged once)
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
// transaction, with the removal of the freed ones, and lets go of their
// data. A chunk whose store fails keeps its data.
func (s *chunkStore) put(chunks []*pubChunk) {
	s.mu.Lock()
	freed := s.freed
	s.freed = nil
	first := s.next
	s.next += uint64(len(chunks))
	s.mu.Unlock()
	defer s.rel.Settle(s.b)
	err := s.b.Update(func(tx *bbolt.Tx) error {
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
