package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
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
	"github.com/baton-sync/baton/peer/peertest"
)

// TestConsoleOnRealNode: the console over a running one-server domain.
// Through its API (with the token) a user and a folder are added; the
// folder shows on the event stream, the commits in the latency
// histogram, and the folder in the metrics and on the page.
func TestConsoleOnRealNode(t *testing.T) {
	mon := NewMonitor(nil)
	cl := peertest.NewCluster(t, 1, collections.DefaultFailover(1))
	cl.Config = func(_ *peertest.Member, cfg *peer.Config) {
		cfg.Logger = slog.New(mon.LogHandler(slog.DiscardHandler))
		cfg.OnCommit = mon.ObserveCommit
	}
	node := cl.Start(0)
	cl.WaitMaster(30 * time.Second)
	ctl := control.NewServer(control.Config{Daemon: node, DataDir: cl.Members[0].DataDir, Now: time.Now, Rand: rand.Reader, Log: slog.New(slog.DiscardHandler)})
	api := ctl.Handler()
	con, err := New(Config{API: api, Source: control.NewHandlerClient("test", api), Monitor: mon, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, con)
	events := openStream(t, base, "?since=0", nil)
	if e := events.next(t, EventRoleChanged, 10*time.Second); e.Data["to"] != "master" {
		t.Fatalf("first event %+v; want the role master", e)
	}

	post := func(path, body string) control.MutationResult {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m control.MutationResult
		if resp.StatusCode != 200 || json.Unmarshal(b, &m) != nil || m.Queued {
			t.Fatalf("POST %s: %s %s", path, resp.Status, b)
		}
		return m
	}
	post("/v1/users", `{"name":"alice","home_server":"s1"}`)
	post("/v1/folders", `{"name":"docs","owner":"alice"}`)
	committed := time.Now()
	e := events.next(t, EventFolderAdded, 10*time.Second)
	if e.Data["name"] != "docs" {
		t.Errorf("FolderAdded %+v; want docs", e)
	}
	t.Logf("the folder showed on the event stream %v after its commit", time.Since(committed))

	fams := scrape(t, base)
	if n := value(t, fams, "baton_commit_latency_seconds"); n < 2 {
		t.Errorf("commit latency observations = %v; want at least the 2 changes", n)
	}
	if v := value(t, fams, "baton_role", "role", "master"); v != 1 {
		t.Errorf("baton_role{master} = %v", v)
	}
	if v := value(t, fams, "baton_term"); v < 1 {
		t.Errorf("baton_term = %v; want at least 1", v)
	}
	if v := value(t, fams, "baton_commit_index"); v < 2 {
		t.Errorf("baton_commit_index = %v; want at least 2", v)
	}
	if _, ok := fams["baton_folder_conflicts_total"]; !ok {
		t.Error("no conflicts series for the hosted folder")
	}

	req, _ := http.NewRequest("GET", base+"/", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"<strong>docs</strong>", "alice (owner)", "Voters", "s1"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the server page lacks %q", want)
		}
	}
}

// TestConsoleSeesFileArrive: a file written on an agent arrives at its
// hosting server; the server's console shows it on the event stream and
// in the metrics (bytes fetched, the agent's login).
func TestConsoleSeesFileArrive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mon := NewMonitor(nil)
	sb, err := sandbox.New(ctx, sandbox.Options{Servers: 1, Domain: "test", Dir: t.TempDir(), Configure: func(cfg *peer.Config) {
		cfg.PasswordKDF = identitytest.FastKDF
		if cfg.Name == "s1" {
			cfg.Logger = slog.New(mon.LogHandler(slog.DiscardHandler))
			cfg.OnCommit = mon.ObserveCommit
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	if _, err := sb.AddUser(ctx, "alice", 0, "alice-password"); err != nil {
		t.Fatal(err)
	}
	laptop, err := sb.AddAgent(ctx, "laptop", "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	id, dir, err := laptop.CreateFolder(ctx, "docs")
	if err != nil {
		t.Fatal(err)
	}
	if err := laptop.WaitInSync(ctx, id); err != nil {
		t.Fatal(err)
	}

	s1 := sb.Server(0)
	ctl := control.NewServer(control.Config{Daemon: s1.Node(), DataDir: s1.DataDir, Now: time.Now, Rand: rand.Reader, Log: slog.New(slog.DiscardHandler)})
	api := ctl.Handler()
	con, err := New(Config{API: api, Source: control.NewHandlerClient("test", api), Monitor: mon, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, con)
	events := openStream(t, base, "?since=0", nil)
	events.next(t, EventRoleChanged, 10*time.Second)
	fams := scrape(t, base)
	before := value(t, fams, "baton_folder_fetched_bytes_total", "folder", id)
	if v := value(t, fams, "baton_logins_total", "result", "succeeded"); v != 1 {
		t.Errorf("baton_logins_total{succeeded} = %v; want the laptop's login", v)
	}

	data := bytes.Repeat([]byte("a file that travels\n"), 20000)
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	// The server fetches it: the stream tells the folder's new contents,
	// and the transfer rate that brought it...
	var rate float64
	for arrived := false; !arrived || rate == 0; {
		e := events.next(t, EventFolderProgress, 60*time.Second)
		if e.Data["folder"] != id {
			continue
		}
		if r, _ := e.Data["rate"].(float64); r > rate {
			rate = r
		}
		if !arrived && e.Data["local_files"] == float64(1) {
			arrived = true
			t.Logf("the file showed on the server's event stream %v after the write", time.Since(written))
		}
	}
	t.Logf("transfer rate %.0f B/s", rate)
	// ... and the bytes fetched move.
	if err := sandbox.WaitFile(ctx, filepath.Join(s1.DataDir, "folders", id, "notes.txt"), data); err != nil {
		t.Fatal(err)
	}
	if after := value(t, scrape(t, base), "baton_folder_fetched_bytes_total", "folder", id); after < before+float64(len(data))/2 {
		t.Errorf("bytes fetched went from %v to %v; want the file's %d bytes (compressed blocks aside)", before, after, len(data))
	}
}
