package folderstore

import (
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// update runs fn in a write transaction and then counts one more write
// (gen), committed or not: a Usage read that began before it is not
// taken for current after it.
func (s *Store) update(fn func(*bbolt.Tx) error) error {
	defer s.gen.Add(1)
	return s.db.Update(fn)
}

// usageMemo shares a folder's Usage read among its callers. A read walks
// the folder's refs index, seconds at a million files, and every member's
// 'folder status' asks for it: an agent that asks again and again while a
// large folder syncs would otherwise have the server walk the index for
// each question, several walks at once, and all the time while it writes.
// Callers that come while a read is under way wait for it and take its
// result (what they would have had a moment sooner); later ones take it
// while no write was done since it began, or, after a long read (one of
// usageSlowRead or more), for usageReuse times as long as it took, writes
// or not: reads then take at most a part of the store's time, and a
// usage shown is at most that old. The zero value is ready.
type usageMemo struct {
	mu  sync.Mutex
	m   map[string]*usageRead
	now func() time.Time // nil: time.Now
}

// A long read's result stands for usageReuse times its length.
const (
	usageSlowRead = 50 * time.Millisecond
	usageReuse    = 20
)

type usageRead struct {
	gen   uint64        // the store's write count when the read began
	done  chan struct{} // closed once the fields below are set
	ended time.Time
	took  time.Duration
	u     Usage
	err   error
}

// stands reports whether r, done, answers at now, when the store's write
// count is gen.
func (r *usageRead) stands(gen uint64, now time.Time) bool {
	if r.err != nil {
		return false
	}
	return r.gen == gen || (r.took >= usageSlowRead && now.Sub(r.ended) < usageReuse*r.took)
}

// get returns folder's usage: the read under way's, the last read's if it
// stands (usageRead.stands), or read anew.
func (m *usageMemo) get(folder string, gen *atomic.Uint64, read func(string) (Usage, error)) (Usage, error) {
	clock := m.now
	if clock == nil {
		clock = time.Now
	}
	m.mu.Lock()
	cur := gen.Load()
	if r := m.m[folder]; r != nil {
		select {
		case <-r.done:
			if r.stands(cur, clock()) {
				m.mu.Unlock()
				return r.u, nil
			}
		default:
			m.mu.Unlock()
			<-r.done
			return r.u, r.err
		}
	}
	r := &usageRead{gen: cur, done: make(chan struct{})}
	if m.m == nil {
		m.m = map[string]*usageRead{}
	}
	m.m[folder] = r
	m.mu.Unlock()
	defer close(r.done)
	began := clock()
	r.u, r.err = read(folder)
	r.ended = clock()
	r.took = r.ended.Sub(began)
	return r.u, r.err
}
