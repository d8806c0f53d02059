package console

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDiff(t *testing.T) {
	base := snapshot{ok: true, role: "slave", term: 2, leader: "S1", leaderName: "s1",
		peers:   map[string]string{"S1": "s1"},
		folders: map[string]folderSnap{"F1": {name: "docs", state: "idle", inSync: true}}}
	change := func(f func(s *snapshot)) snapshot {
		s := base
		s.peers = map[string]string{}
		for k, v := range base.peers {
			s.peers[k] = v
		}
		s.folders = map[string]folderSnap{}
		for k, v := range base.folders {
			s.folders[k] = v
		}
		f(&s)
		return s
	}
	for _, tc := range []struct {
		name string
		prev snapshot
		next snapshot
		want []string
	}{
		{"nothing", base, base, nil},
		{"first", snapshot{}, base, []string{EventRoleChanged}},
		{"promoted", base, change(func(s *snapshot) { s.role, s.term, s.leader = "master", 3, "S2" }), []string{EventRoleChanged, EventLeaderChanged}},
		{"peer", base, change(func(s *snapshot) { s.peers = map[string]string{"S2": "s2"} }), []string{EventPeerConnected, EventPeerDisconnected}},
		{"syncing", base, change(func(s *snapshot) { s.folders["F1"] = folderSnap{name: "docs", state: "syncing", needFiles: 3} }), []string{EventFolderStateChanged}},
		{"progress", base, change(func(s *snapshot) {
			s.folders["F1"] = folderSnap{name: "docs", state: "idle", inSync: true, needBytes: 10}
		}), []string{EventFolderProgress}},
		{"error", base, change(func(s *snapshot) { s.folders["F1"] = folderSnap{name: "docs", state: "error", lastError: "disk full"} }), []string{EventFolderStateChanged, EventFolderError}},
		{"a file arrived", base, change(func(s *snapshot) {
			s.folders["F1"] = folderSnap{name: "docs", state: "idle", inSync: true, files: 1, bytes: 5}
		}), []string{EventFolderProgress}},
		{"added and removed", base, change(func(s *snapshot) { s.folders = map[string]folderSnap{"F2": {name: "pics"}} }), []string{EventFolderAdded, EventFolderRemoved}},
		{"status lost", base, snapshot{err: "the daemon did not answer"}, []string{EventError}},
		{"still lost", snapshot{err: "x"}, snapshot{err: "x"}, nil},
	} {
		var got []string
		for _, e := range diff(tc.prev, tc.next) {
			got = append(got, e.Type)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: diff = %v; want %v", tc.name, got, tc.want)
		}
	}
}

// stream reads base's /events (with query) as server-sent events.
type stream struct {
	events chan Event
	cancel context.CancelFunc
}

func openStream(t *testing.T, base, query string, header http.Header) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events"+query, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET /events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	s := &stream{events: make(chan Event, 100), cancel: cancel}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var typ string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var e Event
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e); err != nil || e.Type != typ {
					t.Errorf("bad event %q (%v) under event: %s", line, err, typ)
					continue
				}
				s.events <- e
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// next waits up to within for an event of type typ (skipping others).
func (s *stream) next(t *testing.T, typ string, within time.Duration) Event {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e := <-s.events:
			if e.Type == typ {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event within %v", typ, within)
		}
	}
}

// TestEventsStream: a change of the host shows on the stream within a
// second; ?types filters; Last-Event-ID replays.
func TestEventsStream(t *testing.T) {
	src := newFakeServer()
	mon := NewMonitor(nil)
	c, err := New(Config{API: fakeAPI(src), Source: src, Monitor: mon, Token: testToken}) // the default poll
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, c)
	// ?since=0 replays the first poll's event: the stream's baseline is
	// set before the change.
	s := openStream(t, base, "?since=0", nil)
	if first := s.next(t, EventRoleChanged, 5*time.Second); first.Data["to"] != "master" || first.ID != 1 {
		t.Errorf("first event %+v; want the role, master, with ID 1", first)
	}

	src.set(func(f *fakeSource) {
		st := f.fstatus["F1"]
		st.NeedFiles, st.NeedBytes = 1, 100
		f.fstatus["F1"] = st
	})
	changed := time.Now()
	e := s.next(t, EventFolderProgress, time.Second)
	if e.Data["folder"] != "F1" || e.Data["need_files"] != float64(1) {
		t.Errorf("progress event %+v; want F1 needing 1 file", e)
	}
	if d := time.Since(changed); d > time.Second {
		t.Errorf("the change showed after %v; want within a second", d)
	}

	// Log events: a conflict.
	filtered := openStream(t, base, "?types="+EventConflict, nil)
	log := slog.New(mon.LogHandler(slog.DiscardHandler))
	log.With("folder", "F1").Warn("change applied as a conflict", "name", "a.txt")
	e = s.next(t, EventConflict, time.Second)
	if e.Data["folder"] != "F1" || e.Data["name"] != "a.txt" {
		t.Errorf("conflict event %+v", e)
	}
	if got := filtered.next(t, EventConflict, time.Second); got.ID != e.ID {
		t.Errorf("filtered stream got %+v; want %+v", got, e)
	}
	src.set(func(f *fakeSource) { f.status.Role = "slave" })
	s.next(t, EventRoleChanged, time.Second)
	select {
	case got := <-filtered.events:
		t.Errorf("the ?types=Conflict stream got %+v", got)
	case <-time.After(300 * time.Millisecond):
	}

	// Reconnecting after the first event replays what followed.
	replay := openStream(t, base, "", http.Header{"Last-Event-Id": {"1"}})
	got := replay.next(t, EventFolderProgress, time.Second)
	if got.ID <= 1 {
		t.Errorf("replayed %+v; want an event after 1", got)
	}
}
