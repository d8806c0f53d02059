package peer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
)

// Users and devices: who may connect (members: the Domain's hosts and the
// Catalog's valid devices; guests on a server's public addresses), the
// passwords of this server's users, and agents' device certificates.

// ErrNoSuchUser: the user is not provisioned in the Domain.
var ErrNoSuchUser = errors.New("no such user")

// NotHomeServerError says that an operation on a user must be done at the
// user's home server, and which server that is.
type NotHomeServerError struct {
	User     string
	Home     lpeer.ID
	HomeName string
}

func (e *NotHomeServerError) Error() string {
	return fmt.Sprintf("user %s's home server is %s (%s): do this there", e.User, e.HomeName, e.Home)
}

// maxPasswordChecks bounds the argon2id hashes computed at once (each
// takes PasswordKDF.Memory), so guests cannot exhaust the server's memory.
const maxPasswordChecks = 2

// recheckEvery bounds the time between recomputations of the allowlist
// (which also happen at every Domain or device change and at the next
// certificate expiry).
const recheckEvery = 30 * time.Second

// authState is the driver's part for users and devices. passwords and
// limiter are safe for concurrent use (stream handlers use them); the
// rest belongs to the driver goroutine.
type authState struct {
	passwords *passwordStore
	limiter   *loginLimiter
	checks    chan struct{} // semaphore of password checks

	homeUsers   map[string]bool // users homed here, as last seen
	nextRefresh time.Time       // next allowlist recomputation

	// An agent's own certificate and its renewal.
	cert      []byte
	certInfo  collections.DeviceCert
	renewing  bool
	nextRenew time.Time
}

// initAuth opens the password store (servers) and sets the gater up to
// admit guests on the public listen addresses.
func (d *driver) initAuth() error {
	a := &authState{limiter: newLoginLimiter(), checks: make(chan struct{}, maxPasswordChecks)}
	if d.cfg.Role == identity.RoleServer {
		p, err := openPasswords(filepath.Join(d.cfg.DataDir, passwordsFile), d.cfg.PasswordKDF)
		if err != nil {
			return err
		}
		a.passwords = p
	}
	a.homeUsers = d.homeUsers()
	d.auth = a
	if len(d.cfg.DeviceCert) > 0 {
		d.setDeviceCert(d.cfg.DeviceCert)
	}
	public, err := d.cfg.guestEndpoints()
	if err != nil {
		return err
	}
	d.allow.admitGuests(public, d.cfg.GuestTimeout, d.cfg.Now)
	return nil
}

// checkPassword checks user's password, at most maxPasswordChecks at once.
func (a *authState) checkPassword(ctx context.Context, user string, password []byte) bool {
	if a.passwords == nil {
		return false
	}
	select {
	case a.checks <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-a.checks }()
	return a.passwords.check(user, password)
}

// isMember reports whether p is a member host: one the Domain knows or a
// valid device. Stream handlers other than login refuse everyone else.
func (e *edge) isMember(p lpeer.ID) bool { return e.allow.allowed(p) }

// refuseGuest resets s unless its remote peer is a member, and says so.
func (e *edge) refuseGuest(s network.Stream) bool {
	if e.isMember(s.Conn().RemotePeer()) {
		return false
	}
	_ = s.Reset()
	return true
}

// onRecordChanged refreshes what depends on an accepted update's record.
func (d *driver) onRecordChanged(u collections.Update) {
	d.logSecurityChange(u)
	switch {
	case u.Collection == collections.Domain && strings.HasPrefix(u.Key, collections.UserPrefix):
		// A user's devices are valid while the user is; the chain and the
		// hosts did not change.
		d.refreshAllow()
		d.prunePasswords()
	case u.Collection == collections.Domain:
		d.onDomainChanged()
	case u.Collection == collections.Catalog && strings.HasPrefix(u.Key, collections.DevicePrefix):
		d.refreshAllow()
	case u.Collection == collections.Catalog && strings.HasPrefix(u.Key, collections.FolderPrefix) && d.isDevice():
		// Which devices share a folder with this one's user (lan.go).
		d.refreshAllow()
	}
}

