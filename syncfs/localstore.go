package syncfs

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sync"

	"go.etcd.io/bbolt"
)

// DefaultLocalWhole is how many entries a Local opened from a DB holds
// in memory, all of them, while the folder has no more: a folder's every
// lookup is then a map's (about 5 MB at the limit). Past it, the Local
// holds only what changed since its last Flush and the last entries it
// wrote (about 150 bytes an entry in memory otherwise), and a read from
// the DB costs a microsecond or two (the packed form, storedform.go). A
// folder that grows past the limit in a sync is held whole until it does:
// with 100,000 files, the agents peaked at 102 and 84 MiB with a limit of
// 65,536, at 90 and 82 MiB with this one (and at 103 to 105 MiB with
// 131,072).
const DefaultLocalWhole = 1 << 15

// flushTxEntries bounds the entries one transaction of a Flush of a
// Local held on disk writes (one held whole writes maxTxEntries). With
// its indexes, an entry's block key lands on a page of its own in the
// block index (keys begin with a hash): bbolt holds each such page read
// and written (about 7 KB) until the transaction commits, 7 MB for 1,024
// new entries, the most of an agent's heap at its peak in a sync of
// 100,000 files. Each transaction is made durable on its own, so a Local
// held whole, whose entries are in memory anyway, stores in fewer: at
// 256 a transaction, a sync of 10,000 files took 0.5 s more.
const flushTxEntries = 256

// localCache is how many entries a Local held past its limit keeps in
// memory after a Flush, the last ones written (those the sync that wrote
// them is likeliest to read again): past it, a Flush lets go of all.
const localCache = 1 << 14

// gone, held in a Local's map, says the name has neither entry nor
// stat, whatever its DB holds.
const gone = "\x00"

// eachWindow is how many stored entries a walk of a Local reads in one
// read transaction: none is open while the loop's body runs.
const eachWindow = 512

// localStore is where a Local opened from a DB keeps its entries: in the
// DB's bucket of the folder, as PutLocal stores them. Its map holds
// every stored entry while whole, and otherwise the names changed since
// the last Flush (or gone), the stats of names without an entry, which
// the DB does not hold, and up to localCache entries written by the last
// Flushes.
type localStore struct {
	db     *DB
	folder string
	dirty  map[string]struct{} // names changed since the last Flush
	whole  bool                // the map holds every stored entry
	limit  int                 // entries held whole at most
	cache  int                 // entries kept after a Flush once not whole (localCache)

	mu  sync.Mutex
	err error // the first read that failed
}

// OpenLocal returns folder's stored Local, empty if none was stored, kept
// in db: it holds its entries in memory while they are at most whole
// (DefaultLocalWhole, unless a test says otherwise), and past that only
// those changed since its last Flush, which writes them to db. Every stored entry is validated. Only
// one Local of a folder may be open at once, and the folder not stored
// otherwise (PutLocal, PutLocalEntries, DeleteFolder) meanwhile.
func (db *DB) OpenLocal(folder string, whole int) (Local, error) {
	defer db.rel.Settle(db.b)
	s := &localStore{db: db, folder: folder, dirty: map[string]struct{}{}, whole: true, limit: whole, cache: localCache}
	t := newLocalTable(0)
	t.st = s
	indexed := false // the indexes beside the entries are made
	err := db.b.View(func(tx *bbolt.Tx) error {
		fb, err := folderBucket(tx, folder, false)
		if err != nil || fb == nil {
			return err
		}
		indexed = fb.Get(keyIndexed) != nil
		lb := fb.Bucket(bucketLocal)
		if lb == nil {
			return nil
		}
		return lb.ForEach(func(k, v []byte) error {
			db.rel.Touched(tx)
			e, upgraded, err := decodeStored(k, v)
			if err != nil {
				return err
			}
			t.files++
			if s.whole && t.files > s.limit {
				s.whole = false
				dirty := make(map[string]string, len(s.dirty))
				for n := range s.dirty {
					dirty[n] = t.m[n]
				}
				t.m = dirty
			}
			if s.whole || upgraded {
				t.m[e.File.Name] = t.pack(&e.File, derefStat(e.Disk), e.Disk != nil)
			}
			if upgraded {
				s.dirty[e.File.Name] = struct{}{} // stored again at the next Flush
			}
			return nil
		})
	})
	if err != nil {
		return Local{}, fmt.Errorf("loading local index of folder %s: %w", folder, err)
	}
	if !indexed {
		if err := db.makeIndexes(folder); err != nil {
			return Local{}, err
		}
	}
	return Local{t: t}, nil
}

