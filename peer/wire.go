package peer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/peer/wire"
)

// Caps on messages read from the network.
const (
	maxRequest  = 4 << 20  // one request frame
	maxResponse = 32 << 20 // one response frame (a sync delta)
	ioTimeout   = 10 * time.Second
)

// errRemote is an error the other side reported in its response.
var errRemote = errors.New("remote refused")

// roundTrip opens proto to info.ID (connecting first to info's addresses
// when not connected) and makes one exchange (wire.Exchange) of req for an
// answer of at most max bytes, before ctx's deadline, or ioTimeout.
func roundTrip(ctx context.Context, h host.Host, info lpeer.AddrInfo, proto protocol.ID, req []byte, max int) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ioTimeout)
		defer cancel()
	}
	if len(info.Addrs) > 0 && h.Network().Connectedness(info.ID) != network.Connected {
		if err := h.Connect(ctx, info); err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", info.ID, err)
		}
	}
	s, err := h.NewStream(ctx, info.ID, proto)
	if err != nil {
		return nil, fmt.Errorf("opening %s to %s: %w", proto, info.ID, err)
	}
	defer s.Close()
	deadline, _ := ctx.Deadline()
	b, err := wire.Exchange(s, deadline, req, max)
	if err != nil {
		return nil, fmt.Errorf("%s with %s: %w", proto, info.ID, err)
	}
	return b, nil
}

// call is roundTrip with a canonically encoded answer.
func call[Resp any](ctx context.Context, h host.Host, info lpeer.AddrInfo, proto protocol.ID, req []byte, max int) (Resp, error) {
	var resp Resp
	b, err := roundTrip(ctx, h, info, proto, req, max)
	if err != nil {
		return resp, err
	}
	if err := canon.Unmarshal(b, &resp, max); err != nil {
		return resp, fmt.Errorf("answer of %s on %s: %w", info.ID, proto, err)
	}
	return resp, nil
}
