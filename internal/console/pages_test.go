package console

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/internal/control"
)

// page GETs path from base with the token and returns the body.
func page(t *testing.T, base, path string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	return string(b)
}

func contains(t *testing.T, what, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

// TestServerPage: the server's page shows the chain, the servers and who
// is reachable, users, devices, the folders hosted here and the recent
// security events.
func TestServerPage(t *testing.T) {
	src := newFakeServer()
	src.set(func(f *fakeSource) {
		f.servers = append(f.servers, consoleServer(3, "S3", "s3"))
		f.status.Chain.Learners = []string{"s3"}
	})
	c, mon := newTestConsole(t, src)
	log := newTestLog(mon)
	log.With("user", "mallory", "source", "192.0.2.7").Info("login refused: wrong user name or password")
	base := serve(t, c)
	body := page(t, base, "/")
	contains(t, "the server page", body,
		`name="viewport" content="width=device-width`, `<script src="/static/console.js"`,
		"The chain", "<dt>Voters</dt><dd>s1, s2</dd>", "<dt>Learners</dt><dd>s3</dd>", "<dt>Commit</dt><dd>42 (applied 42)</dd>",
		"<td>s2</td><td>yes</td>", `<td>s3</td><td><span class="warning">no</span></td>`,
		"<td>alice</td><td>s1</td>", "alice-laptop", "valid",
		"<strong>docs</strong>", "alice (owner)", "2 files, 2.0 KiB", "5 files, 4.9 KiB", "70%",
		"login refused: wrong user name or password", "user mallory", "from 192.0.2.7")
	if strings.Contains(body, "This device") {
		t.Error("the server page shows an agent's device")
	}
	if strings.Contains(body, "elsewhere") {
		t.Error("the server page lists a folder hosted by other servers")
	}
	if !strings.Contains(body, "<strong>replicated</strong>") {
		t.Error("the server page does not list the folder it holds as replica")
	}
	for _, asset := range []string{"/static/console.js", "/static/console.css"} {
		resp, err := http.Get(base + asset)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %s", asset, resp.Status)
		}
	}
}

// TestAgentPage: an agent's page lists its folders with their state,
// progress, what is needed, conflicts and members, and no server parts.
func TestAgentPage(t *testing.T) {
	src := newFakeServer()
	src.set(func(f *fakeSource) {
		f.status.Role, f.status.Chain = "agent", nil
		f.folders[0].Members = append(f.folders[0].Members, consoleMember("bob", "ro"))
		f.folders = append(f.folders, consoleFolder("F3", "music", "bob", consoleMember("bob", "owner"), consoleMember("alice", "ro")))
		f.fstatus["F3"] = consoleStatus("F3", "idle", 3)
		f.notHere = map[string]bool{"F2": true}
		f.device = control.AgentDevice{LoggedIn: true, User: "alice", Device: "D1", Name: "alice-laptop", HomeServer: "S1", HomeServerName: "s1",
			Expires: time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC), Accepted: true}
	})
	c, mon := newTestConsole(t, src)
	newTestLog(mon).With("folder", "F1").Warn("change applied as a conflict", "name", "a.txt")
	base := serve(t, c)
	body := page(t, base, "/")
	contains(t, "the agent page", body, "<h2>Folders</h2>", `data-folder="F1"`, "syncing", "70%", "2 files, 2.0 KiB",
		`<td data-field="conflicts">1</td>`, "alice (owner), bob (ro)",
		// The owner shares; a read-only member leaves and reverts.
		`action="/action/folder-share"`, `action="/action/folder-leave"`, "Revert 3 local changes", `action="/action/folder-create"`,
		// A folder shared with alice and not synced here, to accept.
		"Shared with you, not synced here", "<strong>elsewhere</strong>", `action="/action/folder-accept"`,
		// The device and its login.
		"<h2>This device</h2>", `<dd id="device-user">alice</dd>`, "alice-laptop", "<dt>Home server</dt><dd>s1</dd>",
		`<dd id="device-cert">valid until `+time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC).Local().Format("2006-01-02 15:04:05"))
	if strings.Contains(body, "login-again") {
		t.Error("the agent page asks to log in again with a valid login")
	}
	src.set(func(f *fakeSource) { f.device.Expired = true })
	contains(t, "the agent page with its login expired", page(t, base, "/"),
		`<span class="error">expired at `, `id="login-again"`, "baton login alice@ADDRESS", "home server s1")
	src.set(func(f *fakeSource) { f.device = control.AgentDevice{} })
	contains(t, "the agent page without a login", page(t, base, "/"), `id="login-again"`, "Not logged in", "baton login USER@ADDRESS")
	if folders, _, _ := strings.Cut(body, "Shared with you"); strings.Contains(folders, `data-folder="F2"`) {
		t.Error("a folder not synced here is in the folders table")
	}
	for _, not := range []string{"The chain", "<h2>Users</h2>", "security events"} {
		if strings.Contains(body, not) {
			t.Errorf("the agent page shows %q", not)
		}
	}
}
