package peer

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/peer/wire"
)

// The login protocols. Both are one CBOR request and one CBOR response,
// each a varint-length-prefixed frame.
//
// /baton/login/1.0.0 — request loginRequest {1: user, 2: password bytes,
// 3: device name}. The device is the authenticated remote peer of the
// connection, never a field. Response loginResponse: code "" (success:
// 3: signed device certificate, 4: signed domain genesis, 5: the home
// server's peer ID, 6: its public addresses), "redirect" (5 and 6 name the
// user's home server; log in there), "denied" (wrong user name or
// password), "rate-limited" (7: milliseconds to wait), "revoked" (this
// device was revoked) or "error"; 2 carries the message. An unknown user
// name is answered as a known one with a wrong password: redirected to a
// decoy home server (driver.decoyHome), the same from every server, which
// denies it.
//
// /baton/renew/1.0.0 — request: an empty map; the device is the remote
// peer, a valid device of this home server whose certificate is at least
// half way through its validity. Response as for login (code "" with 3 and
// 5), or "not-due" or "error".
const (
	protoLogin = protocol.ID("/baton/login/1.0.0")
	protoRenew = protocol.ID("/baton/renew/1.0.0")

	maxLoginRequest  = 4 << 10
	maxLoginResponse = collections.MaxGenesisSize + 64<<10
	loginTimeout     = 30 * time.Second
	submitWait       = 10 * time.Second // how long a login waits for the master's receipt
	maxDeviceName    = 64
)

// Login response codes.
const (
	codeRedirect    = "redirect"
	codeDenied      = "denied"
	codeRateLimited = "rate-limited"
	codeRevoked     = "revoked"
	codeNotDue      = "not-due"
	codeError       = "error"
)

// Errors of Login callers branch on.
var (
	// ErrLoginDenied: the user name or the password is wrong (which one is
	// not said).
	ErrLoginDenied = errors.New("wrong user name or password")
	// ErrRateLimited: too many failed logins; a *RateLimitError says how
	// long to wait.
	ErrRateLimited = errors.New("too many failed logins")
	// ErrDeviceRevoked: this device's key was revoked; make a new one.
	ErrDeviceRevoked = errors.New("this device was revoked: create a new device key to log in again")
)

type loginRequest struct {
	User       string `cbor:"1,keyasint"`
	Password   []byte `cbor:"2,keyasint"`
	DeviceName string `cbor:"3,keyasint"`
}

type renewRequest struct{}

type loginResponse struct {
	Code        string   `cbor:"1,keyasint,omitempty"`
	Error       string   `cbor:"2,keyasint,omitempty"`
	Cert        []byte   `cbor:"3,keyasint,omitempty"`
	Genesis     []byte   `cbor:"4,keyasint,omitempty"`
	Server      string   `cbor:"5,keyasint,omitempty"`
	Addrs       []string `cbor:"6,keyasint,omitempty"`
	RetryMillis int64    `cbor:"7,keyasint,omitempty"`
}

func failure(code, format string, args ...any) loginResponse {
	return loginResponse{Code: code, Error: fmt.Sprintf(format, args...)}
}

// checkDeviceName checks the name a user gives a device: 1 to 64 bytes of
// printable UTF-8.
func checkDeviceName(name string) error {
	if name == "" || len(name) > maxDeviceName || !utf8.ValidString(name) ||
		strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return fmt.Errorf("device name %q: use 1 to %d printable characters", name, maxDeviceName)
	}
	return nil
}

// LoginResult is what a successful login gives an agent to store: its
// device certificate, the domain it now belongs to, and its home server.
type LoginResult struct {
	Cert       []byte   // signed device certificate (Config.DeviceCert)
	Genesis    []byte   // the domain's signed genesis (collections.OpenGenesis)
	HomeServer lpeer.ID // the user's home server, which issued the certificate
	HomeAddrs  []string // its public addresses
	User       string
	Expires    time.Time
}