// refreshAllow recomputes who may connect: this host, the Domain's hosts
// and the valid devices (on a device, those of the users it shares a
// folder with); devices revoked may not even be guests. It
// closes the connections of hosts no longer allowed (guests keep theirs
// until their time is up).
func (d *driver) refreshAllow() {
	now := d.cfg.Now()
	hosts := d.state.Hosts()
	ids := make([]lpeer.ID, 0, len(hosts)+1)
	for _, h := range hosts {
		ids = append(ids, h.ID())
	}
	ids = append(ids, d.self)
	next := now.Add(recheckEvery)
	keep := d.fellowDevice()
	d.lan.devices = d.lan.devices[:0]
	for _, c := range d.state.ValidDevices(now) {
		if !keep(c) {
			continue
		}
		ids = append(ids, c.DeviceID())
		if c.DeviceID() != d.self {
			d.lan.devices = append(d.lan.devices, c.DeviceID())
		}
		if e := c.ExpiresAt(); e.Before(next) {
			next = e
		}
	}
	var revoked []lpeer.ID
	for _, dev := range d.state.Devices() {
		if c, err := dev.Open(); err == nil && dev.Revoked {
			revoked = append(revoked, c.DeviceID())
		}
	}
	d.allow.set(ids, revoked)
	if d.auth != nil {
		d.auth.nextRefresh = next
	}
	if d.host == nil {
		return
	}
	for _, p := range d.host.Network().Peers() {
		if !d.allow.allowed(p) && !d.allow.isGuest(p) {
			d.log.Info("closing connection to a host no longer allowed", "peer", p.String())
			_ = d.host.Network().ClosePeer(p)
		}
	}
}

// homeUsers is the set of users whose home server is this host.
func (d *driver) homeUsers() map[string]bool {
	m := map[string]bool{}
	self := d.self.String()
	for _, u := range d.state.Users() {
		if u.HomeServer == self {
			m[u.Name] = true
		}
	}
	return m
}

// prunePasswords deletes the passwords of users seen removed from this
// server (deleted, or moved to another home server). Only transitions seen
// count, so a replica still catching up never loses passwords.
func (d *driver) prunePasswords() {
	if d.auth == nil {
		return
	}
	now := d.homeUsers()
	var gone []string
	for u := range d.auth.homeUsers {
		if !now[u] {
			gone = append(gone, u)
		}
	}
	d.auth.homeUsers = now
	if d.auth.passwords == nil || len(gone) == 0 {
		return
	}
	slices.Sort(gone)
	if err := d.auth.passwords.remove(gone...); err != nil {
		d.log.Error("deleting passwords of removed users", "users", gone, "err", err)
		return
	}
	d.log.Info("deleted passwords of users no longer homed here", "users", gone)
}

// onAuthTick closes guests whose time is up, recomputes the allowlist when
// a certificate expires, and renews an agent's certificate when due.
func (d *driver) onAuthTick(ctx context.Context) {
	if d.auth == nil {
		return
	}
	if expired := d.allow.expireGuests(); len(expired) > 0 {
		d.spawn(ctx, func(context.Context, *edge) task {
			for _, c := range expired {
				_ = c.Close()
			}
			return nil
		})
	}
	now := d.cfg.Now()
	if !now.Before(d.auth.nextRefresh) {
		d.refreshAllow()
	}
	d.maybeRenew(ctx, now)
}

// --- the agent's certificate ---

// setDeviceCert makes raw this agent's certificate, if it opens and is
// this host's.
func (d *driver) setDeviceCert(raw []byte) {
	c, err := collections.OpenDeviceCert(raw)
	if err != nil || c.DeviceID() != d.self {
		d.log.Warn("ignoring a device certificate that is not this host's", "err", err)
		return
	}
	d.auth.cert, d.auth.certInfo = raw, c
	d.auth.nextRenew = time.Time{}
}

// maybeRenew asks the home server for a new certificate once the current
// one is half way through its validity.
func (d *driver) maybeRenew(ctx context.Context, now time.Time) {
	a := d.auth
	if d.cfg.Role != identity.RoleAgent || a.cert == nil || a.renewing || now.Before(a.nextRenew) ||
		now.Before(renewAt(a.certInfo)) || !a.certInfo.Current(now) {
		return
	}
	server := a.certInfo.ServerID()
	if d.host.Network().Connectedness(server) != network.Connected {
		return
	}
	a.renewing = true
	d.spawn(ctx, func(ctx context.Context, e *edge) task {
		raw, err := renew(ctx, e.host, server)
		return func(_ context.Context, d *driver) { d.onRenewed(raw, server, err) }
	})
}

func (d *driver) onRenewed(raw []byte, server lpeer.ID, err error) {
	a := d.auth
	a.renewing = false
	var c collections.DeviceCert
	if err == nil {
		c, err = checkIssued(raw, d.self, server)
	}
	if err == nil && c.Expires <= a.certInfo.Expires {
		err = errors.New("the renewed certificate does not expire later")
	}
	if err != nil {
		a.nextRenew = d.cfg.Now().Add(time.Minute)
		d.log.Warn("renewing the device certificate failed; will retry", "server", server.String(), "err", err)
		return
	}
	a.cert, a.certInfo = raw, c
	d.log.Info("device certificate renewed", "expires", c.ExpiresAt())
	if d.cfg.OnDeviceCert != nil {
		d.cfg.OnDeviceCert(raw)
	}
}

