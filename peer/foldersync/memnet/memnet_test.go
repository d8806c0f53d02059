package memnet_test

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer/foldersync"
	"github.com/baton-sync/baton/peer/foldersync/memnet"
	"github.com/baton-sync/baton/peer/wire"
)

var _ foldersync.Transport = (*memnet.Host)(nil)

func hosts(t *testing.T) (*memnet.Net, *memnet.Host, *memnet.Host) {
	n := memnet.New()
	return n, n.Host(identitytest.Key("memnet-a").ID()), n.Host(identitytest.Key("memnet-b").ID())
}

func TestExchangeAndConnections(t *testing.T) {
	_, a, b := hosts(t)
	news, stop, _ := b.Connected()
	defer stop()
	b.SetHandler("/echo", func(s wire.Stream, from lpeer.ID) {
		wire.Serve(s, time.Now().Add(time.Second), 64, func(req []byte) ([]byte, error) {
			return append([]byte(from.String()[:4]+":"), req...), nil
		})
	})
	ctx := context.Background()
	if _, err := a.NewStream(ctx, b.ID(), "/echo", false); !errors.Is(err, memnet.ErrNotConnected) {
		t.Fatalf("a stream without dialing to a host not connected: %v", err)
	}
	s, err := a.NewStream(ctx, b.ID(), "/echo", true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := wire.Exchange(s, time.Now().Add(time.Second), []byte("hi"), 64)
	if err != nil || string(got) != a.ID().String()[:4]+":hi" {
		t.Fatalf("Exchange = %q, %v", got, err)
	}
	select {
	case p := <-news:
		if p != a.ID() {
			t.Errorf("b was told of %s; want a", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("b was not told a connected")
	}
	if ps := a.Peers(); len(ps) != 1 || ps[0] != b.ID() {
		t.Errorf("a's peers = %v", ps)
	}
	if _, err := a.NewStream(ctx, b.ID(), "/nothing", false); !errors.Is(err, memnet.ErrNoProtocol) {
		t.Errorf("a protocol b does not serve: %v", err)
	}
}

func TestResetAndDeadline(t *testing.T) {
	net, a, b := hosts(t)
	if err := net.Connect(a.ID(), b.ID()); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	b.SetHandler("/read", func(s wire.Stream, _ lpeer.ID) {
		_, err := io.ReadAll(s)
		got <- err
	})
	s, err := a.NewStream(context.Background(), b.ID(), "/read", false)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = s.Write([]byte("partial"))
	_ = s.Reset()
	if err := <-got; !errors.Is(err, memnet.ErrReset) {
		t.Errorf("the other end read after a reset: %v; want ErrReset", err)
	}

	s, err = a.NewStream(context.Background(), b.ID(), "/read", false)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a read past the deadline: %v", err)
	}
	if err := <-got; err == nil {
		t.Error("the other end read to a clean end after the deadline broke the stream")
	}
}

// A writer waits while the reader is behind, and everything written
// arrives in order.
func TestLargeTransfer(t *testing.T) {
	net, a, b := hosts(t)
	_ = net.Connect(a.ID(), b.ID())
	const size = 20 << 20
	done := make(chan int64, 1)
	b.SetHandler("/sink", func(s wire.Stream, _ lpeer.ID) {
		var sum int64
		buf := make([]byte, 64<<10)
		for {
			n, err := s.Read(buf)
			for _, c := range buf[:n] {
				sum += int64(c)
			}
			if err != nil {
				break
			}
		}
		done <- sum
	})
	s, _ := a.NewStream(context.Background(), b.ID(), "/sink", false)
	data := make([]byte, size)
	var want int64
	for i := range data {
		data[i] = byte(i * 7)
		want += int64(data[i])
	}
	if _, err := s.Write(data); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite()
	if got := <-done; got != want {
		t.Errorf("sum of bytes received %d; want %d", got, want)
	}
}
