package console

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads base's /metrics with the token and parses it.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value is the value of fam's series with labels (name=value pairs).
func value(t *testing.T, fams map[string]*dto.MetricFamily, fam string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[fam]
	if !ok {
		t.Fatalf("no series %s in the scrape", fam)
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no series %s%v in the scrape", fam, labels)
	return 0
}

// TestMetricsScrape: a scrape has each series the console promises, and
// they move with the host: a login and a conflict in the node's log, a
// commit, a folder's progress and error.
func TestMetricsScrape(t *testing.T) {
	src := newFakeServer()
	clock := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	mon := NewMonitor(clock.Now)
	c, err := New(Config{API: fakeAPI(src), Source: src, Monitor: mon, Token: testToken, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, c)

	fams := scrape(t, base)
	checks := []struct {
		fam    string
		labels []string
		want   float64
	}{
		{"baton_status_up", nil, 1},
		{"baton_role", []string{"role", "master"}, 1},
		{"baton_role", []string{"role", "slave"}, 0},
		{"baton_term", nil, 3},
		{"baton_commit_index", nil, 42},
		{"baton_applied_index", nil, 42},
		{"baton_commit_latency_seconds", nil, 0},
		{"baton_peers_connected", []string{"kind", "server"}, 1},
		{"baton_peers_connected", []string{"kind", "agent"}, 1},
		{"baton_peers_connected", []string{"kind", "guest"}, 1},
		{"baton_data_file_quarantines_total", nil, 0},
		{"baton_logins_total", []string{"result", "failed"}, 0},
		{"baton_logins_total", []string{"result", "succeeded"}, 0},
		{"baton_folder_need_files", []string{"folder", "F1", "name", "docs"}, 2},
		{"baton_folder_need_bytes", []string{"folder", "F1"}, 2048},
		{"baton_folder_local_files", []string{"folder", "F1"}, 5},
		{"baton_folder_in_sync", []string{"folder", "F1"}, 0},
		{"baton_folder_fetched_bytes_total", []string{"folder", "F1"}, 100},
		{"baton_folder_reused_bytes_total", []string{"folder", "F1"}, 15},
		{"baton_folder_served_bytes_total", []string{"folder", "F1"}, 7},
		{"baton_folder_last_error_timestamp_seconds", []string{"folder", "F1"}, 0},
		{"baton_folder_state", []string{"folder", "F1", "state", "syncing"}, 1},
	}
	for _, ck := range checks {
		if got := value(t, fams, ck.fam, ck.labels...); got != ck.want {
			t.Errorf("%s%v = %v; want %v", ck.fam, ck.labels, got, ck.want)
		}
	}
	if _, ok := fams["baton_folder_need_files"]; ok {
		for _, m := range fams["baton_folder_need_files"].GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == "F2" {
					t.Error("a folder hosted by another server is in the metrics")
				}
			}
		}
	}

	// The node logs a failed and a successful login and a conflict (as
	// package peer and foldersync log them), and acknowledges a commit;
	// the folder progresses and fails.
	log := slog.New(mon.LogHandler(slog.NewTextHandler(&strings.Builder{}, &slog.HandlerOptions{Level: slog.LevelError})))
	log.With("user", "alice", "device", "D1", "source", "127.0.0.1").Info("login refused: wrong user name or password", "known", true)
	log.With("user", "alice", "device", "D1", "source", "127.0.0.1").Info("device logged in", "name", "laptop")
	log.With("folder", "F1").Warn("change applied as a conflict", "name", "a.txt", "action", "update", "why", "both changed")
	log.Warn("data file quarantined and rewritten from verified state", "file", "/x/domain.dat", "moved_to", "/x/quarantine/domain.dat", "reason", "bad signature")
	log.Info("something else")
	mon.ObserveCommit(15 * time.Millisecond)
	now := clock.add(time.Minute)
	src.set(func(f *fakeSource) {
		st := f.fstatus["F1"]
		st.NeedFiles, st.NeedBytes, st.Fetched, st.LastError, st.State = 1, 1024, 1124, "fetching a.txt: no peer has the block", "error"
		f.fstatus["F1"] = st
		f.status.Chain.Commit = 43
	})

	fams = scrape(t, base)
	for _, ck := range []struct {
		fam    string
		labels []string
		want   float64
	}{
		{"baton_logins_total", []string{"result", "failed"}, 1},
		{"baton_logins_total", []string{"result", "succeeded"}, 1},
		{"baton_security_events_total", []string{"kind", "login_failed"}, 1},
		{"baton_folder_conflicts_total", []string{"folder", "F1"}, 1},
		{"baton_data_file_quarantines_total", nil, 1},
		{"baton_commit_latency_seconds", nil, 1},
		{"baton_commit_index", nil, 43},
		{"baton_folder_need_files", []string{"folder", "F1"}, 1},
		{"baton_folder_fetched_bytes_total", []string{"folder", "F1"}, 1124},
		{"baton_folder_last_error_timestamp_seconds", []string{"folder", "F1"}, float64(now.Unix())},
		{"baton_folder_state", []string{"folder", "F1", "state", "error"}, 1},
	} {
		if got := value(t, fams, ck.fam, ck.labels...); got != ck.want {
			t.Errorf("after the changes: %s%v = %v; want %v", ck.fam, ck.labels, got, ck.want)
		}
	}
	if c.cfg.Monitor.Conflicts("F1") != 1 {
		t.Errorf("Conflicts(F1) = %d; want 1", c.cfg.Monitor.Conflicts("F1"))
	}
	if ev := mon.RecentSecurity(); len(ev) != 2 || ev[0].Data["kind"] != "login_succeeded" || ev[0].Data["user"] != "alice" {
		t.Errorf("RecentSecurity = %+v; want the login then the failure, newest first, with the user", ev)
	}
}

