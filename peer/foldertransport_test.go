package peer_test

import (
	"context"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
	"github.com/baton-sync/baton/peer/wire"
)

// TestLoopbackHost connects two loopback hosts and exchanges a frame over
// their folder transports: the handler learns the caller's peer ID, both
// hear of the connection, and a stream that may not dial fails once the
// hosts are gone.
func TestLoopbackHost(t *testing.T) {
	a, err := peer.ListenLoopback(identitytest.Key("loopback-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := peer.ListenLoopback(identitytest.Key("loopback-b"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ta, tb := a.Transport(), b.Transport()
	if ta.ID() != a.ID() || tb.ID() != b.ID() {
		t.Fatalf("transport IDs %s, %s; want the hosts' %s, %s", ta.ID(), tb.ID(), a.ID(), b.ID())
	}
	news, stop, err := tb.Connected()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	tb.SetHandler("/echo", func(s foldersync.Stream, from lpeer.ID) {
		wire.Serve(s, time.Now().Add(5*time.Second), 64, func(req []byte) ([]byte, error) {
			return []byte(from.String() + ":" + string(req)), nil
		})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ta.NewStream(ctx, b.ID(), "/echo", false); err == nil {
		t.Fatal("a stream that may not dial opened before the hosts connected")
	}
	if err := a.Connect(ctx, b); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-news:
		if id != a.ID() {
			t.Errorf("b heard of %s connecting; want %s", id, a.ID())
		}
	case <-ctx.Done():
		t.Fatal("b never heard of a connecting")
	}
	if got := tb.Peers(); len(got) != 1 || got[0] != a.ID() {
		t.Errorf("b's peers = %v; want [%s]", got, a.ID())
	}
	s, err := ta.NewStream(ctx, b.ID(), "/echo", false)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := wire.Exchange(s, time.Now().Add(5*time.Second), []byte("hi"), 256)
	if err != nil {
		t.Fatal(err)
	}
	if want := a.ID().String() + ":hi"; string(resp) != want {
		t.Errorf("answer %q; want %q", resp, want)
	}
}
