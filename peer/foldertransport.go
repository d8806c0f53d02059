package peer

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer/foldersync"
)

// FolderTransport is the folder sync engine's transport over the libp2p
// host h: libp2p authenticates every stream's remote host by its key.
func FolderTransport(h host.Host) foldersync.Transport { return hostTransport{h} }

type hostTransport struct{ h host.Host }

func (t hostTransport) ID() lpeer.ID { return t.h.ID() }

func (t hostTransport) NewStream(ctx context.Context, p lpeer.ID, proto protocol.ID, dial bool) (foldersync.Stream, error) {
	if !dial {
		ctx = network.WithNoDial(ctx, "folder sync")
	}
	if foldersync.OverLimited(proto) {
		ctx = network.WithAllowLimitedConn(ctx, "folder sync: "+string(proto))
	} else if t.h.Network().Connectedness(p) == network.Limited {
		// Only a relayed connection: libp2p would wait for a direct one,
		// while the engine asks another host (a server) at once.
		return nil, fmt.Errorf("opening %s to %s: %w", proto, p, network.ErrLimitedConn)
	}
	return t.h.NewStream(ctx, p, proto)
}

func (t hostTransport) SetHandler(proto protocol.ID, handle func(s foldersync.Stream, from lpeer.ID)) {
	if handle == nil {
		t.h.RemoveStreamHandler(proto)
		return
	}
	limitedOK := foldersync.OverLimited(proto)
	t.h.SetStreamHandler(proto, func(s network.Stream) {
		if s.Conn().Stat().Limited && !limitedOK {
			_ = s.Reset()
			return
		}
		handle(s, s.Conn().RemotePeer())
	})
}

func (t hostTransport) Peers() []lpeer.ID { return t.h.Network().Peers() }

// Connected relays the host's connection events until stop: its
// goroutine ends when the subscription is closed.
func (t hostTransport) Connected() (<-chan lpeer.ID, func(), error) {
	sub, err := t.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return nil, nil, err
	}
	out := make(chan lpeer.ID, 16)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		for ev := range sub.Out() {
			if c := ev.(event.EvtPeerConnectednessChanged); c.Connectedness == network.Connected || c.Connectedness == network.Limited {
				select {
				case out <- c.Peer:
				case <-quit:
					return
				}
			}
		}
	}()
	stop := func() {
		close(quit)
		_ = sub.Close()
		<-done
	}
	return out, stop, nil
}

// LoopbackHost is a libp2p host on 127.0.0.1 that carries only folder
// sync engines' streams: the network path of a node (TCP, libp2p's
// security handshake and stream multiplexer) without the rest of the
// node, for benchmarks and tests that measure it.
type LoopbackHost struct{ h host.Host }

// ListenLoopback starts a libp2p host for key listening on a port of
// 127.0.0.1 that the system picks. Close stops it.
func ListenLoopback(key *identity.PrivateKey) (*LoopbackHost, error) {
	h, err := libp2p.New(libp2p.Identity(key.Libp2p()), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		return nil, fmt.Errorf("starting a loopback host: %w", err)
	}
	return &LoopbackHost{h: h}, nil
}

// ID is the host's peer ID.
func (l *LoopbackHost) ID() lpeer.ID { return l.h.ID() }

// Transport is the host as a folder sync engine's transport.
func (l *LoopbackHost) Transport() foldersync.Transport { return FolderTransport(l.h) }

// Connect connects l to other.
func (l *LoopbackHost) Connect(ctx context.Context, other *LoopbackHost) error {
	if err := l.h.Connect(ctx, lpeer.AddrInfo{ID: other.h.ID(), Addrs: other.h.Addrs()}); err != nil {
		return fmt.Errorf("connecting to %s: %w", other.h.ID(), err)
	}
	return nil
}

// Close stops the host.
func (l *LoopbackHost) Close() error { return l.h.Close() }
