package console

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
)

func TestRemoteListen(t *testing.T) {
	for _, tc := range []struct {
		host           string
		tls, passwords bool
		want           error
	}{
		{"127.0.0.1", false, false, nil},
		{"::1", true, true, nil},
		{"localhost", false, false, nil},
		{"0.0.0.0", false, true, ErrNotLoopback},
		{"192.0.2.1", false, false, ErrNotLoopback},
		{"0.0.0.0", true, false, ErrNoPasswordCheck},
		{"::", true, false, ErrNoPasswordCheck},
		{"192.0.2.1", true, true, nil},
		{"::", true, true, nil},
	} {
		if got := remoteListen(tc.host, tc.tls, tc.passwords); !errors.Is(got, tc.want) || (tc.want == nil) != (got == nil) {
			t.Errorf("remoteListen(%s, tls %v, passwords %v) = %v; want %v", tc.host, tc.tls, tc.passwords, got, tc.want)
		}
	}
}

func TestPasswordLoginDecision(t *testing.T) {
	if err := passwordLogin(true); err != nil {
		t.Errorf("with the check: %v", err)
	}
	if err := passwordLogin(false); err == nil {
		t.Error("a console without the check takes passwords")
	}
}

func TestClientSource(t *testing.T) {
	for in, want := range map[string]string{"[2001:db8::1]:443": "2001:db8::/64", "192.0.2.7:5555": "192.0.2.7", "odd": "odd"} {
		if got := clientSource(in); got != want {
			t.Errorf("clientSource(%q) = %q; want %q", in, got, want)
		}
	}
}

// fakeChecker stands for the home server's password check: alice's
// password is "right".
type fakeChecker struct {
	mu      sync.Mutex
	calls   int
	limited bool // the home server answers rate-limited
	// also: other users' passwords (by name) the home server takes.
	also map[string]string
}

func (f *fakeChecker) CheckPassword(_ context.Context, user string, password []byte, client string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	switch {
	case f.limited:
		return &peer.RateLimitError{User: user, RetryAfter: 90 * time.Second}
	case user == "alice" && string(password) == "right" && client == "127.0.0.1":
		return nil
	case f.also[user] != "" && f.also[user] == string(password):
		return nil
	}
	return peer.ErrLoginDenied
}

func (f *fakeChecker) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// TestPasswordLoginTLS: an agent's console over TLS takes its user's
// name and password, checked by the home server (a fake here), and opens
// a session for the pages only; wrong passwords are refused and, after
// the free failures, rate-limited here without asking the home server.
func TestPasswordLoginTLS(t *testing.T) {
	home := t.TempDir()
	ln, err := Listen(ListenConfig{Home: home, Addr: "127.0.0.1:0", TLS: true, Passwords: true, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeServer()
	src.set(func(f *fakeSource) { f.status.Role, f.status.Chain = "agent", nil })
	checker := &fakeChecker{}
	api := fakeAPI(src)
	c, err := New(Config{API: api, Source: src, Actions: control.NewHandlerClient("test", api), Monitor: NewMonitor(nil),
		Token: testToken, Secure: true, Passwords: checker})
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, c, ln)
	pool, err := CertPool(home)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := strings.TrimSuffix(ln.URL, "/")
	do := func(method, path string, form url.Values) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, base+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}

	_, body := do("GET", "/login", nil)
	contains(t, "the login page", body, `name="user"`, `name="password"`, "checked at your home server", `name="token"`)

	// Bob is not this agent's user: the home server denies it, as a wrong
	// password.
	if resp, body := do("POST", "/login", url.Values{"user": {"bob"}, "password": {"right"}}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong user name or password") {
		t.Errorf("bob's login: %s %q", resp.Status, body)
	}
	// Alice's password: a session, for the pages and the event stream.
	resp, _ := do("POST", "/login", url.Values{"user": {"alice"}, "password": {"right"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("alice's login: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == SessionCookie {
			session = ck
		}
	}
	if session == nil || !session.Secure || !session.HttpOnly {
		t.Fatalf("session cookie %+v; want Secure and HttpOnly", session)
	}
	if resp, body := do("GET", "/", nil); resp.StatusCode != 200 || !strings.Contains(body, "<h2>Folders</h2>") {
		t.Errorf("alice's page: %s", resp.Status)
	}
	// Not the API, the metrics or login codes: those take the token.
	for _, tc := range []struct{ method, path string }{{"GET", "/v1/status"}, {"GET", "/metrics"}, {"POST", "/login/code"}} {
		if resp, body := do(tc.method, tc.path, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "take the console token") {
			t.Errorf("%s %s with alice's session: %s %q; want 403", tc.method, tc.path, resp.Status, body)
		}
	}

	// Guesses: refused, then (after the 3 free failures of the servers'
	// login limiter) rate-limited here without asking.
	const freeFailures = 3
	for i := 0; i < freeFailures; i++ {
		if resp, body := do("POST", "/login", url.Values{"user": {"alice"}, "password": {"guess"}}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong user name or password") {
			t.Errorf("guess %d: %s %q", i, resp.Status, body)
		}
	}
	asked := checker.count()
	if resp, body := do("POST", "/login", url.Values{"user": {"alice"}, "password": {"right"}}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Too many failed logins: try again in 1 s") {
		t.Errorf("after %d guesses: %s %q; want rate-limited", freeFailures, resp.Status, body)
	}
	if checker.count() != asked {
		t.Error("a rate-limited login was checked at the home server")
	}
	// The home server's own limit is told as such.
	checker.mu.Lock()
	checker.limited = true
	checker.mu.Unlock()
	if resp, body := do("POST", "/login", url.Values{"user": {"carol"}, "password": {"x"}}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "try again in 90 s") {
		t.Errorf("limited at the home server: %s %q", resp.Status, body)
	}

}

func TestLocalHost(t *testing.T) {
	for in, want := range map[string]string{"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "192.0.2.1": "192.0.2.1", "localhost": "localhost"} {
		if got := localHost(in); got != want {
			t.Errorf("localHost(%q) = %q; want %q", in, got, want)
		}
	}
}
