package peer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/identity/identitytest"
)

func TestPasswordStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), passwordsFile)
	s, err := openPasswords(path, identitytest.FastKDF)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	if s.check("ann", []byte("x")) {
		t.Fatalf("check(user without password) = true")
	}
	for _, bad := range [][]byte{nil, make([]byte, MaxPasswordSize+1)} {
		if err := s.set("ann", bad, now); err == nil {
			t.Errorf("set(%d-byte password) succeeded", len(bad))
		}
	}
	if err := s.set("ann", []byte("correct horse"), now); err != nil {
		t.Fatal(err)
	}
	if err := s.set("bob", []byte("correct horse"), now); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("passwords file: %v, mode %v; want 0600", err, fi.Mode())
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "correct horse") {
		t.Fatalf("passwords file holds a password in clear")
	}

	// Reopened, the hashes still check; each user has their own salt.
	s, err = openPasswords(path, identitytest.FastKDF)
	if err != nil {
		t.Fatal(err)
	}
	if !s.check("ann", []byte("correct horse")) || s.check("ann", []byte("correct horsE")) || s.check("cat", []byte("correct horse")) {
		t.Errorf("check gives wrong answers after reopening")
	}
	if string(s.users["ann"].Salt) == string(s.users["bob"].Salt) || string(s.users["ann"].Hash) == string(s.users["bob"].Hash) {
		t.Errorf("two users share a salt or a hash")
	}
	if err := s.remove("ann", "nobody"); err != nil {
		t.Fatal(err)
	}
	s, _ = openPasswords(path, identitytest.FastKDF)
	if got := s.list(); len(got) != 1 || got[0] != "bob" || s.has("ann") {
		t.Errorf("after remove(ann): users %v", got)
	}

	// A damaged file is refused, not silently emptied.
	if err := os.WriteFile(path, []byte(`{"format":1,"users":{"x":{"salt":"","hash":"","argon2id":{"time":99,"memory_kib":1,"threads":1}}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openPasswords(path, identitytest.FastKDF); err == nil {
		t.Errorf("openPasswords(damaged) succeeded")
	}
}

func TestLoginLimiter(t *testing.T) {
	l := newLoginLimiter()
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	// Three failures are free.
	for i := range loginFreeFailures {
		if w := l.wait("ann", "p1", now); w != 0 {
			t.Fatalf("attempt %d waits %v; want 0", i+1, w)
		}
		l.failed("ann", "p1", now)
	}
	// Then the delay doubles from 1 s with each failure, up to 5 minutes.
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300}
	for i, w := range want {
		w *= time.Second
		if got := l.wait("ann", "p1", now); got != w {
			t.Fatalf("after %d failures: wait %v; want %v", loginFreeFailures+i, got, w)
		}
		if got := l.wait("ann", "p1", now.Add(w)); got != 0 {
			t.Fatalf("after %d failures and the delay: wait %v; want 0", loginFreeFailures+i, got)
		}
		now = now.Add(w)
		l.failed("ann", "p1", now)
	}
	// Per user and source: ann from another source does not wait, nor
	// (below loginFreeSourceFailures failures there) bob from p1.
	if l.wait("ann", "p1", now) == 0 || l.wait("ann", "p2", now) != 0 || l.wait("bob", "p1", now) != 0 {
		t.Errorf("limits are not per user and source")
	}
	// Per source: many failures from p3, for any users, delay p3.
	for i := range loginFreeSourceFailures {
		l.failed(fmt.Sprintf("u%d", i), "p3", now)
	}
	if l.wait("dan", "p3", now) != loginBaseDelay || l.wait("dan", "p4", now) != 0 {
		t.Errorf("after %d failures from p3: wait %v, from p4 %v; want %v, 0", loginFreeSourceFailures,
			l.wait("dan", "p3", now), l.wait("dan", "p4", now), loginBaseDelay)
	}
	// A success clears the user's record at the source.
	l.succeeded("ann", "p1")
	if w := l.wait("ann", "p1", now); w != 0 {
		t.Errorf("after a success: wait %v; want 0", w)
	}
	// Records are forgotten after a long idle time.
	for range loginFreeFailures + 2 {
		l.failed("cat", "p5", now)
	}
	later := now.Add(loginForgetAfter + time.Second)
	l.failed("cat", "p5", later)
	if w := l.wait("cat", "p5", later); w != 0 {
		t.Errorf("after an idle time and one failure: wait %v; want 0", w)
	}

	e := &RateLimitError{User: "ann", RetryAfter: 1500 * time.Millisecond}
	if got, want := e.Error(), "too many failed logins for ann; try again in 2s"; got != want || !errors.Is(e, ErrRateLimited) {
		t.Errorf("RateLimitError = %q; want %q wrapping ErrRateLimited", got, want)
	}
}

func TestGuestEndpoints(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []endpoint
		err  bool
	}{
		{"explicit", Config{Role: "server", PublicListen: []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/10.0.0.1/udp/4001/quic-v1"}},
			[]endpoint{{proto: 6, port: "4001"}, {proto: 273, port: "4001", ip: "10.0.0.1"}}, false},
		{"explicit port 0", Config{Role: "server", PublicListen: []string{"/ip4/0.0.0.0/tcp/0"}}, nil, true},
		{"derived from announced ports", Config{Role: "server",
			Listen:      []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/10.0.0.1/tcp/4002"},
			PublicAddrs: []string{"/dns4/example.com/tcp/4001"}, PrivateAddrs: []string{"/ip4/10.0.0.1/tcp/4002"}},
			[]endpoint{{proto: 6, port: "4001"}}, false},
		{"same port public and private", Config{Role: "server",
			Listen:      []string{"/ip4/0.0.0.0/tcp/4001"},
			PublicAddrs: []string{"/dns4/example.com/tcp/4001"}, PrivateAddrs: []string{"/ip4/10.0.0.1/tcp/4001"}}, nil, false},
		{"agent", Config{Role: "agent", PublicListen: []string{"/ip4/0.0.0.0/tcp/4001"}}, nil, false},
	}
	for _, tc := range tests {
		got, err := tc.cfg.guestEndpoints()
		if (err != nil) != tc.err || len(got) != len(tc.want) {
			t.Errorf("%s: guestEndpoints = %v, %v; want %v (error %v)", tc.name, got, err, tc.want, tc.err)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: endpoint %d = %+v; want %+v", tc.name, i, got[i], tc.want[i])
			}
		}
	}
}
