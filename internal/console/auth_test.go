package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve runs c on a loopback port until the test ends and returns its
// base URL.
func serve(t *testing.T, c *Console) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, c, ln)
	return "http://" + ln.Addr().String()
}

// serveOn runs c on ln until the test ends.
func serveOn(t *testing.T, c *Console, ln net.Listener) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

func TestLoadToken(t *testing.T) {
	home := t.TempDir()
	tok, err := LoadToken(home, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, TokenFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("token file mode = %v; want 0600", st.Mode().Perm())
	}
	if len(tok) < 40 {
		t.Errorf("token %q is short", tok)
	}
	// Made readable by others: made private again, same token.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := LoadToken(home, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if again != tok {
		t.Errorf("LoadToken again = %q; want the same %q", again, tok)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("token file mode after LoadToken = %v; want 0600", st.Mode().Perm())
	}
}

// TestAuthRequired: every page and API route refuses requests without
// credentials, with a wrong token and with a wrong cookie, and serves the
// token and a session cookie got from the login form.
func TestAuthRequired(t *testing.T) {
	src := newFakeServer()
	c, _ := newTestConsole(t, src)
	base := serve(t, c)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	routes := []struct {
		method, path string
		page         bool
	}{
		{"GET", "/", true},
		{"GET", "/folder/F1", true},
		{"GET", "/v1/status", false},
		{"POST", "/v1/users", false},
		{"GET", "/metrics", false},
		{"GET", "/events", false},
		{"POST", "/login/code", false},
	}
	do := func(method, path string, set func(*http.Request)) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		if set != nil {
			set(req)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		resp, err := noRedirect.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	refusals := map[string]func(*http.Request){
		"none":           nil,
		"wrong bearer":   func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken+"x") },
		"basic":          func(r *http.Request) { r.SetBasicAuth("admin", testToken) },
		"wrong cookie":   func(r *http.Request) { r.AddCookie(&http.Cookie{Name: SessionCookie, Value: "forged"}) },
		"token cookie":   func(r *http.Request) { r.AddCookie(&http.Cookie{Name: SessionCookie, Value: testToken}) },
		"token as query": nil,
	}
	for _, rt := range routes {
		for name, set := range refusals {
			path := rt.path
			if name == "token as query" {
				path += "?token=" + testToken
			}
			resp := do(rt.method, path, set)
			want := http.StatusUnauthorized
			if rt.page {
				want = http.StatusSeeOther
			}
			if resp.StatusCode != want {
				t.Errorf("%s %s with %s: status %d; want %d", rt.method, rt.path, name, resp.StatusCode, want)
			}
			if rt.page && resp.StatusCode == http.StatusSeeOther && resp.Header.Get("Location") != "/login" {
				t.Errorf("%s %s with %s: redirected to %q; want /login", rt.method, rt.path, name, resp.Header.Get("Location"))
			}
		}
	}

	// The token as a Bearer header.
	for _, rt := range routes {
		if rt.path == "/events" {
			continue // a stream: checked below
		}
		resp := do(rt.method, rt.path, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken) })
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			t.Errorf("%s %s with the token: status %d (%s); want 200", rt.method, rt.path, resp.StatusCode, body)
		}
	}

	// The login form: a wrong token is refused, the right one gives a
	// session cookie that is HttpOnly and SameSite=Strict.
	resp, err := noRedirect.PostForm(base+"/login", url.Values{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("login with a wrong token: status %d, cookies %v; want 401 and none", resp.StatusCode, resp.Cookies())
	}
	resp, err = noRedirect.PostForm(base+"/login", url.Values{"token": {testToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if strings.HasPrefix(ck.Name, SessionCookie) {
			session = ck
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == nil {
		t.Fatalf("login: status %d, cookies %v; want 303 and a session", resp.StatusCode, resp.Cookies())
	}
	if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie HttpOnly=%v SameSite=%v; want true and Strict", session.HttpOnly, session.SameSite)
	}
	if session.Value == testToken {
		t.Error("the session cookie is the token itself")
	}
	for _, rt := range routes {
		if rt.path == "/events" {
			continue
		}
		resp := do(rt.method, rt.path, func(r *http.Request) { r.AddCookie(session) })
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s with the session: status %d; want 200", rt.method, rt.path, resp.StatusCode)
		}
	}

	// Logged out: the session no longer works.
	req, _ := http.NewRequest("POST", base+"/logout", nil)
	req.AddCookie(session)
	if resp, err := noRedirect.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if resp := do("GET", "/v1/status", func(r *http.Request) { r.AddCookie(session) }); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after logout: status %d; want 401", resp.StatusCode)
	}
}

// TestCrossOriginRefused: a browser request from another site that would
// change something is refused even with a session (CSRF), as is a login
// from another site.
func TestCrossOriginRefused(t *testing.T) {
	c, _ := newTestConsole(t, newFakeServer())
	base := serve(t, c)
	id, err := c.sessions.login(testToken)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		set        func(*http.Request)
	}{
		{"action, cross-site fetch", "/v1/users", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }},
		{"action, other origin", "/v1/users", func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") }},
		{"logout, other origin", "/logout", func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") }},
		{"login, other origin", "/login", func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") }},
	} {
		req, _ := http.NewRequest("POST", base+tc.path, bytes.NewReader([]byte("token="+testToken)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: SessionCookie, Value: id})
		tc.set(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d; want 403", tc.name, resp.StatusCode)
		}
	}
	// The same request from the console's own page is served.
	req, _ := http.NewRequest("POST", base+"/v1/users", strings.NewReader("{}"))
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.AddCookie(&http.Cookie{Name: SessionCookie, Value: id})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("same-origin action: status %d; want 200", resp.StatusCode)
	}
}

// TestLoginCode: a code made with the token logs a browser in once.
func TestLoginCode(t *testing.T) {
	c, _ := newTestConsole(t, newFakeServer())
	base := serve(t, c)
	req, _ := http.NewRequest("POST", base+"/login/code", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	code, _, _ := strings.Cut(strings.TrimPrefix(string(body), `{"code":"`), `"`)
	if resp.StatusCode != 200 || code == "" {
		t.Fatalf("login code: %d %s", resp.StatusCode, body)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err = browser.Get(base + "/login?code=" + code)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Folders hosted here") {
		t.Errorf("login with the code: status %d, page %.200q; want the home page", resp.StatusCode, page)
	}
	// Used: refused the second time.
	resp, err = (&http.Client{}).Get(base + "/login?code=" + code)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the code again: status %d; want 401", resp.StatusCode)
	}
	if _, err := c.sessions.redeem(code); !errors.Is(err, ErrBadToken) {
		t.Errorf("redeem used code: %v; want ErrBadToken", err)
	}
}