// Login logs user in at the server at addr (a multiaddr ending in
// /p2p/ID), as the device key: it starts a temporary libp2p host with key
// that listens nowhere, follows one redirect to the user's home server,
// and returns the device certificate the home server issued and the
// domain's genesis, both verified. It is for an agent that has no domain
// yet; a running node uses Node.Login.
func Login(ctx context.Context, key *identity.PrivateKey, addr, user string, password []byte, deviceName string) (LoginResult, error) {
	h, err := libp2p.New(
		libp2p.Identity(key.Libp2p()),
		libp2p.NoListenAddrs,
		libp2p.UserAgent("baton/0.1"),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		return LoginResult{}, fmt.Errorf("starting libp2p host: %w", err)
	}
	defer h.Close()
	return loginWith(ctx, h, addr, user, password, deviceName)
}

// loginWith runs the login protocol from h.
func loginWith(ctx context.Context, h host.Host, addr, user string, password []byte, deviceName string) (LoginResult, error) {
	if err := identity.ValidateName(user); err != nil {
		return LoginResult{}, fmt.Errorf("user name: %w", err)
	}
	if len(password) == 0 || len(password) > MaxPasswordSize {
		return LoginResult{}, fmt.Errorf("a password must be 1 to %d bytes", MaxPasswordSize)
	}
	if err := checkDeviceName(deviceName); err != nil {
		return LoginResult{}, err
	}
	info, err := lpeer.AddrInfoFromString(addr)
	if err != nil {
		return LoginResult{}, fmt.Errorf("server address %q (want a multiaddr ending in /p2p/ID): %w", addr, err)
	}
	req, err := canon.Marshal(loginRequest{User: user, Password: password, DeviceName: deviceName})
	if err != nil {
		return LoginResult{}, err
	}
	resp, err := exchange(ctx, h, *info, protoLogin, req)
	if err != nil {
		return LoginResult{}, err
	}
	if resp.Code == codeRedirect {
		home, err := lpeer.Decode(resp.Server)
		if err != nil || home == info.ID {
			return LoginResult{}, fmt.Errorf("server %s sent a bad redirect (%q)", info.ID, resp.Server)
		}
		next := lpeer.AddrInfo{ID: home}
		for _, s := range resp.Addrs {
			if a, err := ma.NewMultiaddr(s); err == nil {
				next.Addrs = append(next.Addrs, a)
			}
		}
		if len(next.Addrs) == 0 {
			return LoginResult{}, fmt.Errorf("user %s's home server is %s, which has no public address", user, home)
		}
		info = &next
		if resp, err = exchange(ctx, h, next, protoLogin, req); err != nil {
			return LoginResult{}, err
		}
		if resp.Code == codeRedirect {
			return LoginResult{}, fmt.Errorf("home server %s redirected again, to %s", home, resp.Server)
		}
	}
	if err := responseError(resp, user); err != nil {
		return LoginResult{}, err
	}
	cert, err := checkIssued(resp.Cert, h.ID(), info.ID)
	if err != nil {
		return LoginResult{}, err
	}
	if cert.User != user {
		return LoginResult{}, fmt.Errorf("home server %s certified user %s, not %s", info.ID, cert.User, user)
	}
	if _, err := collections.OpenGenesis(resp.Genesis); err != nil {
		return LoginResult{}, fmt.Errorf("domain genesis from %s: %w", info.ID, err)
	}
	return LoginResult{
		Cert: resp.Cert, Genesis: resp.Genesis, HomeServer: info.ID, HomeAddrs: resp.Addrs,
		User: cert.User, Expires: cert.ExpiresAt(),
	}, nil
}

// checkIssued opens a certificate the server issued to device.
func checkIssued(raw []byte, device, server lpeer.ID) (collections.DeviceCert, error) {
	cert, err := collections.OpenDeviceCert(raw)
	if err != nil {
		return collections.DeviceCert{}, fmt.Errorf("device certificate from %s: %w", server, err)
	}
	if cert.DeviceID() != device || cert.ServerID() != server {
		return collections.DeviceCert{}, fmt.Errorf("server %s issued a certificate for device %s by %s", server, cert.Device, cert.Server)
	}
	return cert, nil
}

