package console

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/baton-sync/baton/peer"
)

// scrapeTimeout bounds the reads of one scrape.
const scrapeTimeout = 5 * time.Second

// Roles a host reports (peer.Status.Role).
var roles = []string{"master", "slave", "candidate", "agent"}

// statusCollector reads the host's status and its folders' at each scrape.
type statusCollector struct {
	src    Source
	mon    *Monitor
	errs   *errorTimes
	now    func() time.Time
	log    *slog.Logger
	up     *prometheus.Desc
	role   *prometheus.Desc
	term   *prometheus.Desc
	commit *prometheus.Desc
	apply  *prometheus.Desc
	outbox *prometheus.Desc
	peers  *prometheus.Desc

	fNeedFiles *prometheus.Desc
	fNeedBytes *prometheus.Desc
	fLocFiles  *prometheus.Desc
	fLocBytes  *prometheus.Desc
	fInSync    *prometheus.Desc
	fFetched   *prometheus.Desc
	fReused    *prometheus.Desc
	fServed    *prometheus.Desc
	fLastErr   *prometheus.Desc
	fState     *prometheus.Desc
	fConflicts *prometheus.Desc
}

func newStatusCollector(src Source, mon *Monitor, errs *errorTimes, now func() time.Time, log *slog.Logger) *statusCollector {
	folder := []string{"folder", "name"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &statusCollector{
		src: src, mon: mon, errs: errs, now: now, log: log,
		up:     d("baton_status_up", "1 if the console could read the daemon's status at this scrape."),
		role:   d("baton_role", "1 for this host's current role (master, slave, candidate, agent), 0 for the others.", "role"),
		term:   d("baton_term", "The chain's term (the master's epoch) as this host knows it."),
		commit: d("baton_commit_index", "The consensus log's commit index (servers of the chain)."),
		apply:  d("baton_applied_index", "The consensus log's applied index (servers of the chain)."),
		outbox: d("baton_outbox_updates", "Updates this host authored that wait for the master's certification."),
		peers:  d("baton_peers_connected", "Connected peers, by kind (server, agent, guest).", "kind"),

		fNeedFiles: d("baton_folder_need_files", "Entries still to take from other hosts.", folder...),
		fNeedBytes: d("baton_folder_need_bytes", "Bytes still to fetch.", folder...),
		fLocFiles:  d("baton_folder_local_files", "Files in the folder here.", folder...),
		fLocBytes:  d("baton_folder_local_bytes", "Bytes of the folder's files here.", folder...),
		fInSync:    d("baton_folder_in_sync", "1 if the folder is in sync.", folder...),
		fFetched:   d("baton_folder_fetched_bytes_total", "Block bytes received from other hosts since the daemon started.", folder...),
		fReused:    d("baton_folder_reused_bytes_total", "Block bytes reused from local files (or an interrupted fetch) since the daemon started.", folder...),
		fServed:    d("baton_folder_served_bytes_total", "Block bytes sent to other hosts since the daemon started.", folder...),
		fLastErr:   d("baton_folder_last_error_timestamp_seconds", "When the folder's last error was first seen by the console (Unix time; 0: none seen).", folder...),
		fConflicts: d("baton_folder_conflicts_total", "Changes applied as a conflict copy here since the daemon started.", folder...),
		fState:     d("baton_folder_state", "1 for the folder's current state (idle, scanning, syncing, error), 0 for the others.", "folder", "name", "state"),
	}
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.role, c.term, c.commit, c.apply, c.outbox, c.peers,
		c.fNeedFiles, c.fNeedBytes, c.fLocFiles, c.fLocBytes, c.fInSync, c.fFetched, c.fReused, c.fServed, c.fLastErr, c.fState, c.fConflicts} {
		ch <- d
	}
}

// folderStates are the states a folder reports (control.FolderStatus.State).
var folderStates = []string{"idle", "scanning", "syncing", "error"}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	v, err := readView(ctx, c.src)
	if err != nil && v.Status.ID == "" {
		c.log.Debug("console: scrape could not read the status", "err", err)
		gauge(c.up, 0)
		return
	}
	gauge(c.up, 1)
	st := v.Status
	for _, r := range roles {
		gauge(c.role, b2f(st.Role == r), r)
	}
	term := st.Epoch
	if st.Chain != nil {
		term = st.Chain.Term // a chain server's own view is the fresher
	}
	gauge(c.term, float64(term))
	if st.Chain != nil {
		gauge(c.commit, float64(st.Chain.Commit))
		gauge(c.apply, float64(st.Chain.Applied))
	}
	gauge(c.outbox, float64(st.Outbox))
	for kind, n := range peerKinds(st, v) {
		gauge(c.peers, float64(n), kind)
	}
	now := c.now()
	for _, f := range v.Folders {
		lbl := []string{f.ID, f.Name}
		fs := f.Status
		errAt := c.errs.see(f.ID, fs.LastError, now)
		counter(c.fConflicts, float64(c.mon.Conflicts(f.ID)), lbl...)
		if f.StatusErr != "" {
			continue
		}
		gauge(c.fNeedFiles, float64(fs.NeedFiles), lbl...)
		gauge(c.fNeedBytes, float64(fs.NeedBytes), lbl...)
		gauge(c.fLocFiles, float64(fs.LocalFiles), lbl...)
		gauge(c.fLocBytes, float64(fs.LocalBytes), lbl...)
		gauge(c.fInSync, b2f(fs.InSync), lbl...)
		counter(c.fFetched, float64(fs.Fetched), lbl...)
		counter(c.fReused, float64(fs.Copied+fs.Resumed), lbl...)
		counter(c.fServed, float64(fs.Served), lbl...)
		var ts float64
		if !errAt.IsZero() {
			ts = float64(errAt.UnixNano()) / 1e9
		}
		gauge(c.fLastErr, ts, lbl...)
		for _, s := range folderStates {
			gauge(c.fState, b2f(fs.State == s), f.ID, f.Name, s)
		}
	}
}

// peerKinds counts st's connected peers by kind: the chain's servers,
// guests (logging in) and the other members (agents).
func peerKinds(st peer.Status, v view) map[string]int {
	servers := map[string]bool{}
	for _, s := range v.Servers {
		servers[s.ID] = true
	}
	n := map[string]int{"server": 0, "agent": 0, "guest": 0}
	for _, p := range st.Peers {
		switch {
		case p.Guest:
			n["guest"]++
		case servers[p.ID]:
			n["server"]++
		default:
			n["agent"]++
		}
	}
	return n
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
