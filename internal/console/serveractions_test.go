package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
)

// serverAPI is the fake control API with the server page's export,
// forced promotion and user settings, recording what they were asked.
type serverAPI struct {
	mu    sync.Mutex
	calls []apiCall
}

func (s *serverAPI) take() []apiCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

func (s *serverAPI) handler(src *fakeSource) http.Handler {
	mux := http.NewServeMux()
	record := func(answer any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var body map[string]any
			json.NewDecoder(r.Body).Decode(&body)
			s.mu.Lock()
			s.calls = append(s.calls, apiCall{r.Method, r.URL.Path, body})
			s.mu.Unlock()
			json.NewEncoder(w).Encode(answer)
		}
	}
	mux.HandleFunc("POST /v1/folders/export", record(control.ExportResult{Done: "exported folder", Version: 4}))
	mux.HandleFunc("POST /v1/servers/promote", record(peer.Promotion{Generation: 1, Term: 2, Index: 9, OldLog: "/srv/baton/data/raft-generation-0.db"}))
	mux.HandleFunc("PATCH /v1/users/{name}", record(control.MutationResult{Done: "user changed"}))
	mux.HandleFunc("POST /v1/folders/options", record(control.MutationResult{Done: "folder options set"}))
	mux.Handle("/", fakeAPI(src))
	return mux
}

