package peer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// loginCluster is three servers with separate public and private
// addresses, fast password hashing and a 1 s guest timeout, with users ann
// (home s2) and bob (home s3) who have passwords.
func loginCluster(t testing.TB) *peertest.PublicCluster {
	t.Helper()
	c := peertest.NewPublicCluster(t, 3, collections.DefaultFailover(3))
	c.Configure = func(_ *peertest.Member, cfg *peer.Config) {
		cfg.PasswordKDF = identitytest.FastKDF
		cfg.GuestTimeout = time.Second
	}
	c.StartAll()
	if m, _ := c.WaitMaster(20 * time.Second); m != 0 {
		t.Fatalf("master is %s, want s1", c.Members[m].Name)
	}
	putUser(t, c.Cluster, 0, "ann", 1)
	putUser(t, c.Cluster, 0, "bob", 2)
	c.WaitConverged(10 * time.Second)
	setPassword(t, c, 1, "ann", "ann's secret")
	setPassword(t, c, 2, "bob", "bob's secret")
	return c
}

func setPassword(t testing.TB, c *peertest.PublicCluster, at int, user, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Node(at).SetPassword(ctx, user, []byte(password)); err != nil {
		t.Fatalf("SetPassword(%s) at %s: %v", user, c.Members[at].Name, err)
	}
}

func login(a *peertest.Agent, addr, user, password string) (peer.LoginResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return peer.Login(ctx, a.Key, addr, user, []byte(password), a.Name+" laptop")
}

// memberConn reports whether server i has a member (not guest) connection
// to id.
func memberConn(c *peertest.PublicCluster, i int, id lpeer.ID) bool {
	for _, p := range c.Status(i).Peers {
		if p.ID == id.String() && !p.Guest {
			return true
		}
	}
	return false
}

// anyConn reports whether server i has any connection to id.
func anyConn(c *peertest.PublicCluster, i int, id lpeer.ID) bool {
	for _, p := range c.Status(i).Peers {
		if p.ID == id.String() {
			return true
		}
	}
	return false
}

