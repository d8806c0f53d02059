package peer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
)

// relayedPair is two hosts, a and b, connected only through the relay of
// a third, as two devices through a server.
func relayedPair(t *testing.T) (a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mk := func(name string, opts ...libp2p.Option) host.Host {
		opts = append([]libp2p.Option{libp2p.Identity(identitytest.Key(name).Libp2p()), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics()}, opts...)
		h, err := libp2p.New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	r := mk("relay-server")
	rs, err := relayv2.New(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	a, b = mk("relayed-a"), mk("relayed-b")
	rinfo := lpeer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}
	for _, h := range []host.Host{a, b} {
		if err := h.Connect(ctx, rinfo); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.Reserve(ctx, b, rinfo); err != nil {
		t.Fatalf("reservation at the relay: %v", err)
	}
	circuit, err := ma.NewMultiaddr("/p2p/" + r.ID().String() + "/p2p-circuit")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Connect(network.WithAllowLimitedConn(ctx, "test"), lpeer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		t.Fatalf("connecting through the relay: %v", err)
	}
	if a.Network().Connectedness(b.ID()) != network.Limited {
		t.Fatalf("a to b: %v, want a relayed (limited) connection only", a.Network().Connectedness(b.ID()))
	}
	return a, b
}

// Over a relayed (limited) connection the folder transport carries
// indexes and notifications and never blocks: it does not open a block
// stream, and refuses one that arrives.
func TestFolderTransportKeepsBlocksOffRelays(t *testing.T) {
	a, b := relayedPair(t)
	ta, tb := peer.FolderTransport(a), peer.FolderTransport(b)
	served := make(chan protocol.ID, 8)
	for _, proto := range []protocol.ID{foldersync.ProtoIndex, foldersync.ProtoNotify, foldersync.ProtoBlock} {
		tb.SetHandler(proto, func(s foldersync.Stream, from lpeer.ID) {
			served <- proto
			_, _ = s.Write([]byte{1})
			_ = s.Close()
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	for _, proto := range []protocol.ID{foldersync.ProtoIndex, foldersync.ProtoNotify} {
		s, err := ta.NewStream(ctx, b.ID(), proto, true)
		if err != nil {
			t.Fatalf("%s over the relayed connection: %v", proto, err)
		}
		var buf [1]byte
		if _, err := s.Read(buf[:]); err != nil {
			t.Fatalf("%s over the relayed connection: reading: %v", proto, err)
		}
		s.Close()
		if got := <-served; got != proto {
			t.Fatalf("served %s, want %s", got, proto)
		}
	}

	start := time.Now()
	if s, err := ta.NewStream(ctx, b.ID(), foldersync.ProtoBlock, true); err == nil {
		s.Close()
		t.Fatal("the folder transport opened a block stream over a relayed connection")
	} else if !errors.Is(err, network.ErrLimitedConn) {
		t.Errorf("block stream over a relayed connection: %v, want ErrLimitedConn", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("refusing the block stream took %v: it should fail at once, for the engine to ask a server", took)
	}

	// A host that opens a block stream over the relayed connection anyway
	// is refused by the transport's handler.
	s, err := a.NewStream(network.WithAllowLimitedConn(ctx, "test"), b.ID(), foldersync.ProtoBlock)
	if err == nil {
		var buf [1]byte
		_, err = s.Read(buf[:])
		s.Close()
	}
	if err == nil {
		t.Fatal("a block stream over a relayed connection was answered")
	}
	select {
	case got := <-served:
		t.Fatalf("the handler of %s ran for a stream over a relayed connection", got)
	default:
	}
}
