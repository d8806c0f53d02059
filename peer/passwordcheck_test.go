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
// refused without asking.
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
}

// TestServerCheckPassword: a server checks a user's password for its
// console at the user's home server: itself, or another server of the
// chain, which takes the question from a server for its own users only.
func TestServerCheckPassword(t *testing.T) {
	c := loginCluster(t) // ann homed at s2, bob at s3
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		at             int
		user, password string
		want           error
	}{
		{1, "ann", "ann's secret", nil},                 // at her home server
		{0, "ann", "ann's secret", nil},                 // asked of s2
		{0, "bob", "bob's secret", nil},                 // asked of s3
		{0, "ann", "bob's secret", peer.ErrLoginDenied}, // wrong, at s2
		{1, "ann", "a guess", peer.ErrLoginDenied},      // wrong, here
		{0, "nosuch", "anything", peer.ErrLoginDenied},  // no such user
		{2, "ann", "", peer.ErrLoginDenied},             // no password
	} {
		err := c.Node(tc.at).CheckPassword(ctx, tc.user, []byte(tc.password), "192.0.2.9")
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("s%d CheckPassword(%s, %q) = %v; want %v", tc.at+1, tc.user, tc.password, err, tc.want)
		}
	}
	// s2 answers a server only for its own users: bob is s3's.
	if err := peer.RawPasswordCheck(ctx, c.Node(0), c.Members[1].Key.ID(), "bob", []byte("bob's secret")); err == nil || !strings.Contains(err.Error(), "not the user's home server") {
		t.Errorf("bob's password asked of s2 by s1 = %v; want refused", err)
	}
}
