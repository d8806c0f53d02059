package peer

import (
	"context"

	"github.com/libp2p/go-libp2p/core/host"
	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/internal/canon"
)

// RawPasswordCheck asks server, from n's host, whether password is
// user's, as CheckPassword does but without its checks here, and returns
// the answer's error (nil when the password was accepted).
func RawPasswordCheck(ctx context.Context, n *Node, server lpeer.ID, user string, password []byte) error {
	var h host.Host
	if err := n.do(ctx, func(_ context.Context, d *driver) { h = d.host }); err != nil {
		return err
	}
	req, err := canon.Marshal(passwordCheckRequest{User: user, Password: password})
	if err != nil {
		return err
	}
	resp, err := exchange(ctx, h, lpeer.AddrInfo{ID: server}, protoPasswordCheck, req)
	if err != nil {
		return err
	}
	return responseError(resp, user)
}