func derefStat(d *DiskStat) DiskStat {
	if d == nil {
		return DiskStat{}
	}
	return *d
}

// localBucket returns folder's bucket of local entries, nil if none.
func localBucket(tx *bbolt.Tx, folder string) (*bbolt.Bucket, error) {
	fb, err := folderBucket(tx, folder, false)
	if err != nil || fb == nil {
		return nil, err
	}
	return fb.Bucket(bucketLocal), nil
}

// Flush writes to its DB what l holds that changed since the last Flush,
// and then lets go of what l need not hold in memory. A Local not opened
// from a DB has nothing to flush. It returns the first error a read from
// the DB met since l was opened, if one did: l may then have taken a
// stored entry for none.
func (l *Local) Flush() error {
	if l.t == nil || l.t.st == nil {
		return nil
	}
	return l.t.st.flush(l.t)
}

// Unflushed returns how many names of l changed since its last Flush.
func (l *Local) Unflushed() int {
	if l.t == nil || l.t.st == nil {
		return 0
	}
	return len(l.t.st.dirty)
}

func (s *localStore) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

func (s *localStore) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// read returns the stored entry of name.
func (s *localStore) read(name string) (held, bool) {
	var e *storedEntry
	err := s.db.b.View(func(tx *bbolt.Tx) error {
		lb, err := localBucket(tx, s.folder)
		if err != nil || lb == nil {
			return err
		}
		s.db.rel.Touched(tx)
		v := lb.Get([]byte(name))
		if v == nil {
			return nil
		}
		d, _, err := decodeStored([]byte(name), v)
		e = &d
		return err
	})
	if err != nil {
		s.fail(fmt.Errorf("reading %s of the local index of folder %s: %w", name, s.folder, err))
		return held{}, false
	}
	if e == nil {
		return held{}, false
	}
	return held{s: e}, true
}

// storedWindow is a window of stored entries, in name order.
type storedWindow struct {
	name string
	e    *storedEntry
}

// window returns the stored entries after the name after (nil: from the
// first), at most n.
func (s *localStore) window(after []byte, n int) ([]storedWindow, error) {
	var out []storedWindow
	err := s.db.b.View(func(tx *bbolt.Tx) error {
		lb, err := localBucket(tx, s.folder)
		if err != nil || lb == nil {
			return err
		}
		c := lb.Cursor()
		for k, v := seekAfter(c, after); k != nil && len(out) < n; k, v = c.Next() {
			s.db.rel.Touched(tx)
			e, _, err := decodeStored(k, v)
			if err != nil {
				return err
			}
			out = append(out, storedWindow{name: e.File.Name, e: &e})
		}
		return nil
	})
	s.db.rel.Settle(s.db.b)
	return out, err
}