// responseError turns a refusal into the error callers branch on.
func responseError(resp loginResponse, user string) error {
	switch resp.Code {
	case "":
		return nil
	case codeDenied:
		return ErrLoginDenied
	case codeRateLimited:
		return &RateLimitError{User: user, RetryAfter: time.Duration(resp.RetryMillis) * time.Millisecond}
	case codeRevoked:
		return ErrDeviceRevoked
	}
	return fmt.Errorf("%w: %s", errRemote, resp.Error)
}

// exchange connects to info and makes one request on proto.
func exchange(ctx context.Context, h host.Host, info lpeer.AddrInfo, proto protocol.ID, req []byte) (loginResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	return call[loginResponse](ctx, h, info, proto, req, maxLoginResponse)
}

// --- the server side ---

// serveFrame reads one request of at most max bytes from s, answers it
// with handle and writes the response.
func (e *edge) serveFrame(s network.Stream, max int, handle func(ctx context.Context, remote lpeer.ID, from ma.Multiaddr, req []byte) loginResponse) {
	remote, from := s.Conn().RemotePeer(), s.Conn().RemoteMultiaddr()
	wire.ServeMsg(s, time.Now().Add(loginTimeout), max, func(b []byte) (loginResponse, error) {
		ctx, cancel := e.handlerContext(loginTimeout)
		defer cancel()
		return handle(ctx, remote, from, b), nil
	})
}