// --- Node methods ---

// SetPassword sets user's password. It works only at the user's home
// server (elsewhere a *NotHomeServerError names it); the argon2id hash is
// stored in this server's data directory and never leaves it.
func (n *Node) SetPassword(ctx context.Context, user string, password []byte) error {
	var home lpeer.ID
	var homeName string
	var known bool
	var store *passwordStore
	if err := n.do(ctx, func(_ context.Context, d *driver) {
		home, known = d.state.HomeServer(user)
		homeName = d.hostName(home)
		store = d.auth.passwords
	}); err != nil {
		return err
	}
	switch {
	case !known:
		return fmt.Errorf("%w: %s is not a user of the domain", ErrNoSuchUser, user)
	case home != n.ID():
		return &NotHomeServerError{User: user, Home: home, HomeName: homeName}
	case store == nil:
		return errors.New("passwords are kept by servers only")
	case n.cfg.Witness:
		return fmt.Errorf("this server is a witness: it takes no logins, so user %s cannot log in here; make another server %s's home server", user, user)
	}
	return store.set(user, password, n.cfg.Now())
}

// DeviceInfo describes a device record, for `baton device list`.
type DeviceInfo struct {
	ID         string    `json:"id"`
	User       string    `json:"user"`
	Name       string    `json:"name"`
	Server     string    `json:"server"` // the issuing home server
	ServerName string    `json:"server_name"`
	Issued     time.Time `json:"issued"`
	Expires    time.Time `json:"expires"`
	Revoked    bool      `json:"revoked"` // the revocation is committed
	// RevocationQueued: this server revoked the device but the revocation
	// waits for the master (no master reachable); it is committed when
	// one is. Logins and renewals of the device are refused here meanwhile.
	RevocationQueued bool `json:"revocation_queued,omitempty"`
	// Valid: the domain accepts the device now (not revoked, not expired,
	// its user exists and the issuer is still the user's home server).
	Valid bool `json:"valid"`
}

// Devices lists the devices of user ("" for every user), by device ID.
func (n *Node) Devices(ctx context.Context, user string) ([]DeviceInfo, error) {
	var out []DeviceInfo
	err := n.do(ctx, func(_ context.Context, d *driver) {
		now := d.cfg.Now()
		for _, dev := range d.state.Devices() {
			c, err := dev.Open()
			if err != nil || user != "" && c.User != user {
				continue
			}
			_, valid := d.state.ValidDevice(c.DeviceID(), now)
			out = append(out, DeviceInfo{
				ID: c.Device, User: c.User, Name: c.Name, Server: c.Server, ServerName: d.hostName(c.ServerID()),
				Issued: c.IssuedAt(), Expires: c.ExpiresAt(), Revoked: dev.Revoked, Valid: valid,
				RevocationQueued: !dev.Revoked && d.revocationQueued(c.DeviceID()),
			})
		}
	})
	return out, err
}

// RevokeDevice revokes device id: at its user's home server, it publishes
// the device record marked revoked, and every host closes the device's
// connections and refuses it from then on. Elsewhere a *NotHomeServerError
// names the home server. The receipt says whether the revocation is
// committed or only queued (no master reachable: it is committed when one
// is, and this server refuses the device's logins and renewals meanwhile).
// A revocation is final: no later record of the device undoes it
// (collections.ErrFinal). Revoking a revoked device changes nothing and
// returns the receipt of a committed revocation, or a queued one if the
// first still waits.
func (n *Node) RevokeDevice(ctx context.Context, id lpeer.ID) (Receipt, error) {
	var u collections.Update
	var err error
	var done, queued bool
	if derr := n.do(ctx, func(_ context.Context, d *driver) {
		dev, c, ok := d.state.Device(id)
		if !ok {
			err = fmt.Errorf("%w: %s", ErrNoSuchDevice, id)
			return
		}
		if dev.Revoked {
			done = true
			return
		}
		if d.revocationQueued(id) {
			queued = true
			return
		}
		home, known := d.state.HomeServer(c.User)
		switch {
		case !known:
			err = fmt.Errorf("%w: the user of device %s, %s, was removed; the device is not accepted anyway", ErrNoSuchUser, id, c.User)
		case home != d.self:
			err = &NotHomeServerError{User: c.User, Home: home, HomeName: d.hostName(home)}
		case c.ServerID() != d.self:
			err = fmt.Errorf("device %s was certified by %s, %s's former home server; it is not accepted anyway", id, c.Server, c.User)
		default:
			dev.Revoked = true
			u, err = collections.Put(dev)
			d.log.Info("revoking a device", "device", id.String(), "user", c.User)
		}
	}); derr != nil {
		return Receipt{}, derr
	}
	switch {
	case err != nil:
		return Receipt{}, err
	case queued:
		return Receipt{Queued: true}, nil
	case done:
		var r Receipt
		derr := n.do(ctx, func(_ context.Context, d *driver) {
			if rec, ok := d.state.Lookup(collections.Catalog, collections.DevicePrefix+id.String()); ok {
				r.Certified, _ = d.state.Holds(collections.Update{Collection: rec.Collection, Author: rec.Author, Seq: rec.Seq})
			}
		})
		return r, derr
	}
	return n.Submit(ctx, u)
}

