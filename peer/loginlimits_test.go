package peer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// otherSource is a loopback address other than 127.0.0.1: hosts that
// listen on it dial from it (TCP port reuse), so the servers see them
// coming from another source address than Login's fresh hosts.
const otherSource = "127.0.0.2"

// hostAt starts a libp2p host with the test key of name that listens on
// ip, so that its TCP dials leave from ip. It is closed when the test ends.
func hostAt(t *testing.T, name, ip string) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(identitytest.Key(name).Libp2p()),
		libp2p.ListenAddrStrings(fmt.Sprintf("/ip4/%s/tcp/0", ip)), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// requireSource skips the test unless h's connection to p leaves from
// ip (it does not when TCP port reuse is off).
func requireSource(t *testing.T, h host.Host, p lpeer.ID, ip string) {
	t.Helper()
	for _, c := range h.Network().ConnsToPeer(p) {
		if strings.HasPrefix(c.LocalMultiaddr().String(), "/ip4/"+ip+"/") {
			return
		}
	}
	t.Skipf("%s's connections to %s do not leave from %s", h.ID(), p, ip)
}

// guestsFrom counts server i's guest connections from ip.
func guestsFrom(c *peertest.PublicCluster, i int, hosts []host.Host) int {
	n := 0
	for _, h := range hosts {
		for _, p := range c.Status(i).Peers {
			if p.ID == h.ID().String() && p.Guest {
				n++
			}
		}
	}
	return n
}

// TestGuestSlotsPerSource: one source address holding every guest slot it
// can get (70 fresh keys, each kept connected) does not stop a user
// logging in from another address.
func TestGuestSlotsPerSource(t *testing.T) {
	c := loginCluster(t)
	// Slots are held for the default 30 s here, longer than the test.
	for i := range c.Members {
		c.Stop(i)
	}
	c.Configure = func(_ *peertest.Member, cfg *peer.Config) { cfg.PasswordKDF = identitytest.FastKDF }
	c.StartAll()
	c.WaitMaster(20 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s2, err := lpeer.AddrInfoFromString(c.PublicP2P(1))
	if err != nil {
		t.Fatal(err)
	}
	var flood []host.Host
	admitted := 0
	for i := range 70 {
		h := hostAt(t, fmt.Sprintf("flood-%d", i), otherSource)
		flood = append(flood, h)
		if h.Connect(ctx, *s2) == nil && tryStream(ctx, h, s2.ID, "/baton/login/1.0.0") == nil {
			if admitted == 0 {
				requireSource(t, h, s2.ID, otherSource)
			}
			admitted++
		}
	}
	if admitted == 0 || admitted > 4 {
		t.Errorf("%d of %d guests from %s were served; want 1 to 4", admitted, len(flood), otherSource)
	}
	laptop := peertest.NewAgent(t, "laptop")
	if _, err := login(laptop, c.PublicP2P(1), "ann", "ann's secret"); err != nil {
		t.Fatalf("login from 127.0.0.1 while %s holds guest slots: %v", otherSource, err)
	}
	if n := guestsFrom(c, 1, flood); n > 4 {
		t.Errorf("s2 holds %d guests from %s; want at most 4", n, otherSource)
	}
}

// TestLoginBackoffPerSource: a third party's wrong passwords for bob from
// one address do not delay bob logging in from another.
func TestLoginBackoffPerSource(t *testing.T) {
	c := loginCluster(t)
	mallory := hostAt(t, "mallory", otherSource)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s3, err := lpeer.AddrInfoFromString(c.PublicP2P(2))
	if err != nil {
		t.Fatal(err)
	}
	limited := false
	for i := range 6 {
		_, err := peer.LoginFrom(ctx, mallory, c.PublicP2P(2), "bob", []byte(fmt.Sprintf("guess %d", i)), "mallory's laptop")
		if i == 0 {
			requireSource(t, mallory, s3.ID, otherSource)
		}
		switch {
		case errors.Is(err, peer.ErrRateLimited):
			limited = true
		case !errors.Is(err, peer.ErrLoginDenied):
			t.Fatalf("guess %d = %v; want denied or rate-limited", i, err)
		}
	}
	if !limited {
		t.Errorf("6 wrong passwords from one address were never rate-limited")
	}
	desk := peertest.NewAgent(t, "desk")
	start := time.Now()
	if _, err := login(desk, c.PublicP2P(2), "bob", "bob's secret"); err != nil {
		t.Fatalf("bob's login from 127.0.0.1 after wrong passwords from %s: %v", otherSource, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("bob's login took %v", d)
	}
}

// TestLoginEnumeration: asked about an unknown name, servers answer as
// they do for a real user with a wrong password: every server but one
// redirects to that one, in answers of the same shape, and that one
// denies.
func TestLoginEnumeration(t *testing.T) {
	c := loginCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := hostAt(t, "prober", "127.0.0.1")
	// answers asks every server about user once, and returns the server
	// each points at (itself when it denies) and what a prober sees of
	// each answer: its code, which fields are set, and its text with the
	// name and server IDs blanked.
	answers := func(user string) (targets []string, shapes []string) {
		for at, m := range c.Members {
			resp, err := peer.RawLogin(ctx, h, c.PublicP2P(at), user, []byte("wrong"), "probe")
			if err != nil {
				t.Fatalf("login(%s) at %s: %v", user, m.Name, err)
			}
			text := strings.ReplaceAll(resp.Error, user, "USER")
			target := m.Key.ID().String()
			for _, x := range c.Members {
				text = strings.ReplaceAll(text, x.Key.ID().String(), "SERVER")
			}
			if resp.Code == "redirect" {
				target = resp.Server
			}
			targets = append(targets, target)
			shapes = append(shapes, fmt.Sprintf("code=%q error=%q cert=%v genesis=%v server=%v addrs=%d retry=%v",
				resp.Code, text, len(resp.Cert) > 0, len(resp.Genesis) > 0, resp.Server != "", len(resp.Addrs), resp.RetryMillis))
		}
		return targets, shapes
	}
	_, bob := answers("bob") // bob's home is s3: redirect, redirect, denied
	for _, name := range []string{"zed", "carol", "nobody", "admin", "root"} {
		targets, shapes := answers(name)
		for i := range targets {
			if targets[i] != targets[0] {
				t.Errorf("login(%s) points at %v: servers disagree, unlike for a real user", name, targets)
				break
			}
		}
		for i, sh := range shapes {
			want := bob[0] // a redirect
			if targets[i] == c.Members[i].Key.ID().String() {
				want = bob[2] // a denial at the home server
			}
			if sh != want {
				t.Errorf("login(%s) at %s = %s; want %s", name, c.Members[i].Name, sh, want)
			}
		}
	}
}
