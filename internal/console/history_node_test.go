package console

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/internal/sandbox"
	"github.com/baton-sync/baton/peer"
)

// agentConsole is the console of a sandbox agent, whose home's
// folders.toml lists folder id synced in dir.
func agentConsole(t *testing.T, a *sandbox.Agent, id, name, owner, dir string) string {
	t.Helper()
	home := t.TempDir()
	toml := fmt.Sprintf("[[folder]]\nid = %q\nname = %q\nowner = %q\npath = %q\n", id, name, owner, dir)
	if err := os.WriteFile(filepath.Join(home, "folders.toml"), []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctl := control.NewServer(control.Config{Daemon: a.Node(), DataDir: a.DataDir, Home: home, Now: time.Now, Rand: rand.Reader, Log: slog.New(slog.DiscardHandler)})
	api := ctl.Handler()
	cl := control.NewHandlerClient(home, api)
	con, err := New(Config{API: api, Source: cl, Actions: cl, Monitor: NewMonitor(nil), Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, con)
}

// postForm posts a page's form with the token and returns where the
// console sends the browser back to.
func postForm(t *testing.T, base, action string, form url.Values) *url.URL {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/action/"+action, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+testToken)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || err != nil {
		t.Fatalf("POST /action/%s: %s to %q", action, resp.Status, resp.Header.Get("Location"))
	}
	return loc
}

// TestHistoryOnRealNodes: a domain of one server and two agents, alice's
// laptop (the folder's owner) and bob's desk (a read-only member). The
// pages of all three show the folder's history; alice's and the
// server's offer restores, bob's does not, and a restore bob's page is
// made to send anyway comes back refused with the hosting server's
// reason. A file alice deletes comes back from her page's restore
// button.
func TestHistoryOnRealNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sb, err := sandbox.New(ctx, sandbox.Options{Servers: 1, Domain: "test", Dir: t.TempDir(), Configure: func(cfg *peer.Config) {
		cfg.PasswordKDF = identitytest.FastKDF
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	for _, u := range []string{"alice", "bob"} {
		if _, err := sb.AddUser(ctx, u, 0, u+"-password"); err != nil {
			t.Fatal(err)
		}
	}
	laptop, err := sb.AddAgent(ctx, "laptop", "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	desk, err := sb.AddAgent(ctx, "desk", "bob", "bob-password")
	if err != nil {
		t.Fatal(err)
	}
	id, aliceDir, err := laptop.CreateFolder(ctx, "docs")
	if err != nil {
		t.Fatal(err)
	}
	if err := laptop.Share(ctx, id, "bob", collections.RightReadOnly); err != nil {
		t.Fatal(err)
	}
	bobDir, err := desk.Accept(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("version one\n")
	if err := os.WriteFile(filepath.Join(aliceDir, "a.txt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sandbox.WaitFile(ctx, filepath.Join(bobDir, "a.txt"), data); err != nil {
		t.Fatal(err)
	}

	s1 := sb.Server(0)
	ctl := control.NewServer(control.Config{Daemon: s1.Node(), DataDir: s1.DataDir, Now: time.Now, Rand: rand.Reader, Log: slog.New(slog.DiscardHandler)})
	api := ctl.Handler()
	cl := control.NewHandlerClient("test", api)
	con, err := New(Config{API: api, Source: cl, Actions: cl, Monitor: NewMonitor(nil), Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	server := serve(t, con)
	alice := agentConsole(t, laptop, id, "docs", "alice", aliceDir)
	bob := agentConsole(t, desk, id, "docs", "alice", bobDir)

	// The server's page of the folder, once its history has a.txt.
	var body string
	if err := sandbox.Wait(ctx, "a.txt in the history on the server's page", time.Minute, func() (bool, error) {
		body = page(t, server, "/folder/"+id)
		return strings.Contains(body, ">a.txt</a>"), nil
	}); err != nil {
		t.Fatalf("%v; the page:\n%s", err, body)
	}
	contains(t, "the server's folder page", body, "Restore this version", "Restore folder to this time", "12 B", "alice")
	// Alice's page of it, and the home page's link to it.
	contains(t, "alice's home page", page(t, alice, "/"), `href="/folder/`+id+`"`)
	contains(t, "alice's folder page", page(t, alice, "/folder/"+id+"?path=a.txt"), ">a.txt</a>", "Restore this version")
	// Bob's: the history, no restore; a restore sent anyway is refused.
	body = page(t, bob, "/folder/"+id)
	contains(t, "bob's folder page", body, ">a.txt</a>", "read-only member")
	if strings.Contains(body, "/action/folder-restore") {
		t.Error("bob's page offers a restore")
	}
	loc := postForm(t, bob, "folder-restore", url.Values{"folder": {id}, "path": {"a.txt"}, "version": {"1"}, "back": {"/folder/" + id}})
	if loc.Path != "/folder/"+id || !strings.Contains(loc.Query().Get("error"), peer.ErrRestoreDenied.Error()) {
		t.Errorf("bob's restore: back to %v; want his folder page with the refusal %q", loc, peer.ErrRestoreDenied)
	}
	contains(t, "bob's page with the refusal", page(t, bob, loc.String()), "Not done: ", "may see a folder&#39;s history")

	// Alice deletes a.txt, then restores it from her page.
	if err := os.Remove(filepath.Join(aliceDir, "a.txt")); err != nil {
		t.Fatal(err)
	}
	if err := sandbox.Wait(ctx, "the deletion in the history on alice's page", time.Minute, func() (bool, error) {
		body = page(t, alice, "/folder/"+id+"?path=a.txt")
		return strings.Contains(body, `<span class="warning">deleted</span>`), nil
	}); err != nil {
		t.Fatalf("%v; the page:\n%s", err, body)
	}
	// The version before the deletion: the row with a per-file restore.
	_, row, _ := strings.Cut(body, `action="/action/folder-restore" `)
	version := between(row, `name="version" value="`, `"`)
	loc = postForm(t, alice, "folder-restore", url.Values{"folder": {id}, "path": {"a.txt"}, "version": {version}, "back": {"/folder/" + id + "?path=a.txt"}})
	if done := loc.Query().Get("done"); !strings.Contains(done, "restored a.txt") || !strings.Contains(done, ": 1 changed") || loc.Query().Get("path") != "a.txt" {
		t.Fatalf("alice's restore of version %s: back to %v; want her page of a.txt, done", version, loc)
	}
	for _, dir := range []string{aliceDir, bobDir} {
		if err := sandbox.WaitFile(ctx, filepath.Join(dir, "a.txt"), data); err != nil {
			t.Fatal(err)
		}
	}
}

// between is the text of s after the first from, up to the next to.
func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}
