package peer

// The password check of an agent's web console, reached from beyond its
// machine: the console asks the agent, which asks its user's home server
// whether a password is the user's. No certificate is issued and the
// password is kept nowhere.

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/canon"
)

// /baton/password-check/1.0.0 — request passwordCheckRequest {1: user,
// 2: password bytes, 3: the console client's address, for the log}. The
// asking peer must be a valid device of that user whose certificate this
// server issued (a device asks only for its own user, at its home server),
// or a server of the chain asking for a user homed here (its console's
// login of an admin; that console checks the admin flag).
// Response as for login: code "" (the password is the user's), "denied"
// (it is not), "rate-limited" (7: milliseconds to wait) or "error". Failed
// checks count in the login limiter under the asking device, so a
// console's guesses are slowed as logins are.
const protoPasswordCheck = protocol.ID("/baton/password-check/1.0.0")

type passwordCheckRequest struct {
	User     string `cbor:"1,keyasint"`
	Password []byte `cbor:"2,keyasint"`
	Client   string `cbor:"3,keyasint,omitempty"`
}

func (e *edge) handlePasswordCheck(s network.Stream) {
	e.serveFrame(s, maxLoginRequest, e.servePasswordCheck)
}

// servePasswordCheck answers a console's password check.
func (e *edge) servePasswordCheck(ctx context.Context, remote lpeer.ID, from ma.Multiaddr, b []byte) loginResponse {
	source, _ := sourceOf(from)
	var req passwordCheckRequest
	if err := canon.Unmarshal(b, &req, maxLoginRequest); err != nil {
		e.log.Info("console password check refused: malformed request", "device", remote.String(), "source", source)
		return failure(codeError, "malformed password check")
	}
	defer clear(req.Password)
	log := e.log.With("user", req.User, "device", remote.String(), "source", source, "client", req.Client, "via", "console")
	a := e.auth
	// The limiter's source is the asking device (or server): every console
	// check through it counts together, whatever client address it reports.
	key := "device " + remote.String()
	why, err := query(ctx, e.node, func(d *driver) string {
		if d.state.IsServer(remote) {
			// A server's console, for a user homed here (an admin logging
			// in there: that console checks the admin flag).
			if home, ok := d.state.HomeServer(req.User); !ok || home != d.self {
				return "this server is not the user's home server"
			}
			key = "server " + remote.String()
			return ""
		}
		user, ok := d.state.ValidDevice(remote, d.cfg.Now())
		switch {
		case !ok || d.revocationQueued(remote):
			return "the asking peer is not a valid device"
		case user != req.User:
			return "a device asks only for its own user"
		}
		if _, c, ok := d.state.Device(remote); !ok || c.ServerID() != d.self {
			return "this server is not the user's home server"
		}
		return ""
	})
	if err != nil {
		return failure(codeError, "server is stopping")
	}
	if why != "" {
		log.Info("console password check refused: " + why)
		return failure(codeError, "password check refused: %s", why)
	}
	if w := a.limiter.wait(req.User, key, e.cfg.Now()); w > 0 {
		log.Info("login refused: rate-limited", "retry_after", w)
		err := &RateLimitError{User: req.User, RetryAfter: w}
		return loginResponse{Code: codeRateLimited, Error: err.Error(), RetryMillis: w.Milliseconds()}
	}
	if len(req.Password) == 0 || len(req.Password) > MaxPasswordSize || !a.checkPassword(ctx, req.User, req.Password) {
		if ctx.Err() != nil {
			return failure(codeError, "server busy; try again")
		}
		a.limiter.failed(req.User, key, e.cfg.Now())
		log.Info("login refused: wrong user name or password")
		return failure(codeDenied, "%v", ErrLoginDenied)
	}
	a.limiter.succeeded(req.User, key)
	log.Info("console password checked")
	return loginResponse{}
}