// each yields what t holds of every name: the stored entries a window at a
// time, as t's map has them if it does, then the names its map holds that
// the DB did not when the walk began. Those are set apart first, so that
// an entry the loop changes is produced once (the loop does not Flush,
// so the DB holds the same names throughout).
func (s *localStore) each(t *localTable, yield func(string, held) bool) {
	var fresh []string // sorted
	err := s.db.b.View(func(tx *bbolt.Tx) error {
		lb, err := localBucket(tx, s.folder)
		if err != nil {
			return err
		}
		for n, v := range t.m {
			if v != gone && (lb == nil || lb.Get([]byte(n)) == nil) {
				fresh = append(fresh, n)
			}
		}
		return nil
	})
	if err != nil {
		s.fail(fmt.Errorf("walking the local index of folder %s: %w", s.folder, err))
		return
	}
	slices.Sort(fresh)
	var after []byte
	for {
		win, err := s.window(after, eachWindow)
		if err != nil {
			s.fail(fmt.Errorf("walking the local index of folder %s: %w", s.folder, err))
			return
		}
		for _, w := range win {
			h := held{s: w.e}
			if v, ok := t.m[w.name]; ok {
				h = held{v: v}
			}
			if !yield(w.name, h) {
				return
			}
		}
		if len(win) < eachWindow {
			break
		}
		after = []byte(win[len(win)-1].name)
	}
	for _, n := range fresh {
		if h, ok := t.lookup(n); ok && !yield(n, h) {
			return
		}
	}
}

// flush writes the names changed since the last flush, maxTxEntries a
// transaction, and lets go of the map's entries once past the limit.
func (s *localStore) flush(t *localTable) error {
	if err := s.failed(); err != nil {
		return err
	}
	if len(s.dirty) > 0 {
		defer s.db.rel.Settle(s.db.b)
		names := slices.Sorted(maps.Keys(s.dirty))
		for len(names) > 0 {
			n := flushTxEntries
			if s.whole {
				n = maxTxEntries
			}
			chunk := names[:min(len(names), n)]
			names = names[len(chunk):]
			if err := s.db.b.Update(func(tx *bbolt.Tx) error { return s.write(tx, t, chunk) }); err != nil {
				return fmt.Errorf("storing %d entries of the local index of folder %s: %w", len(s.dirty), s.folder, err)
			}
		}
		if len(s.dirty) > 1024 {
			s.dirty = map[string]struct{}{}
		} else {
			clear(s.dirty)
		}
	}
	if s.whole && len(t.m) > s.limit {
		s.whole = false
	}
	if !s.whole && len(t.m) > s.cache {
		// Only the stats of names without an entry stay: the DB does
		// not hold them.
		keep := map[string]string{}
		for n, v := range t.m {
			if !packedHasFile(v) && packedHasStat(v) {
				keep[n] = v
			}
		}
		t.m = keep
	}
	return nil
}

// write stores names (sorted) as t holds them, or removes those it holds
// no entry of.
func (s *localStore) write(tx *bbolt.Tx, t *localTable, names []string) error {
	fb, err := folderBucket(tx, s.folder, true)
	if err != nil {
		return err
	}
	lb, err := fb.CreateBucketIfNotExists(bucketLocal)
	if err != nil {
		return err
	}
	ix, err := openIndexes(fb)
	if err != nil {
		return err
	}
	if last, _ := lb.Cursor().Last(); last == nil || bytes.Compare(last, []byte(names[0])) < 0 {
		lb.FillPercent = 0.9 // written after every stored key, in key order
	}
	for _, n := range names {
		s.db.rel.Touched(tx)
		var old *storedEntry
		if ov := lb.Get([]byte(n)); ov != nil {
			o, _, err := decodeStored([]byte(n), ov)
			if err != nil {
				return err
			}
			old = &o
		}
		v := t.m[n]
		if !packedHasFile(v) {
			if err := lb.Delete([]byte(n)); err != nil {
				return fmt.Errorf("removing %s: %w", n, err)
			}
			if err := ix.index(n, old, nil); err != nil {
				return fmt.Errorf("unindexing %s: %w", n, err)
			}
			continue
		}
		f := t.unpackFile(n, v)
		if err := ix.index(n, old, &f); err != nil {
			return fmt.Errorf("indexing %s: %w", n, err)
		}
		if err := lb.Put([]byte(n), encodeEntry(Local{t: t}, f)); err != nil {
			return fmt.Errorf("storing %s: %w", n, err)
		}
	}
	return nil
}