// handlerContext is a context for a stream handler's work, cancelled after
// timeout or when the node stops.
func (e *edge) handlerContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	go func() {
		select {
		case <-e.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// query runs fn on the driver goroutine and returns its result: Node.do,
// the one way onto the loop, with its guarantee (when query returns, fn
// has run or never will).
func query[T any](ctx context.Context, n *Node, fn func(d *driver) T) (T, error) {
	var v T
	err := n.do(ctx, func(_ context.Context, d *driver) { v = fn(d) })
	return v, err
}

func (e *edge) handleLogin(s network.Stream) { e.serveFrame(s, maxLoginRequest, e.serveLogin) }
func (e *edge) handleRenew(s network.Stream) { e.serveFrame(s, maxLoginRequest, e.serveRenew) }

// loginFacts is what a login needs from the state.
type loginFacts struct {
	known     bool
	home      lpeer.ID // the user's home server, or an unknown name's decoy
	homeAddrs []string
	revoked   bool
	userID    string // the user's identity (collections.User.ID)
	genesis   []byte
	selfAddrs []string
}

// decoyHome is the server an unknown user name is answered about as if it
// were the name's home server: one of the Domain's servers with a public
// address, chosen by a hash of the name keyed with the domain genesis's
// hash. Every server picks the same one (the Domain is replicated), so an
// unknown name looks like a user homed there, who then fails to log in
// there as with a wrong password. The key keeps outsiders from telling a
// decoy from a home: only members hold the genesis, and members see the
// users in the Domain anyway.
func (d *driver) decoyHome(user string) (lpeer.ID, []string) {
	var ids []lpeer.ID
	var addrs [][]string
	for _, h := range d.state.Hosts() {
		if h.Role == identity.RoleServer && len(h.PublicAddrs) > 0 {
			ids = append(ids, h.ID())
			addrs = append(addrs, h.PublicAddrs)
		}
	}
	if len(ids) == 0 {
		return d.self, nil
	}
	key := d.cfg.Genesis.Hash()
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte("baton login decoy\x00" + user))
	i := binary.BigEndian.Uint64(m.Sum(nil)) % uint64(len(ids))
	return ids[i], addrs[i]
}

// serveLogin answers a login. Unknown user names are answered as known
// ones with a wrong password (decoyHome): a redirect from every server but
// one, a denial there. Every answer is logged with the source address.
func (e *edge) serveLogin(ctx context.Context, remote lpeer.ID, from ma.Multiaddr, b []byte) loginResponse {
	source, _ := sourceOf(from)
	var req loginRequest
	if err := canon.Unmarshal(b, &req, maxLoginRequest); err != nil {
		e.log.Info("login refused: malformed request", "device", remote.String(), "source", source)
		return failure(codeError, "malformed login request")
	}
	log := e.log.With("user", req.User, "device", remote.String(), "source", source)
	if err := checkDeviceName(req.DeviceName); err != nil {
		log.Info("login refused: bad device name")
		return failure(codeError, "%v", err)
	}
	a := e.auth
	now := e.cfg.Now()
	if w := a.limiter.wait(req.User, source, now); w > 0 {
		log.Info("login refused: rate-limited", "retry_after", w)
		e := &RateLimitError{User: req.User, RetryAfter: w}
		return loginResponse{Code: codeRateLimited, Error: e.Error(), RetryMillis: w.Milliseconds()}
	}
	valid := identity.ValidateName(req.User) == nil && len(req.Password) > 0 && len(req.Password) <= MaxPasswordSize
	facts, err := query(ctx, e.node, func(d *driver) loginFacts {
		var f loginFacts
		f.home, f.known = d.state.HomeServer(req.User)
		if u, ok := d.state.User(req.User); ok {
			f.userID = u.ID
		}
		if f.known {
			if rec, ok := d.state.HostByID(f.home); ok {
				f.homeAddrs = rec.PublicAddrs
			}
		} else if valid {
			f.home, f.homeAddrs = d.decoyHome(req.User)
		}
		if dev, _, ok := d.state.Device(remote); ok && dev.Revoked || d.revocationQueued(remote) {
			f.revoked = true
		}
		f.genesis = d.cfg.Genesis.Marshal()
		if rec, ok := d.state.HostByID(d.self); ok {
			f.selfAddrs = rec.PublicAddrs
		}
		return f
	})
	if err != nil {
		return failure(codeError, "server is stopping")
	}
	denied := func(why string) loginResponse {
		a.limiter.failed(req.User, source, e.cfg.Now())
		log.Info("login refused: "+why, "known", facts.known)
		return failure(codeDenied, "%v", ErrLoginDenied)
	}
	if !valid {
		return denied("invalid user name or password")
	}
	if facts.home != e.self {
		log.Info("login redirected to the user's home server", "home", facts.home.String(), "known", facts.known)
		return loginResponse{Code: codeRedirect, Server: facts.home.String(), Addrs: facts.homeAddrs,
			Error: fmt.Sprintf("user %s logs in at their home server %s", req.User, facts.home)}
	}
	if facts.revoked {
		log.Info("login refused: device revoked")
		return failure(codeRevoked, "%v", ErrDeviceRevoked)
	}
	// An unknown name costs a password check too, so that timing does not
	// tell it from a known user's.
	ok := a.checkPassword(ctx, req.User, req.Password)
	if ctx.Err() != nil {
		log.Info("login refused: server busy")
		return failure(codeError, "server busy; try again")
	}
	if !ok || !facts.known {
		return denied("wrong user name or password")
	}
	a.limiter.succeeded(req.User, source)
	cert, err := e.issueDevice(ctx, req.User, facts.userID, remote, req.DeviceName)
	if err != nil {
		log.Warn("login: issuing a device certificate failed", "err", err)
		return failure(codeError, "issuing a device certificate: %v", err)
	}
	log.Info("device logged in", "name", req.DeviceName)
	return loginResponse{Cert: cert, Genesis: facts.genesis, Server: e.self.String(), Addrs: facts.selfAddrs}
}

func (e *edge) serveRenew(ctx context.Context, remote lpeer.ID, from ma.Multiaddr, b []byte) loginResponse {
	source, _ := sourceOf(from)
	log := e.log.With("device", remote.String(), "source", source)
	var req renewRequest
	if err := canon.Unmarshal(b, &req, maxLoginRequest); err != nil {
		log.Info("renewal refused: malformed request")
		return failure(codeError, "malformed renew request")
	}
	type renewFacts struct {
		cert collections.DeviceCert
		err  loginResponse
	}
	f, err := query(ctx, e.node, func(d *driver) renewFacts {
		now := d.cfg.Now()
		if d.revocationQueued(remote) {
			return renewFacts{err: failure(codeRevoked, "%v", ErrDeviceRevoked)}
		}
		if _, ok := d.state.ValidDevice(remote, now); !ok {
			return renewFacts{err: failure(codeError, "%s is not a valid device; log in again", remote)}
		}
		_, c, _ := d.state.Device(remote)
		if c.ServerID() != d.self {
			return renewFacts{err: failure(codeError, "this server did not issue the certificate of %s", remote)}
		}
		if now.UnixNano() < c.Issued+(c.Expires-c.Issued)/2 {
			return renewFacts{err: failure(codeNotDue, "certificate of %s is not due for renewal before %v", remote, renewAt(c))}
		}
		return renewFacts{cert: c}
	})
	if err != nil {
		return failure(codeError, "server is stopping")
	}
	if f.err.Code != "" {
		if f.err.Code != codeNotDue {
			log.Info("renewal refused", "code", f.err.Code, "err", f.err.Error)
		}
		return f.err
	}
	cert, err := e.issueDevice(ctx, f.cert.User, f.cert.UserID, remote, f.cert.Name)
	if err != nil {
		log.Warn("renewal: issuing a device certificate failed", "user", f.cert.User, "err", err)
		return failure(codeError, "renewing the device certificate: %v", err)
	}
	log.Info("device certificate renewed", "user", f.cert.User)
	return loginResponse{Cert: cert, Server: e.self.String()}
}

// renew asks server, the home server, to renew this device's certificate.
func renew(ctx context.Context, h host.Host, server lpeer.ID) ([]byte, error) {
	req, err := canon.Marshal(renewRequest{})
	if err != nil {
		return nil, err
	}
	resp, err := exchange(ctx, h, lpeer.AddrInfo{ID: server}, protoRenew, req)
	if err != nil {
		return nil, err
	}
	if resp.Code != "" {
		return nil, fmt.Errorf("%w: %s", errRemote, resp.Error)
	}
	return resp.Cert, nil
}

// renewAt is when an agent renews c: half way through its validity.
func renewAt(c collections.DeviceCert) time.Time {
	return time.Unix(0, c.Issued+(c.Expires-c.Issued)/2).UTC()
}

// issueDevice signs a certificate for device of user (whose identity is
// userID) and publishes its
// Device record (a Catalog update by this server, which the master
// certifies). It waits a while for the master's receipt; if none comes the
// record stays in the outbox and the certificate is returned anyway.
func (e *edge) issueDevice(ctx context.Context, user, userID string, device lpeer.ID, name string) ([]byte, error) {
	now := e.cfg.Now()
	cert, err := collections.IssueDeviceCert(e.cfg.Key, collections.DeviceCert{
		User: user, UserID: userID, Device: device.String(), Name: name, Server: e.self.String(),
		Issued: now.UnixNano(), Expires: now.Add(e.cfg.DeviceValidity).UnixNano(),
	})
	if err != nil {
		return nil, err
	}
	u, err := collections.Put(collections.Device{Cert: cert})
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, submitWait)
	defer cancel()
	r, err := e.node.Submit(sctx, u)
	if err != nil {
		return nil, err
	}
	if r.Queued {
		e.log.Warn("device record waits for the master", "user", user, "device", device.String())
	}
	return cert, nil
}

// Login logs user in at the server at addr (a multiaddr ending in
// /p2p/ID) from this running node's host, as Login does from a temporary
// one. A certificate for this node's domain replaces the node's own (and
// is passed to Config.OnDeviceCert).
func (n *Node) Login(ctx context.Context, addr, user string, password []byte, deviceName string) (LoginResult, error) {
	var h host.Host
	if err := n.do(ctx, func(_ context.Context, d *driver) { h = d.host }); err != nil {
		return LoginResult{}, err
	}
	res, err := loginWith(ctx, h, addr, user, password, deviceName)
	if err != nil {
		return LoginResult{}, err
	}
	g, err := collections.OpenGenesis(res.Genesis)
	if err == nil && g.Hash() == n.cfg.Genesis.Hash() {
		err = n.do(ctx, func(_ context.Context, d *driver) { d.setDeviceCert(res.Cert) })
	}
	return res, err
}
