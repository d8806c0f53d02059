package console

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestActions: the pages' forms make the control API's changes, only
// with a session and only from the console's own pages.
func TestActions(t *testing.T) {
	src := newFakeServer()
	c, _ := newTestConsole(t, src)
	base := serve(t, c)
	id, err := c.sessions.login(testToken)
	if err != nil {
		t.Fatal(err)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(action string, form url.Values, set func(*http.Request)) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/action/"+action, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if set != nil {
			set(req)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	session := func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: id})
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.Header.Set("Origin", base)
	}

	// The folders' directories: made when missing, as the CLI does.
	pics, shared := filepath.Join(t.TempDir(), "Pictures"), filepath.Join(t.TempDir(), "shared")
	for _, tc := range []struct {
		action string
		form   url.Values
		want   apiCall
	}{
		{"user-add", url.Values{"name": {"carol"}, "home_server": {"s1"}}, apiCall{"POST", "/v1/users", map[string]any{"name": "carol", "home_server": "s1"}}},
		{"user-remove", url.Values{"name": {"bob"}}, apiCall{"DELETE", "/v1/users/bob", map[string]any{}}},
		{"device-revoke", url.Values{"id": {"D1"}}, apiCall{"DELETE", "/v1/devices/D1", nil}},
		{"folder-create", url.Values{"name": {"pics"}, "path": {pics}}, apiCall{"POST", "/v1/agent/folders", map[string]any{"name": "pics", "path": pics}}},
		{"folder-share", url.Values{"folder": {"F1"}, "user": {"bob"}, "rights": {"ro"}}, apiCall{"POST", "/v1/agent/folders/share", map[string]any{"folder": "F1", "user": "bob", "rights": "ro"}}},
		{"folder-accept", url.Values{"folder": {"F9"}, "path": {shared}}, apiCall{"POST", "/v1/agent/folders/accept", map[string]any{"folder": "F9", "path": shared}}},
		{"folder-leave", url.Values{"folder": {"F9"}}, apiCall{"POST", "/v1/agent/folders/leave", map[string]any{"folder": "F9"}}},
		{"folder-revert", url.Values{"folder": {"F9"}}, apiCall{"POST", "/v1/agent/folders/revert", map[string]any{"folder": "F9"}}},
		{"folder-unshare", url.Values{"folder": {"F1"}, "user": {"bob"}}, apiCall{"POST", "/v1/agent/folders/unshare", map[string]any{"folder": "F1", "user": "bob", "rights": ""}}},
		{"folder-options", url.Values{"folder": {"F1"}, "outside_symlinks": {"on"}}, apiCall{"POST", "/v1/agent/folders/options", map[string]any{"folder": "F1", "outside_symlinks": true}}},
		{"folder-restore", url.Values{"folder": {"F1"}, "path": {"dir/a.txt"}, "version": {"7"}}, apiCall{"POST", "/v1/folders/restore", map[string]any{"folder": "F1", "path": "dir/a.txt", "version": float64(7)}}},
		{"folder-restore-all", url.Values{"folder": {"F1"}, "version": {"5"}}, apiCall{"POST", "/v1/folders/restore", map[string]any{"folder": "F1", "all": true, "version": float64(5)}}},
		{"folder-restore-all", url.Values{"folder": {"F1"}, "at": {"2026-12-04T15:04:05Z"}}, apiCall{"POST", "/v1/folders/restore", map[string]any{"folder": "F1", "all": true, "at": "2026-12-04T15:04:05Z"}}},
		{"user-passwd", url.Values{"name": {"alice"}, "password": {"s3cret"}, "password_again": {"s3cret"}}, apiCall{"POST", "/v1/users/alice/password", map[string]any{"password": "czNjcmV0"}}},
	} {
		// Without a session, or from another site: refused, nothing done.
		if resp := post(tc.action, tc.form, nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
			t.Errorf("%s without a session: %s to %q; want a redirect to /login", tc.action, resp.Status, resp.Header.Get("Location"))
		}
		if resp := post(tc.action, tc.form, func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: SessionCookie, Value: id})
			r.Header.Set("Sec-Fetch-Site", "cross-site")
		}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s from another site: %s; want 403", tc.action, resp.Status)
		}
		if calls := src.takeCalls(); len(calls) != 0 {
			t.Errorf("%s refused, yet the API was called: %+v", tc.action, calls)
		}

		resp := post(tc.action, tc.form, session)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.Query().Get("done"), "did "+tc.want.Method) {
			t.Errorf("%s: %s to %q; want back to the page with what was done", tc.action, resp.Status, resp.Header.Get("Location"))
		}
		calls := src.takeCalls()
		if len(calls) != 1 {
			t.Errorf("%s: API calls %+v; want one", tc.action, calls)
			continue
		}
		got := calls[0]
		if got.Body == nil && tc.want.Body != nil && len(tc.want.Body) == 0 {
			got.Body = map[string]any{}
		}
		// Mutations carry ?wait; the body keys the fake decoded.
		for k := range got.Body {
			if _, ok := tc.want.Body[k]; !ok && got.Body[k] == false {
				delete(got.Body, k) // omitempty options
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: API call %+v; want %+v", tc.action, got, tc.want)
		}
	}

	for _, dir := range []string{pics, shared} {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			t.Errorf("the folder's directory %s was not made: %v", dir, err)
		}
	}

	// A relative path is refused before the API is asked.
	resp := post("folder-create", url.Values{"name": {"x"}, "path": {"Documents/x"}}, session)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if e := loc.Query().Get("error"); !strings.Contains(e, "not absolute") {
		t.Errorf("relative path: back with error %q; want 'not absolute'", e)
	}
	if calls := src.takeCalls(); len(calls) != 0 {
		t.Errorf("relative path: API called %+v", calls)
	}
	// Forms refused before the API is asked: passwords that differ, a
	// whole-folder restore without a time, a bad version.
	for _, tc := range []struct {
		action string
		form   url.Values
		want   string
	}{
		{"user-passwd", url.Values{"name": {"alice"}, "password": {"one"}, "password_again": {"two"}}, "passwords differ"},
		{"user-passwd", url.Values{"name": {"alice"}}, "no password"},
		{"folder-restore-all", url.Values{"folder": {"F1"}}, "needs a time"},
		{"folder-restore", url.Values{"folder": {"F1"}, "path": {"a"}, "version": {"x"}}, "want a version number"},
		{"folder-restore", url.Values{"folder": {"F1"}}, "no path to restore"},
		{"folder-restore-all", url.Values{"folder": {"F1"}, "at": {"yesterday"}}, "want a date and time"},
	} {
		resp := post(tc.action, tc.form, session)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if e := loc.Query().Get("error"); !strings.Contains(e, tc.want) {
			t.Errorf("%s %v: back with error %q; want %q", tc.action, tc.form, e, tc.want)
		}
		if calls := src.takeCalls(); len(calls) != 0 {
			t.Errorf("%s %v: API called %+v", tc.action, tc.form, calls)
		}
	}
	// A change made from a folder's page goes back there; any other
	// address to go back to is the home page.
	for back, want := range map[string]string{
		"/folder/F1?path=dir%2Fa.txt": "/folder/F1?done=",
		"/folder/F1":                  "/folder/F1?done=",
		"https://evil.example/":       "/?done=",
		"//evil.example/folder/x":     "/?done=",
		"/folder/../v1/status":        "/?done=",
		"":                            "/?done=",
	} {
		resp := post("folder-revert", url.Values{"folder": {"F1"}, "back": {back}}, session)
		src.takeCalls()
		if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, want) {
			t.Errorf("back %q: to %q; want %q...", back, loc, want)
		} else if strings.Contains(back, "path=") && !strings.Contains(loc, "path=dir%2Fa.txt") {
			t.Errorf("back %q: to %q; want the path kept", back, loc)
		}
	}
	// Unknown action.
	if resp := post("format-disk", nil, session); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown action: %s; want 404", resp.Status)
	}
	// The page shows the forms and what was done.
	body := page(t, base, "/?done=user+carol+added")
	contains(t, "the page after a change", body, "Done: user carol added", `action="/action/user-add"`, `action="/action/device-revoke"`, `action="/action/user-remove"`)
}
