package folderstore

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A usage read is shared by the callers that come while it is under way
// and kept until the next write; a failed read is not kept.
func TestUsageMemo(t *testing.T) {
	var m usageMemo
	var gen atomic.Uint64
	var reads atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	read := func(folder string) (Usage, error) {
		n := reads.Add(1)
		started <- struct{}{}
		<-release
		return Usage{Snapshots: int(n)}, nil
	}
	// One read under way; the others wait for it and take its result.
	var wg sync.WaitGroup
	got := make([]Usage, 6)
	wg.Go(func() { got[0], _ = m.get("f", &gen, read) })
	<-started
	for i := 1; i < len(got); i++ {
		wg.Go(func() { got[i], _ = m.get("f", &gen, read) })
	}
	close(release)
	wg.Wait()
	for i, u := range got {
		if u.Snapshots != 1 {
			t.Errorf("caller %d got the usage of read %d; want the one read's", i, u.Snapshots)
		}
	}
	// Nothing written since: the result stands, no read.
	if u, _ := m.get("f", &gen, read); u.Snapshots != 1 || reads.Load() != 1 {
		t.Errorf("with nothing written, get = read %d after %d reads; want the first read's, no other", u.Snapshots, reads.Load())
	}
	// Another folder is read on its own.
	if u, _ := m.get("g", &gen, read); u.Snapshots != 2 {
		t.Errorf("another folder's get = read %d; want read 2", u.Snapshots)
	}
	drain(t, started)
	// A write: read again.
	gen.Add(1)
	if u, _ := m.get("f", &gen, read); u.Snapshots != 3 {
		t.Errorf("after a write, get = read %d; want a new read (3)", u.Snapshots)
	}
	drain(t, started)
	// A failed read is not kept.
	failing := func(string) (Usage, error) { reads.Add(1); return Usage{}, errors.New("disk gone") }
	gen.Add(1)
	if _, err := m.get("f", &gen, failing); err == nil {
		t.Fatal("a failed read returned no error")
	}
	if u, err := m.get("f", &gen, read); err != nil || u.Snapshots != 5 {
		t.Errorf("after a failed read, get = read %d, %v; want a new read (5)", u.Snapshots, err)
	}
}

// After a long read, its result stands for usageReuse times as long as it
// took, writes or not; then a write makes the next caller read anew. A
// short read's result never stands past a write.
func TestUsageMemoLongRead(t *testing.T) {
	now := time.Unix(1000, 0)
	m := usageMemo{now: func() time.Time { return now }}
	var gen atomic.Uint64
	reads := 0
	read := func(took time.Duration) func(string) (Usage, error) {
		return func(string) (Usage, error) {
			reads++
			now = now.Add(took)
			return Usage{Snapshots: reads}, nil
		}
	}
	if u, _ := m.get("f", &gen, read(time.Second)); u.Snapshots != 1 {
		t.Fatalf("first get = read %d", u.Snapshots)
	}
	gen.Add(1)
	now = now.Add(usageReuse*time.Second - time.Millisecond)
	if u, _ := m.get("f", &gen, read(time.Second)); u.Snapshots != 1 {
		t.Errorf("a write %v after a read of 1 s: get = read %d; want the first read's", usageReuse*time.Second-time.Millisecond, u.Snapshots)
	}
	now = now.Add(time.Millisecond)
	if u, _ := m.get("f", &gen, read(time.Millisecond)); u.Snapshots != 2 {
		t.Errorf("%v after a read of 1 s and a write: get = read %d; want a new read (2)", usageReuse*time.Second, u.Snapshots)
	}
	gen.Add(1)
	if u, _ := m.get("f", &gen, read(time.Millisecond)); u.Snapshots != 3 {
		t.Errorf("a write at once after a read of 1 ms: get = read %d; want a new read (3)", u.Snapshots)
	}
}

// drain takes the start a read just made, failing if none did.
func drain(t *testing.T, started chan struct{}) {
	t.Helper()
	select {
	case <-started:
	default:
		t.Fatal("no read was made")
	}
}