func devices(t *testing.T, n *peer.Node, user string) []peer.DeviceInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ds, err := n.Devices(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// validEverywhere reports whether every server lists id as a valid device
// of user.
func validEverywhere(t *testing.T, c *peertest.PublicCluster, user string, id lpeer.ID, valid bool) bool {
	for i := range c.Members {
		found := false
		for _, d := range devices(t, c.Node(i), user) {
			if d.ID == id.String() {
				found = d.Valid
			}
		}
		if found != valid {
			return false
		}
	}
	return true
}

// TestLoginRevokeAndRemove: a user logs in from a new agent at a server
// that is not their home server, is redirected, gets a certificate from
// the home server, and the agent joins the domain as a device; revoking
// the device, or removing a user, cuts the agent off everywhere.
func TestLoginRevokeAndRemove(t *testing.T) {
	c := loginCluster(t)

	// Passwords are set at the home server only.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.Node(0).SetPassword(ctx, "ann", []byte("x"))
	var nh *peer.NotHomeServerError
	if !errors.As(err, &nh) || nh.HomeName != "s2" {
		t.Fatalf("SetPassword(ann) at s1 = %v; want NotHomeServerError naming s2", err)
	}
	if err := c.Node(1).SetPassword(ctx, "zed", []byte("x")); !errors.Is(err, peer.ErrNoSuchUser) {
		t.Fatalf("SetPassword(zed) = %v; want ErrNoSuchUser", err)
	}

	// Log in at s1; s1 redirects to s2, which issues the certificate.
	laptop := peertest.NewAgent(t, "laptop")
	res, err := login(laptop, c.PublicP2P(0), "ann", "ann's secret")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if res.HomeServer != c.Members[1].Key.ID() || res.User != "ann" {
		t.Fatalf("login result: home %s, user %s; want s2, ann", res.HomeServer, res.User)
	}
	cert, err := collections.OpenDeviceCert(res.Cert)
	if err != nil || cert.DeviceID() != laptop.ID() || cert.ServerID() != c.Members[1].Key.ID() {
		t.Fatalf("certificate %+v, %v", cert, err)
	}
	if g, err := collections.OpenGenesis(res.Genesis); err != nil || g.Hash() != c.Genesis.Hash() {
		t.Fatalf("genesis from login: %v", err)
	}

	// The agent, with the genesis and certificate, is a device everywhere.
	laptop.Start(res.Genesis, res.Cert)
	c.WaitFor("the laptop listed as ann's device on every server", 10*time.Second, func() bool {
		return validEverywhere(t, c, "ann", laptop.ID(), true)
	})
	c.WaitFor("the laptop connected to every server as a member", 10*time.Second, func() bool {
		for i := range c.Members {
			if !memberConn(c, i, laptop.ID()) {
				return false
			}
		}
		return true
	})
	st, ok, err := laptop.Node().DeviceStatus(ctx)
	if err != nil || !ok || st.User != "ann" || st.HomeServer != c.Members[1].Key.ID().String() {
		t.Fatalf("DeviceStatus = %+v, %v, %v", st, ok, err)
	}
	c.WaitFor("the laptop to accept its own record", 5*time.Second, func() bool {
		st, _, _ := laptop.Node().DeviceStatus(ctx)
		return st.Accepted
	})

	// Revoking is done at the home server.
	if _, err := c.Node(0).RevokeDevice(ctx, laptop.ID()); !errors.As(err, &nh) {
		t.Fatalf("RevokeDevice at s1 = %v; want NotHomeServerError", err)
	}
	if r, err := c.Node(1).RevokeDevice(ctx, laptop.ID()); err != nil || r.Queued || r.Certified.IsZero() {
		t.Fatalf("RevokeDevice at s2 = %+v, %v; want a committed receipt", r, err)
	}
	if r, err := c.Node(1).RevokeDevice(ctx, laptop.ID()); err != nil || r.Queued || r.Certified.IsZero() {
		t.Fatalf("RevokeDevice again at s2 = %+v, %v; want the committed receipt", r, err)
	}
	c.WaitFor("the laptop cut off from every server", 5*time.Second, func() bool {
		for i := range c.Members {
			if anyConn(c, i, laptop.ID()) {
				return false
			}
		}
		return validEverywhere(t, c, "ann", laptop.ID(), false)
	})
	// It keeps trying to reconnect (its dialer backs off up to 5 s) and
	// is refused even as a guest.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for i := range c.Members {
			if anyConn(c, i, laptop.ID()) {
				t.Fatalf("revoked laptop connected to %s again", c.Members[i].Name)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	laptop.Stop()
	if _, err := login(laptop, c.PublicP2P(1), "ann", "ann's secret"); err == nil {
		t.Fatalf("login from a revoked device succeeded")
	}

	// Removing a user cuts their devices off and deletes their password.
	desk := peertest.NewAgent(t, "desk")
	res, err = login(desk, c.PublicP2P(2), "bob", "bob's secret")
	if err != nil {
		t.Fatalf("login at bob's home server: %v", err)
	}
	desk.Start(res.Genesis, res.Cert)
	c.WaitFor("the desk connected to every server as a member", 10*time.Second, func() bool {
		for i := range c.Members {
			if !memberConn(c, i, desk.ID()) {
				return false
			}
		}
		return true
	})
	if _, err := c.Submit(0, collections.Delete(collections.Domain, collections.UserPrefix+"bob")); err != nil {
		t.Fatalf("removing bob: %v", err)
	}
	c.WaitFor("the desk cut off from every server", 5*time.Second, func() bool {
		for i := range c.Members {
			if memberConn(c, i, desk.ID()) {
				return false
			}
		}
		return validEverywhere(t, c, "bob", desk.ID(), false)
	})
	// It may come back only as a guest on a public address, which may not
	// sync and is dropped after the guest timeout.
	deadline = time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for i := range c.Members {
			if memberConn(c, i, desk.ID()) {
				t.Fatalf("removed user's desk is a member of %s again", c.Members[i].Name)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, err := os.ReadFile(filepath.Join(c.Members[2].DataDir, "passwords.json"))
	if err != nil || strings.Contains(string(b), `"bob"`) {
		t.Errorf("bob's password is still stored at s3 (%v):\n%s", err, b)
	}
}

// TestLoginRefusals: wrong passwords and unknown users get the same
// error, and rapid failures for a user from one address are rate-limited.
func TestLoginRefusals(t *testing.T) {
	c := loginCluster(t)
	mallory := peertest.NewAgent(t, "mallory")
	for _, tc := range []struct{ user, password string }{
		{"bob", "guess 1"}, {"zed", "guess 2"}, {"bob", "guess 3"}, {"bob", "guess 4"},
	} {
		_, err := login(mallory, c.PublicP2P(2), tc.user, tc.password)
		if !errors.Is(err, peer.ErrLoginDenied) || err.Error() != "wrong user name or password" {
			t.Fatalf("login(%s, wrong password) = %v; want %q", tc.user, err, peer.ErrLoginDenied)
		}
	}
	_, err := login(mallory, c.PublicP2P(2), "bob", "bob's secret")
	var rl *peer.RateLimitError
	if !errors.As(err, &rl) || !errors.Is(err, peer.ErrRateLimited) || !strings.HasPrefix(err.Error(), "too many failed logins for bob; try again in ") {
		t.Fatalf("4th login as bob = %v; want rate-limited", err)
	}
	// Once the delay is over, the right password works.
	time.Sleep(rl.RetryAfter)
	if _, err := login(mallory, c.PublicP2P(2), "bob", "bob's secret"); err != nil {
		t.Fatalf("login after the delay: %v", err)
	}
}

// TestGuests: an unknown host may not connect to a server's private
// address; on the public one it may only log in, and is dropped after the
// guest timeout.
func TestGuests(t *testing.T) {
	c := loginCluster(t)
	h, err := libp2p.New(libp2p.Identity(identitytest.Key("stranger").Libp2p()), libp2p.NoListenAddrs, libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s1 := c.Members[0].Key.ID()
	info := func(addr string) lpeer.AddrInfo {
		return lpeer.AddrInfo{ID: s1, Addrs: []ma.Multiaddr{ma.StringCast(addr)}}
	}

	// With early muxer negotiation the dialer may finish its side of the
	// upgrade before the server's gater closes the connection; either way
	// not even the login protocol is served there.
	cerr := h.Connect(ctx, info(c.Members[0].Addr))
	if err := tryStream(ctx, h, s1, "/baton/login/1.0.0"); err == nil {
		t.Fatalf("an unknown host logged in on s1's private address (dial error %v)", cerr)
	}
	if anyConn(c, 0, h.ID()) {
		t.Errorf("s1 lists a connection from an unknown host on its private address")
	}
	c.WaitFor("the refused connection closed", 5*time.Second, func() bool {
		return h.Network().Connectedness(s1) != network.Connected
	})
	h.Peerstore().ClearAddrs(s1)
	if err := h.Connect(ctx, info(c.Public[0])); err != nil {
		t.Fatalf("an unknown host could not connect to s1's public address: %v", err)
	}
	if !anyConn(c, 0, h.ID()) || memberConn(c, 0, h.ID()) {
		t.Errorf("s1 does not show the stranger as a guest")
	}
	for _, proto := range []protocol.ID{"/baton/sync/1.0.0", "/baton/propose/1.0.0"} {
		if err := tryStream(ctx, h, s1, proto); err == nil {
			t.Errorf("a guest used %s", proto)
		}
	}
	if err := tryStream(ctx, h, s1, "/baton/login/1.0.0"); err != nil {
		t.Errorf("a guest could not use the login protocol: %v", err)
	}
	c.WaitFor("the guest dropped", 5*time.Second, func() bool {
		return h.Network().Connectedness(s1) != network.Connected
	})
}

// tryStream sends one frame on proto and reads an answer.
func tryStream(ctx context.Context, h host.Host, p lpeer.ID, proto protocol.ID) error {
	s, err := h.NewStream(ctx, p, proto)
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.Write([]byte{1, 0xa0}); err != nil {
		return err
	}
	_ = s.CloseWrite()
	buf := make([]byte, 1)
	_, err = s.Read(buf)
	return err
}

// TestRenewal: an agent renews its certificate half way through its
// validity, and the home server publishes the new record.
func TestRenewal(t *testing.T) {
	c := loginCluster(t)
	for i := range c.Members {
		c.Stop(i)
	}
	c.Configure = func(_ *peertest.Member, cfg *peer.Config) {
		cfg.PasswordKDF = identitytest.FastKDF
		cfg.DeviceValidity = 4 * time.Second
	}
	c.StartAll()
	c.WaitMaster(20 * time.Second)

	a := peertest.NewAgent(t, "tablet")
	res, err := login(a, c.PublicP2P(1), "ann", "ann's secret")
	if err != nil {
		t.Fatal(err)
	}
	first, _ := collections.OpenDeviceCert(res.Cert)
	got := make(chan []byte, 4)
	a.Config = func(cfg *peer.Config) { cfg.OnDeviceCert = func(b []byte) { got <- b } }
	n := a.Start(res.Genesis, res.Cert)
	select {
	case b := <-got:
		c2, err := collections.OpenDeviceCert(b)
		if err != nil || c2.Expires <= first.Expires || c2.DeviceID() != a.ID() {
			t.Fatalf("renewed certificate %+v, %v", c2, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no renewal")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.WaitFor("the renewed record everywhere", 5*time.Second, func() bool {
		st, _, _ := n.DeviceStatus(ctx)
		for i := range c.Members {
			for _, d := range devices(t, c.Node(i), "ann") {
				if d.ID == a.ID().String() && !d.Expires.Equal(st.Expires) {
					return false
				}
			}
		}
		return true
	})
}
