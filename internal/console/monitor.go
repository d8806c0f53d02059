package console

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Monitor gathers what the daemon reports as it goes, for the console's
// metrics, events and pages: commit latencies (ObserveCommit, given to
// the node) and the security and conflict events of the node's log
// (LogHandler wraps the daemon's log handler). Make one with NewMonitor
// before the node, and give it to the console. Its methods are safe for
// concurrent use.
type Monitor struct {
	reg           *prometheus.Registry
	commitLatency prometheus.Histogram
	logins        *prometheus.CounterVec
	security      *prometheus.CounterVec
	consoleLogins *prometheus.CounterVec
	quarantines   prometheus.Counter

	now    func() time.Time
	events chan Event // to the console's event stream; dropped when full

	mu        sync.Mutex
	recent    []Event                 // the last maxRecent security events, oldest first
	conflictN map[string]int          // folder ID -> conflicts since the start
	fetched   map[string][]rateSample // folder ID -> bytes fetched as read lately
}

// maxRecent bounds the security events a Monitor keeps for the pages.
const maxRecent = 50

// NewMonitor returns a monitor with its metrics registered in a registry
// of its own. now is the clock (nil: time.Now).
func NewMonitor(now func() time.Time) *Monitor {
	if now == nil {
		now = time.Now
	}
	m := &Monitor{
		reg: prometheus.NewRegistry(),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "baton_commit_latency_seconds",
			Help:    "Time from submitting a collection update on this host to its acknowledgement (committed on a majority of the chain's voters).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baton_logins_total",
			Help: "Device logins answered by this server, by result (succeeded, failed).",
		}, []string{"result"}),
		security: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baton_security_events_total",
			Help: "Security events this host logged, by kind (login_failed, login_succeeded, device_revoked, user_removed).",
		}, []string{"kind"}),
		consoleLogins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baton_console_logins_total",
			Help: "Logins to the console (with its token or a login code), by result.",
		}, []string{"result"}),
		quarantines: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "baton_data_file_quarantines_total",
			Help: "Data files quarantined since the daemon started: changed behind its back, not verified, moved aside and rewritten.",
		}),
		now:       now,
		events:    make(chan Event, 256),
		conflictN: map[string]int{},
		fetched:   map[string][]rateSample{},
	}
	m.reg.MustRegister(m.commitLatency, m.logins, m.security, m.consoleLogins, m.quarantines)
	for _, k := range securityKinds {
		m.security.WithLabelValues(k)
	}
	for _, r := range []string{"succeeded", "failed"} {
		m.logins.WithLabelValues(r)
		m.consoleLogins.WithLabelValues(r)
	}
	return m
}

// ObserveCommit records the latency of an acknowledged update
// (peer.Config.OnCommit).
func (m *Monitor) ObserveCommit(d time.Duration) { m.commitLatency.Observe(d.Seconds()) }

// Registry is the monitor's metrics registry.
func (m *Monitor) Registry() *prometheus.Registry { return m.reg }

// RecentSecurity returns the last security events, newest first.
func (m *Monitor) RecentSecurity() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Event, len(m.recent))
	for i, e := range m.recent {
		out[len(out)-1-i] = e
	}
	return out
}

// securityKinds are the kinds of baton_security_events_total.
var securityKinds = []string{"login_failed", "login_succeeded", "device_revoked", "user_removed"}

// Conflicts returns the conflicts counted for folder since the start.
func (m *Monitor) Conflicts(folder string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conflictN[folder]
}

// noteRates records the bytes fetched of folders, read at now, and sets
// each one's transfer rate (bytes per second over the last RateWindow).
// Folders not in folders are forgotten.
func (m *Monitor) noteRates(folders []folderView, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for i := range folders {
		f := &folders[i]
		seen[f.ID] = true
		if f.StatusErr != "" {
			continue
		}
		s := addSample(m.fetched[f.ID], rateSample{at: now, bytes: f.Status.Fetched}, RateWindow)
		m.fetched[f.ID] = s
		f.Rate = transferRate(s, now, RateWindow)
	}
	for id := range m.fetched {
		if !seen[id] {
			delete(m.fetched, id)
		}
	}
}

