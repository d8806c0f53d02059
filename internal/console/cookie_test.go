package console

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
)

// TestSessionsOfTwoConsolesOnOneHost: a browser keeps cookies by host, not
// by port. Logging in to a second console on 127.0.0.1 (a server's, next to
// an agent's) must not log the browser out of the first.
func TestSessionsOfTwoConsolesOnOneHost(t *testing.T) {
	a, _ := newTestConsole(t, newFakeServer())
	b, _ := newTestConsole(t, newFakeServer())
	baseA, baseB := serve(t, a), serve(t, b)
	jar, err := cookiejar.New(nil) // like a browser's: one jar for every port of a host
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login := func(base string) {
		t.Helper()
		resp, err := browser.PostForm(base+"/login", url.Values{"token": {testToken}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("login at %s: %s to %q; want 303 to /", base, resp.Status, resp.Header.Get("Location"))
		}
	}
	loggedIn := func(base string) bool {
		t.Helper()
		resp, err := browser.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	login(baseA)
	login(baseB)
	if !loggedIn(baseB) {
		t.Errorf("the second console: not logged in after its login")
	}
	if !loggedIn(baseA) {
		t.Errorf("the first console: logged out by the login to the second one on the same host; want its session kept")
	}
}
