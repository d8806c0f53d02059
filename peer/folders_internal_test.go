package peer

import (
	"context"
	"testing"
	"time"
)

// The folder engine's view is rebuilt debounce after an update is
// applied (the updates meanwhile with it), and every refreshEvery when
// nothing is applied; nothing else wakes the loop.
func TestRefreshViews(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	fr := newFolderRuntime(nil)
	refreshed := make(chan time.Time, 16)
	done := make(chan struct{})
	const debounce = 20 * time.Millisecond
	go func() {
		defer close(done)
		refreshViews(ctx, fr.dirty, debounce, time.Hour, func() { refreshed <- time.Now() })
	}()
	defer func() { cancel(); <-done }()

	for range 3 { // three updates at once: one rebuild
		fr.markDirty()
	}
	marked := time.Now()
	select {
	case at := <-refreshed:
		if d := at.Sub(marked); d < debounce/2 {
			t.Errorf("rebuilt %v after the updates; want after the debounce (%v)", d, debounce)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no rebuild within 10 s of an applied update")
	}
	select {
	case <-refreshed:
		t.Error("a second rebuild for updates applied together")
	case <-time.After(5 * debounce):
	}
	fr.markDirty() // and again later
	select {
	case <-refreshed:
	case <-time.After(10 * time.Second):
		t.Fatal("no rebuild within 10 s of a second update")
	}

	// With nothing applied, it rebuilds every refreshEvery.
	cancel()
	<-done
	ctx2, cancel2 := context.WithCancel(t.Context())
	done2 := make(chan struct{})
	go func() {
		defer close(done2)
		refreshViews(ctx2, fr.dirty, time.Hour, 30*time.Millisecond, func() { refreshed <- time.Now() })
	}()
	defer func() { cancel2(); <-done2 }()
	for i := range 2 {
		select {
		case <-refreshed:
		case <-time.After(10 * time.Second):
			t.Fatalf("rebuild %d: none within 10 s with refreshEvery 30 ms", i+1)
		}
	}
}