// Event types of the console's event stream.
const (
	EventRoleChanged        = "RoleChanged"
	EventLeaderChanged      = "LeaderChanged"
	EventFolderStateChanged = "FolderStateChanged"
	EventFolderProgress     = "FolderProgress"
	EventFolderError        = "FolderError"
	EventFolderAdded        = "FolderAdded"
	EventFolderRemoved      = "FolderRemoved"
	EventConflict           = "Conflict"
	EventPeerConnected      = "PeerConnected"
	EventPeerDisconnected   = "PeerDisconnected"
	EventQuarantine         = "Quarantine"
	EventSecurity           = "Security"
	EventError              = "Error"
)

// Event is one entry of the event stream (GET /events).
type Event struct {
	ID   int64          `json:"id"`
	Type string         `json:"type"`
	Time time.Time      `json:"time"`
	Data map[string]any `json:"data"`
}

// classify says what a log record of the node is by its message: a
// security event's kind, "conflict" or "quarantine". The messages are
// those of package peer (seclog.go, login.go, watch.go) and foldersync
// (apply.go); the monitor's tests log them as the node does.
func classify(msg string) (kind string, ok bool) {
	switch {
	case msg == "device logged in":
		return "login_succeeded", true
	case strings.HasPrefix(msg, "login refused: "):
		return "login_failed", true
	case msg == "device revoked":
		return "device_revoked", true
	case msg == "user removed", msg == "user removed (record deleted)":
		return "user_removed", true
	case msg == "change applied as a conflict":
		return "conflict", true
	case msg == "data file quarantined and rewritten from verified state":
		return "quarantine", true
	}
	return "", false
}

// record counts what the log record r says, with attrs (the logger's and
// the record's).
func (m *Monitor) record(r slog.Record, attrs []slog.Attr) {
	kind, ok := classify(r.Message)
	if !ok {
		return
	}
	data := map[string]any{"message": r.Message}
	add := func(a slog.Attr) bool {
		if a.Value.Kind() != slog.KindGroup {
			data[a.Key] = a.Value.Resolve().String()
		}
		return true
	}
	for _, a := range attrs {
		add(a)
	}
	r.Attrs(add)
	if r.Message == "user removed" && data["user_id"] == nil {
		// The request at the master (control logs it without the user's
		// ID); the removal is counted when applied.
		return
	}
	t := r.Time
	if t.IsZero() {
		t = m.now()
	}
	var ev Event
	if kind == "quarantine" {
		m.quarantines.Inc()
		ev = Event{Type: EventQuarantine, Time: t, Data: data}
	} else if kind == "conflict" {
		folder, _ := data["folder"].(string)
		m.mu.Lock()
		m.conflictN[folder]++
		m.mu.Unlock()
		ev = Event{Type: EventConflict, Time: t, Data: data}
	} else {
		m.security.WithLabelValues(kind).Inc()
		switch kind {
		case "login_succeeded":
			m.logins.WithLabelValues("succeeded").Inc()
		case "login_failed":
			m.logins.WithLabelValues("failed").Inc()
		}
		data["kind"] = kind
		ev = Event{Type: EventSecurity, Time: t, Data: data}
		m.mu.Lock()
		m.recent = append(m.recent, ev)
		if len(m.recent) > maxRecent {
			m.recent = m.recent[len(m.recent)-maxRecent:]
		}
		m.mu.Unlock()
	}
	select {
	case m.events <- ev:
	default: // the event stream is behind: the metrics still count it
	}
}

// LogHandler returns a handler that passes records to next and counts the
// security events and conflicts among them. Info records reach the
// monitor even when next does not take them.
func (m *Monitor) LogHandler(next slog.Handler) slog.Handler {
	return &logTee{next: next, m: m}
}

type logTee struct {
	next  slog.Handler
	m     *Monitor
	attrs []slog.Attr
	group bool // attrs after a group are not the node's own context
}

func (t *logTee) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || t.next.Enabled(ctx, l)
}

func (t *logTee) Handle(ctx context.Context, r slog.Record) error {
	t.m.record(r, t.attrs)
	if !t.next.Enabled(ctx, r.Level) {
		return nil
	}
	return t.next.Handle(ctx, r)
}

func (t *logTee) WithAttrs(as []slog.Attr) slog.Handler {
	n := &logTee{next: t.next.WithAttrs(as), m: t.m, attrs: t.attrs, group: t.group}
	if !t.group {
		n.attrs = append(append([]slog.Attr(nil), t.attrs...), as...)
	}
	return n
}

func (t *logTee) WithGroup(name string) slog.Handler {
	return &logTee{next: t.next.WithGroup(name), m: t.m, attrs: t.attrs, group: true}
}
