package peer

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/syncfs"
)

// SetDropGossip makes n drop every validated gossiped update for which drop
// returns true, before its driver sees it, as if the network had lost it.
// Call it before Run; drop runs on n's goroutine and must be safe for that.
func SetDropGossip(n *Node, drop func(collections.Certified) bool) { n.hooks.dropGossip = drop }

// SetReconnectBackoff makes n wait from base/2 up to max before each
// redial of a server it lost. Call it before Run.
func SetReconnectBackoff(n *Node, base, max time.Duration) {
	n.hooks.backoff = backoff{base: base, max: max, rnd: rand.New(rand.NewPCG(1, 2))}
}

// SetRefuseDial makes n refuse its own dials of a peer at an address for
// which refuse returns true, as a network that does not carry them would.
// Call it before Run; refuse runs on libp2p's goroutines.
func SetRefuseDial(n *Node, refuse func(lpeer.ID, ma.Multiaddr) bool) { n.hooks.refuseDial = refuse }

// LoginFrom runs the login protocol from h (which may listen, so that its
// dials leave from its listen address), as Login does from a fresh host.
func LoginFrom(ctx context.Context, h host.Host, addr, user string, password []byte, deviceName string) (LoginResult, error) {
	return loginWith(ctx, h, addr, user, password, deviceName)
}

// RawLogin makes one login request from h to the server at addr and
// returns its answer as it is, following no redirect.
func RawLogin(ctx context.Context, h host.Host, addr, user string, password []byte, deviceName string) (loginResponse, error) {
	info, err := lpeer.AddrInfoFromString(addr)
	if err != nil {
		return loginResponse{}, err
	}
	req, err := canon.Marshal(loginRequest{User: user, Password: password, DeviceName: deviceName})
	if err != nil {
		return loginResponse{}, err
	}
	return exchange(ctx, h, *info, protoLogin, req)
}

// ServeHistoryAs answers a /baton/history/1.0.0 request of op on folder
// (with blocks, for op "blocks") at n as if remote had sent it, and
// returns the response's code and message.
func ServeHistoryAs(ctx context.Context, n *Node, remote lpeer.ID, op, folder string, blocks ...syncfs.Hash) (code, msg string, err error) {
	b, err := canon.Marshal(historyRequest{Op: op, Folder: folder, Blocks: blocks})
	if err != nil {
		return "", "", err
	}
	resp := n.serveHistory(ctx, remote, b)
	return resp.Code, resp.Error, nil
}

// HistorySigners returns, for each snapshot of folder id in n's store (n a
// server hosting it), the raw public key that signed it (nil: unsigned).
func HistorySigners(n *Node, id string) ([][]byte, error) {
	st, release, err := n.hostedHistory(id)
	defer release()
	if err != nil {
		return nil, err
	}
	snaps, err := st.Snapshots(id)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(snaps))
	for i, s := range snaps {
		out[i] = s.ServerKey
	}
	return out, nil
}

// RetentionOf returns the retention policy n's archiver applies to folder
// id, as text.
func RetentionOf(n *Node, id string) string {
	return n.cfg.folders.retention(n.cfg.Logger)(id).String()
}
