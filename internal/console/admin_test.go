package console

import (
	"crypto/rand"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/baton-sync/baton/internal/control"
)

// TestServerAdminLogin: a server's console over TLS beyond loopback takes
// an admin's password, checked at the admin's home server (a fake here):
// a wrong password and a user who is not an admin are refused, an admin
// gets the server's page and its changes (made in the admin's name, and
// refused from another site), and the session ends once the user is no
// longer an admin.
func TestServerAdminLogin(t *testing.T) {
	home := t.TempDir()
	ln, err := Listen(ListenConfig{Home: home, Addr: "127.0.0.1:0", TLS: true, Passwords: true, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeServer() // a master
	src.set(func(f *fakeSource) {
		f.users = []control.User{{Name: "alice", HomeServer: "S1", HomeServerName: "s1", Admin: true}, {Name: "bob", HomeServer: "S2", HomeServerName: "s2"}}
	})
	checker := &fakeChecker{} // alice's password is "right"; bob's too
	checker.also = map[string]string{"bob": "right"}
	var (
		mu      sync.Mutex
		actedAs []string // control.RequestUser of each change the API got
	)
	fake := fakeAPI(src)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			mu.Lock()
			actedAs = append(actedAs, control.RequestUser(r.Context()))
			mu.Unlock()
		}
		fake.ServeHTTP(w, r)
	})
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
	do := func(method, path string, form url.Values, site string) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, base+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}

	_, body := do("GET", "/login", nil, "")
	contains(t, "the server's login page", body, `name="user"`, `name="password"`, `name="token"`)

	// A wrong password.
	if resp, body := do("POST", "/login", url.Values{"user": {"alice"}, "password": {"wrong"}}, ""); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong user name or password") {
		t.Errorf("alice's wrong password: %s %q", resp.Status, body)
	}
	// bob's right password: he is no admin.
	if resp, body := do("POST", "/login", url.Values{"user": {"bob"}, "password": {"right"}}, ""); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "bob is not an admin of the domain") {
		t.Errorf("bob, not an admin: %s %q", resp.Status, body)
	}
	if resp, _ := do("GET", "/", nil, ""); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the page after bob's refused login: %s; want a redirect to the login", resp.Status)
	}

	// alice, an admin: the server's page, with its changes.
	resp, _ := do("POST", "/login", url.Values{"user": {"alice"}, "password": {"right"}}, "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("alice's login: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, body = do("GET", "/", nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("alice's page: %s", resp.Status)
	}
	contains(t, "the server's page for an admin", body, "Folders hosted here", `action="/action/user-add"`, `action="/action/device-revoke"`)
	src.takeCalls()
	resp, _ = do("POST", "/action/user-add", url.Values{"name": {"carol"}, "home_server": {"s1"}}, "same-origin")
	if resp.StatusCode != http.StatusSeeOther || strings.Contains(resp.Header.Get("Location"), "error=") {
		t.Errorf("alice adds carol: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	calls := src.takeCalls()
	mu.Lock()
	as := actedAs
	mu.Unlock()
	if len(calls) != 1 || calls[0].Path != "/v1/users" || len(as) != 1 || as[0] != "alice" {
		t.Errorf("alice's change reached the API as %+v, for %q; want POST /v1/users for alice", calls, as)
	}
	// CSRF: the same change from another site is refused.
	if resp, _ := do("POST", "/action/user-add", url.Values{"name": {"mallory"}, "home_server": {"s1"}}, "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site change with alice's session: %s; want 403", resp.Status)
	}
	if calls := src.takeCalls(); len(calls) != 0 {
		t.Errorf("a cross-site change reached the API: %+v", calls)
	}
	// Still not the API: that takes the token.
	if resp, _ := do("GET", "/v1/status", nil, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the API with alice's session: %s; want 403", resp.Status)
	}

	// alice is no longer an admin: her session ends.
	src.set(func(f *fakeSource) { f.users[0].Admin = false })
	if resp, _ := do("GET", "/", nil, ""); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("the page once alice is no admin: %s to %q; want a redirect to the login", resp.Status, resp.Header.Get("Location"))
	}
	if resp, _ := do("POST", "/action/user-add", url.Values{"name": {"dave"}, "home_server": {"s1"}}, "same-origin"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("a change once alice is no admin: %s to %q; want a redirect to the login", resp.Status, resp.Header.Get("Location"))
	}
	src.set(func(f *fakeSource) { f.users[0].Admin = true })
	if resp, _ := do("GET", "/", nil, ""); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the ended session after alice is an admin again: %s; want it to stay ended", resp.Status)
	}
	if calls := src.takeCalls(); len(calls) != 0 {
		t.Errorf("changes reached the API after the session ended: %+v", calls)
	}
}
