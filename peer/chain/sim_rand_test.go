package chain_test

import (
	"bytes"
	cryptorand "crypto/rand"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// raft draws its randomized election timeouts from crypto/rand. So that a
// seed replays exactly, even while seeds run in parallel, each seed's
// goroutine reads its own ChaCha8 stream: seededRand replaces
// crypto/rand.Reader for the duration of a test (nothing else in these
// tests reads it) and serves every goroutine registered with it from its
// own stream; others get real randomness.
type seededRand struct {
	mu   sync.Mutex
	by   map[uint64]*rand.ChaCha8
	real io.Reader
}

// useSeededRand installs a seededRand until t ends. t and its ancestors
// must not be parallel; its subtests may be.
func useSeededRand(t *testing.T) *seededRand {
	s := &seededRand{by: map[uint64]*rand.ChaCha8{}, real: cryptorand.Reader}
	cryptorand.Reader = s
	t.Cleanup(func() { cryptorand.Reader = s.real })
	return s
}

// register serves the calling goroutine from a stream of seed until t ends.
// The sim runs on t's goroutine only.
func (s *seededRand) register(t *testing.T, seed uint64) {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	id := goroutineID()
	s.mu.Lock()
	s.by[id] = rand.NewChaCha8(key)
	s.mu.Unlock()
	t.Cleanup(func() {
		s.mu.Lock()
		delete(s.by, id)
		s.mu.Unlock()
	})
}

func (s *seededRand) Read(b []byte) (int, error) {
	s.mu.Lock()
	r := s.by[goroutineID()]
	s.mu.Unlock()
	if r == nil {
		return s.real.Read(b)
	}
	return r.Read(b)
}

// goroutineID is the calling goroutine's ID, from the header of its stack
// trace ("goroutine 42 [running]:").
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		panic("goroutineID: cannot parse the stack header")
	}
	return id
}
