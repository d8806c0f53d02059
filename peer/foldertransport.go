package peer

import (
	"context"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

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
	return t.h.NewStream(ctx, p, proto)
}

func (t hostTransport) SetHandler(proto protocol.ID, handle func(s foldersync.Stream, from lpeer.ID)) {
	if handle == nil {
		t.h.RemoveStreamHandler(proto)
		return
	}
	t.h.SetStreamHandler(proto, func(s network.Stream) { handle(s, s.Conn().RemotePeer()) })
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
			if c := ev.(event.EvtPeerConnectednessChanged); c.Connectedness == network.Connected {
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