// ErrNoSuchDevice: the Catalog has no record of the device.
var ErrNoSuchDevice = errors.New("no such device")

// revocationQueued reports whether this host's outbox holds a revocation
// of device id that is not yet committed.
func (d *driver) revocationQueued(id lpeer.ID) bool {
	key := collections.DevicePrefix + id.String()
	for _, su := range d.outbox.list() {
		u := su.Update()
		if u.Collection != collections.Catalog || u.Key != key || u.Delete {
			continue
		}
		if v, err := u.Decode(); err == nil {
			if dev, ok := v.(collections.Device); ok && dev.Revoked {
				return true
			}
		}
	}
	return false
}

// DeviceStatus is an agent's own device certificate.
type DeviceStatus struct {
	User       string    `json:"user"`
	Device     string    `json:"device"`
	Name       string    `json:"name"`
	HomeServer string    `json:"home_server"`
	Issued     time.Time `json:"issued"`
	Expires    time.Time `json:"expires"`
	RenewAt    time.Time `json:"renew_at"`
	// Accepted: this node's copy of the Catalog holds the device as valid.
	Accepted bool   `json:"accepted"`
	Cert     []byte `json:"-"` // the current certificate (renewed ones replace it)
}

// DeviceStatus returns this agent's device certificate, or ok false if it
// has none.
func (n *Node) DeviceStatus(ctx context.Context) (st DeviceStatus, ok bool, err error) {
	err = n.do(ctx, func(_ context.Context, d *driver) {
		a := d.auth
		if a == nil || a.cert == nil {
			return
		}
		c := a.certInfo
		_, accepted := d.state.ValidDevice(d.self, d.cfg.Now())
		st = DeviceStatus{
			User: c.User, Device: c.Device, Name: c.Name, HomeServer: c.Server, Issued: c.IssuedAt(),
			Expires: c.ExpiresAt(), RenewAt: renewAt(c), Accepted: accepted, Cert: a.cert,
		}
		ok = true
	})
	return st, ok, err
}

// --- configuration ---

// guestEndpoints are the local endpoints on which a server admits guests:
// Config.PublicListen, or else the Listen addresses on a port of an
// announced public address and of no private one. Agents admit none.
func (c *Config) guestEndpoints() ([]endpoint, error) {
	if c.Role != identity.RoleServer || c.Witness {
		return nil, nil
	}
	var out []endpoint
	if len(c.PublicListen) > 0 {
		for _, s := range c.PublicListen {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return nil, fmt.Errorf("public listen address %q: %w", s, err)
			}
			ep, ok := listenEndpoint(a)
			if !ok || ep.port == "0" {
				return nil, fmt.Errorf("public listen address %q: want an IP address, a TCP or UDP transport and an explicit port", s)
			}
			out = append(out, ep)
		}
		return out, nil
	}
	ports := func(list []string) map[[2]string]bool {
		m := map[[2]string]bool{}
		for _, s := range list {
			if a, err := ma.NewMultiaddr(s); err == nil {
				for _, comp := range a {
					if comp.Code() == ma.P_TCP || comp.Code() == ma.P_UDP {
						m[[2]string{comp.Protocol().Name, comp.Value()}] = true
						break
					}
				}
			}
		}
		return m
	}
	pub, priv := ports(c.PublicAddrs), ports(c.PrivateAddrs)
	for _, s := range c.Listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		ep, ok := listenEndpoint(a)
		if !ok || ep.port == "0" {
			continue
		}
		key := [2]string{ma.ProtocolWithCode(ep.proto).Name, ep.port}
		if pub[key] && !priv[key] {
			out = append(out, ep)
		}
	}
	return out, nil
}
