package peer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/peer"
)

// TestCheckPassword: an agent asks its user's home server whether a
// password is the user's, for its console: the right one passes, a wrong
// one is denied and, repeated, rate-limited; another user's name is
// refused without asking; a server is no agent to ask.
func TestCheckPassword(t *testing.T) {
	c := loginCluster(t)
	ann := startDevice(t, c, "ann-laptop", 0, "ann", "ann's secret") // homed at s2
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if err := ann.CheckPassword(ctx, "ann", []byte("ann's secret"), "192.0.2.1"); err != nil {
		t.Fatalf("the right password: %v", err)
	}
	if err := ann.CheckPassword(ctx, "bob", []byte("bob's secret"), "192.0.2.1"); !errors.Is(err, peer.ErrLoginDenied) {
		t.Errorf("bob's password through ann's laptop = %v; want ErrLoginDenied", err)
	}
	// The home server answers a device for its own user only, whatever
	// the device asks: bob's right password through ann's laptop, asked
	// as the protocol allows, is refused without being checked.
	st, _, err := ann.DeviceStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	home, err := lpeer.Decode(st.HomeServer)
	if err != nil {
		t.Fatal(err)
	}
	if err := peer.RawPasswordCheck(ctx, ann, home, "bob", []byte("bob's secret")); err == nil || !strings.Contains(err.Error(), "a device asks only for its own user") {
		t.Errorf("bob's password asked by ann's laptop at the home server = %v; want refused", err)
	}
	if err := peer.RawPasswordCheck(ctx, ann, home, "ann", []byte("ann's secret")); err != nil {
		t.Errorf("ann's password asked as the protocol allows = %v; want accepted", err)
	}
	var limited *peer.RateLimitError
	for i := 0; i < 10 && limited == nil; i++ {
		err := ann.CheckPassword(ctx, "ann", []byte("a guess"), "192.0.2.1")
		switch {
		case errors.As(err, &limited):
			if i < 3 {
				t.Errorf("rate-limited after %d failures; want 3 free ones", i)
			}
		case !errors.Is(err, peer.ErrLoginDenied):
			t.Fatalf("a wrong password = %v; want ErrLoginDenied", err)
		}
	}
	if limited == nil || limited.RetryAfter <= 0 {
		t.Fatalf("ten wrong passwords were never rate-limited (%v)", limited)
	}
	// Even the right password waits now.
	if err := ann.CheckPassword(ctx, "ann", []byte("ann's secret"), "192.0.2.1"); !errors.As(err, &limited) {
		t.Errorf("the right password while limited = %v; want a RateLimitError", err)
	}
	if err := c.Node(0).CheckPassword(ctx, "ann", []byte("ann's secret"), ""); !errors.Is(err, peer.ErrNotLoggedIn) {
		t.Errorf("a server asked = %v; want ErrNotLoggedIn", err)
	}
}