// TestMetricsOnAgent: an agent's folders are those with a path here.
func TestMetricsOnAgent(t *testing.T) {
	src := newFakeServer()
	src.set(func(f *fakeSource) { f.status.Role, f.status.Chain = "agent", nil })
	c, _ := newTestConsole(t, src)
	fams := scrape(t, serve(t, c))
	if got := value(t, fams, "baton_role", "role", "agent"); got != 1 {
		t.Errorf("baton_role{role=agent} = %v; want 1", got)
	}
	if got := value(t, fams, "baton_folder_need_files", "folder", "F1"); got != 2 {
		t.Errorf("agent F1 need files = %v; want 2", got)
	}
	if _, ok := fams["baton_commit_index"]; ok {
		t.Error("an agent reports a commit index")
	}
}

// TestLogMessagesExist: the log messages the monitor counts are still
// those package peer and foldersync log.
func TestLogMessagesExist(t *testing.T) {
	for file, msgs := range map[string][]string{
		"../../peer/login.go":             {`"device logged in"`, `"login refused: `},
		"../../peer/seclog.go":            {`"device revoked"`, `"user removed"`, `"user removed (record deleted)"`},
		"../../peer/foldersync/apply.go":  {`"change applied as a conflict"`},
		"../../peer/foldersync/folder.go": {`"folder", id`},
		"../control/domain.go":            {`"user removed", "user", name, "transfer_to"`},
	} {
		b, err := os.ReadFile(filepath.FromSlash(file))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if !strings.Contains(string(b), m) {
				t.Errorf("%s no longer logs %s: the console's metrics miss it", file, m)
			}
		}
	}
	for _, msg := range []string{"device logged in", "login refused: bad device name", "device revoked", "user removed (record deleted)", "change applied as a conflict"} {
		if _, ok := classify(msg); !ok {
			t.Errorf("classify(%q) = false", msg)
		}
	}
}

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// TestGrafanaDashboard: the sample dashboard queries only series the
// console exports.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.FromSlash("../../contrib/grafana/baton.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("baton.json: %v", err)
	}
	c, mon := newTestConsole(t, newFakeServer())
	mon.ObserveCommit(time.Millisecond)
	fams := scrape(t, serve(t, c))
	names := regexp.MustCompile(`baton_[a-z_]+`)
	used := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, n := range names.FindAllString(tg.Expr, -1) {
				used++
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
				if _, ok := fams[base]; !ok {
					t.Errorf("panel %q queries %s, which /metrics does not export", p.Title, n)
				}
			}
		}
	}
	if used < 10 {
		t.Errorf("the dashboard queries only %d series", used)
	}
}