// CheckPassword asks this agent's user's home server whether password is
// the user's, for the agent's console; client is the console client's
// address, for the server's log. It returns nil when it is,
// ErrLoginDenied when it is not or user is not this agent's user, a
// *RateLimitError after too many failures, ErrNotLoggedIn on an agent
// without a device certificate.
func (n *Node) CheckPassword(ctx context.Context, user string, password []byte, client string) error {
	var (
		own      string
		server   lpeer.ID
		h        host.Host
		isServer bool
		home     lpeer.ID
		homeInfo lpeer.AddrInfo
		local    *authState
		now      time.Time
	)
	if err := n.do(ctx, func(_ context.Context, d *driver) {
		h = d.host
		if d.auth != nil && d.auth.cert != nil {
			own, server = d.auth.certInfo.User, d.auth.certInfo.ServerID()
		}
		if d.cfg.Role == identity.RoleServer {
			isServer, now = true, d.cfg.Now()
			home, _ = d.state.HomeServer(user)
			homeInfo = d.serverAddrInfo(home)
			if home == d.self && d.edge != nil {
				local = d.edge.auth
			}
		}
	}); err != nil {
		return err
	}
	if isServer {
		return checkAtHome(ctx, h, user, password, client, home, homeInfo, local, now)
	}
	if own == "" {
		return ErrNotLoggedIn
	}
	if user != own {
		return ErrLoginDenied
	}
	req, err := canon.Marshal(passwordCheckRequest{User: user, Password: password, Client: client})
	if err != nil {
		return err
	}
	defer clear(req)
	resp, err := exchange(ctx, h, lpeer.AddrInfo{ID: server}, protoPasswordCheck, req)
	if err != nil {
		return fmt.Errorf("asking the home server %s: %w", server, err)
	}
	return responseError(resp, user)
}

// checkAtHome is CheckPassword on a server, for its console: user's
// password checked here if this server is the user's home server (local,
// with its login limiter, by the console client's address), else asked of
// the home server (homeInfo). A user the Domain does not have (home zero)
// is denied as a wrong password is.
func checkAtHome(ctx context.Context, h host.Host, user string, password []byte, client string, home lpeer.ID, homeInfo lpeer.AddrInfo, local *authState, now time.Time) error {
	switch {
	case home == "":
		return ErrLoginDenied
	case local != nil:
		key := "console " + client
		if w := local.limiter.wait(user, key, now); w > 0 {
			return &RateLimitError{User: user, RetryAfter: w}
		}
		if len(password) == 0 || len(password) > MaxPasswordSize || !local.checkPassword(ctx, user, password) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			local.limiter.failed(user, key, now)
			return ErrLoginDenied
		}
		local.limiter.succeeded(user, key)
		return nil
	}
	req, err := canon.Marshal(passwordCheckRequest{User: user, Password: password, Client: client})
	if err != nil {
		return err
	}
	defer clear(req)
	resp, err := exchange(ctx, h, homeInfo, protoPasswordCheck, req)
	if err != nil {
		return fmt.Errorf("asking the home server %s: %w", home, err)
	}
	return responseError(resp, user)
}

// serverAddrInfo is how to reach server id: its ID and the addresses its
// host record gives.
func (d *driver) serverAddrInfo(id lpeer.ID) lpeer.AddrInfo {
	info := lpeer.AddrInfo{ID: id}
	if id == "" {
		return info
	}
	if rec, ok := d.state.HostByID(id); ok {
		for _, s := range append(append([]string{}, rec.PrivateAddrs...), rec.PublicAddrs...) {
			if a, err := ma.NewMultiaddr(s); err == nil {
				info.Addrs = append(info.Addrs, a)
			}
		}
	}
	return info
}

// LoginLimiter slows repeated failed logins as the servers' device logins
// are (after 3 failures for a user from a source, 20 from a source for any
// users, each attempt waits a second, doubling up to 5 minutes; records
// are forgotten after 15 minutes idle), for other doors that take a
// password: an agent's console. Times are passed in; it is safe for
// concurrent use.
type LoginLimiter struct{ l *loginLimiter }

// NewLoginLimiter returns an empty limiter.
func NewLoginLimiter() *LoginLimiter { return &LoginLimiter{l: newLoginLimiter()} }

// Wait is how long an attempt for user from source must still wait at
// now; zero means it may go ahead.
func (l *LoginLimiter) Wait(user, source string, now time.Time) time.Duration {
	return l.l.wait(user, source, now)
}

// Failed records a failed attempt.
func (l *LoginLimiter) Failed(user, source string, now time.Time) { l.l.failed(user, source, now) }

// Succeeded clears the record of user at source.
func (l *LoginLimiter) Succeeded(user, source string) { l.l.succeeded(user, source) }
