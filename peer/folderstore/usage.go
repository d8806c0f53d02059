package folderstore

import (
	"sync"
	"sync/atomic"

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
// each question, several walks at once. Callers that come while a read is
// under way wait for it and take its result (what they would have had a
// moment sooner); later ones take it while no write was done since it
// began. The zero value is ready.
type usageMemo struct {
	mu sync.Mutex
	m  map[string]*usageRead
}

type usageRead struct {
	gen  uint64        // the store's write count when the read began
	done chan struct{} // closed once u and err are set
	u    Usage
	err  error
}

// get returns folder's usage: the read under way's, the last read's if gen
// has not moved since it began, or read anew.
func (m *usageMemo) get(folder string, gen *atomic.Uint64, read func(string) (Usage, error)) (Usage, error) {
	m.mu.Lock()
	now := gen.Load()
	if r := m.m[folder]; r != nil {
		select {
		case <-r.done:
			if r.err == nil && r.gen == now {
				m.mu.Unlock()
				return r.u, nil
			}
		default:
			m.mu.Unlock()
			<-r.done
			return r.u, r.err
		}
	}
	r := &usageRead{gen: now, done: make(chan struct{})}
	if m.m == nil {
		m.m = map[string]*usageRead{}
	}
	m.m[folder] = r
	m.mu.Unlock()
	defer close(r.done)
	r.u, r.err = read(folder)
	return r.u, r.err
}