// TestServerPageActions: the server's page exports a hosted folder to a
// directory of the server, promotes the server by force only once the
// confirmation is ticked, and sets a user's quota and admin flag; each
// only with a session, and from the console's own pages.
func TestServerPageActions(t *testing.T) {
	src := newFakeServer()
	src.set(func(f *fakeSource) {
		f.users[0].Quota, f.users[0].Admin = 10<<30, true
		f.folders[0].Keep, f.folders[0].Replicas = "all:2d", 1
	})
	api := &serverAPI{}
	h := api.handler(src)
	c, err := New(Config{API: h, Source: src, Actions: control.NewHandlerClient("test", h), Monitor: NewMonitor(nil), Token: testToken, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, c)
	id, err := c.sessions.login(testToken)
	if err != nil {
		t.Fatal(err)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(action string, form url.Values, site string) (*http.Response, url.Values) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/action/"+action, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: SessionCookie, Value: id})
		req.Header.Set("Sec-Fetch-Site", site)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc == nil {
			return resp, nil
		}
		return resp, loc.Query()
	}

	body := page(t, base, "/")
	contains(t, "the server's page", body,
		`action="/action/folder-export"`, `name="dir"`,
		`action="/action/server-promote"`, `value="lost-for-good" required`, "Forced promotion", "only voter", "lost for good",
		`action="/action/user-set"`, "10.0 GiB", "(admin)")
	contains(t, "a hosted folder's page", page(t, base, "/folder/F1"),
		`action="/action/hosted-folder-options"`, `name="keep" value="all:2d"`, `name="replicas" type="number" min="0" value="1"`,
		`<span data-field="keep">all:2d</span>`, `<span data-field="replicas">1</span>`, `<span data-field="outside">refused</span>`)

	for _, tc := range []struct {
		action string
		form   url.Values
		want   apiCall
		done   string
	}{
		{"folder-export", url.Values{"folder": {"F1"}, "dir": {"/srv/exports/docs"}}, apiCall{"POST", "/v1/folders/export", map[string]any{"folder": "F1", "owner": "", "dir": "/srv/exports/docs"}}, "exported folder"},
		{"folder-export", url.Values{"folder": {"F1"}, "dir": {"/srv/x"}, "at": {"2026-12-04T15:04:05Z"}}, apiCall{"POST", "/v1/folders/export", map[string]any{"folder": "F1", "owner": "", "dir": "/srv/x", "at": "2026-12-04T15:04:05Z"}}, "exported folder"},
		{"server-promote", url.Values{"confirm": {"lost-for-good"}}, apiCall{"POST", "/v1/servers/promote", map[string]any{"force": true}}, "only voter (generation 1; its log ends at term 2, index 9); the log as it was is kept in /srv/baton/data/raft-generation-0.db"},
		{"user-set", url.Values{"name": {"alice"}, "quota": {"5GiB"}, "admin": {"no"}}, apiCall{"PATCH", "/v1/users/alice", map[string]any{"quota": float64(5 << 30), "admin": false}}, "user changed"},
		{"user-set", url.Values{"name": {"alice"}, "quota": {"none"}}, apiCall{"PATCH", "/v1/users/alice", map[string]any{"quota": float64(0)}}, "user changed"},
		{"hosted-folder-options", url.Values{"folder": {"F1"}, "owner": {"alice"}, "keep": {"all:7d"}, "replicas": {"2"}, "outside_symlinks": {"on"}},
			apiCall{"POST", "/v1/folders/options", map[string]any{"folder": "F1", "owner": "alice", "keep": "all:7d", "replicas": float64(2), "outside_symlinks": true}}, "folder options set"},
		{"hosted-folder-options", url.Values{"folder": {"F1"}, "owner": {"alice"}, "keep": {""}, "replicas": {"0"}},
			apiCall{"POST", "/v1/folders/options", map[string]any{"folder": "F1", "owner": "alice", "keep": "default", "replicas": float64(0), "outside_symlinks": false}}, "folder options set"},
	} {
		// From another site: refused, nothing done.
		if resp, _ := post(tc.action, tc.form, "cross-site"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s from another site: %s; want 403", tc.action, resp.Status)
		}
		if calls := api.take(); len(calls) != 0 {
			t.Errorf("%s from another site reached the API: %+v", tc.action, calls)
		}
		resp, q := post(tc.action, tc.form, "same-origin")
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(q.Get("done"), tc.done) {
			t.Errorf("%s %v: %s, back with %v; want done %q", tc.action, tc.form, resp.Status, q, tc.done)
		}
		calls := api.take()
		if len(calls) != 1 || calls[0].Method != tc.want.Method || calls[0].Path != tc.want.Path || !sameBody(calls[0].Body, tc.want.Body) {
			t.Errorf("%s: API calls %+v; want %+v", tc.action, calls, tc.want)
			continue
		}
		// A setting given is sent, even when it is 0 or false (none, not
		// an admin); one not given is not.
		for _, k := range []string{"quota", "admin"} {
			if _, sent := calls[0].Body[k]; tc.action == "user-set" && sent != (tc.want.Body[k] != nil) {
				t.Errorf("%s %v: %s sent = %v; want %v", tc.action, tc.form, k, sent, !sent)
			}
		}
	}

	// Refused before the API is asked.
	for _, tc := range []struct {
		action string
		form   url.Values
		want   string
	}{
		{"server-promote", url.Values{}, "needs its confirmation"},
		{"server-promote", url.Values{"confirm": {"on"}}, "needs its confirmation"},
		{"folder-export", url.Values{"folder": {"F1"}, "dir": {"exports/docs"}}, "not absolute"},
		{"folder-export", url.Values{"folder": {"F1"}, "dir": {"/srv/x"}, "at": {"last week"}}, "want a date and time"},
		{"user-set", url.Values{"name": {"alice"}}, "nothing to change"},
		{"user-set", url.Values{"name": {"alice"}, "quota": {"lots"}}, "quota"},
		{"hosted-folder-options", url.Values{"folder": {"F1"}, "replicas": {"-1"}}, "replicas: want a number"},
		{"hosted-folder-options", url.Values{"folder": {"F1"}}, "replicas: want a number"},
	} {
		_, q := post(tc.action, tc.form, "same-origin")
		if e := q.Get("error"); !strings.Contains(e, tc.want) {
			t.Errorf("%s %v: back with error %q; want %q", tc.action, tc.form, e, tc.want)
		}
		if calls := api.take(); len(calls) != 0 {
			t.Errorf("%s %v: API called %+v", tc.action, tc.form, calls)
		}
	}
}

// sameBody compares a decoded request body with want, a field absent in
// one and false, "" or 0 in the other being the same.
func sameBody(got, want map[string]any) bool {
	zero := func(v any) bool { return v == nil || v == false || v == "" || v == float64(0) }
	for k, v := range want {
		if g, ok := got[k]; ok && g != v || !ok && !zero(v) {
			return false
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok && !zero(v) {
			return false
		}
	}
	return true
}
