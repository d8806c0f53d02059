package console

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

// PollInterval is how often the event stream reads the host's status to
// find what changed.
const PollInterval = 250 * time.Millisecond

// maxReplay bounds the events kept for a client that reconnects with
// Last-Event-ID.
const maxReplay = 200

// snapshot is what the event stream compares between two polls.
type snapshot struct {
	ok         bool
	err        string
	role       string
	term       uint64
	leader     string
	leaderName string
	peers      map[string]string // ID -> name
	folders    map[string]folderSnap
}

type folderSnap struct {
	name      string
	state     string
	needFiles int
	needBytes int64
	files     int
	bytes     int64
	inSync    bool
	lastError string
	progress  float64
	rate      int64 // bytes fetched per second
}

// snapshotOf is the part of v the event stream compares.
func snapshotOf(v view, err error) snapshot {
	if err != nil && v.Status.ID == "" {
		return snapshot{err: err.Error()}
	}
	st := v.Status
	s := snapshot{ok: true, role: st.Role, term: st.Epoch, leader: st.Master, leaderName: st.MasterName,
		peers: map[string]string{}, folders: map[string]folderSnap{}}
	if st.Chain != nil {
		s.term = st.Chain.Term
		s.leader, s.leaderName = st.Chain.Leader, st.Chain.LeaderName
	}
	for _, p := range st.Peers {
		s.peers[p.ID] = p.Name
	}
	for _, f := range v.Folders {
		fs := f.Status
		state := fs.State
		if f.StatusErr != "" {
			state = "waiting"
		}
		s.folders[f.ID] = folderSnap{name: f.Name, state: state, needFiles: fs.NeedFiles, needBytes: fs.NeedBytes,
			files: fs.LocalFiles, bytes: fs.LocalBytes, inSync: fs.InSync, lastError: fs.LastError, progress: fs.Progress,
			rate: int64(f.Rate)}
	}
	return s
}

// diff returns the events that lead from prev to next, without ID or
// time. It is pure.
func diff(prev, next snapshot) []Event {
	var out []Event
	ev := func(typ string, data map[string]any) { out = append(out, Event{Type: typ, Data: data}) }
	if !next.ok {
		if prev.err != next.err {
			ev(EventError, map[string]any{"error": next.err})
		}
		return out
	}
	if !prev.ok {
		// The first poll (or the first after a failed one): no differences
		// to tell, but say what the role is.
		ev(EventRoleChanged, map[string]any{"from": "", "to": next.role, "term": next.term})
		return out
	}
	if prev.role != next.role {
		ev(EventRoleChanged, map[string]any{"from": prev.role, "to": next.role, "term": next.term})
	}
	if prev.leader != next.leader || prev.term != next.term {
		ev(EventLeaderChanged, map[string]any{"leader": next.leader, "leader_name": next.leaderName, "term": next.term})
	}
	for _, id := range sortedKeys(next.peers) {
		if _, ok := prev.peers[id]; !ok {
			ev(EventPeerConnected, map[string]any{"id": id, "name": next.peers[id]})
		}
	}
	for _, id := range sortedKeys(prev.peers) {
		if _, ok := next.peers[id]; !ok {
			ev(EventPeerDisconnected, map[string]any{"id": id, "name": prev.peers[id]})
		}
	}
	for _, id := range sortedKeys(next.folders) {
		n := next.folders[id]
		data := map[string]any{"folder": id, "name": n.name, "state": n.state, "need_files": n.needFiles,
			"need_bytes": n.needBytes, "local_files": n.files, "local_bytes": n.bytes, "in_sync": n.inSync, "progress": n.progress, "rate": n.rate}
		p, ok := prev.folders[id]
		switch {
		case !ok:
			ev(EventFolderAdded, data)
			continue
		case p.state != n.state || p.inSync != n.inSync:
			data["from"] = p.state
			ev(EventFolderStateChanged, data)
		case p.needFiles != n.needFiles || p.needBytes != n.needBytes || p.files != n.files || p.bytes != n.bytes || p.rate != n.rate:
			// What is needed or what is here changed: a change arrived
			// (or was made here) and was applied between two polls; or
			// the transfer rate moved.
			ev(EventFolderProgress, data)
		}
		if n.lastError != "" && n.lastError != p.lastError {
			ev(EventFolderError, map[string]any{"folder": id, "name": n.name, "error": n.lastError})
		}
	}
	for _, id := range sortedKeys(prev.folders) {
		if _, ok := next.folders[id]; !ok {
			ev(EventFolderRemoved, map[string]any{"folder": id, "name": prev.folders[id].name})
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// subscription is one client of the event stream.
type subscription struct {
	after int64      // replay the kept events with a greater ID; -1: none
	ch    chan Event // closed when the stream ends or the client is too slow
}

// broker polls the host and hands the events to the subscribers. Its Run
// goroutine owns the snapshot, the subscribers and the kept events.
type broker struct {
	src     Source
	mon     *Monitor
	errs    *errorTimes
	now     func() time.Time
	log     *slog.Logger
	every   time.Duration
	sub     chan subscription
	unsub   chan chan Event
	stopped chan struct{}
}

func newBroker(src Source, mon *Monitor, errs *errorTimes, now func() time.Time, log *slog.Logger, every time.Duration) *broker {
	return &broker{src: src, mon: mon, errs: errs, now: now, log: log, every: every,
		sub: make(chan subscription), unsub: make(chan chan Event), stopped: make(chan struct{})}
}

// subscribe returns a channel of the events after ID after (kept ones
// first); nil once the broker has stopped.
func (b *broker) subscribe(ctx context.Context, after int64) chan Event {
	s := subscription{after: after, ch: make(chan Event, 64)}
	select {
	case b.sub <- s:
		return s.ch
	case <-b.stopped:
	case <-ctx.Done():
	}
	return nil
}

// unsubscribe ends ch's subscription.
func (b *broker) unsubscribe(ch chan Event) {
	select {
	case b.unsub <- ch:
	case <-b.stopped:
	}
}

// Run polls while anyone subscribes (and once at the start), until ctx
// ends; then it closes every subscription.
func (b *broker) Run(ctx context.Context) error {
	defer close(b.stopped)
	subs := map[chan Event]bool{}
	defer func() {
		for ch := range subs {
			close(ch)
		}
	}()
	var (
		prev   snapshot
		nextID int64 = 1
		kept   []Event
	)
	publish := func(e Event) {
		e.ID = nextID
		nextID++
		if e.Time.IsZero() {
			e.Time = b.now()
		}
		kept = append(kept, e)
		if len(kept) > maxReplay {
			kept = kept[len(kept)-maxReplay:]
		}
		for ch := range subs {
			select {
			case ch <- e:
			default: // too slow: it reconnects with Last-Event-ID
				delete(subs, ch)
				close(ch)
			}
		}
	}
	poll := func() {
		pctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
		v, err := readView(pctx, b.src)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := b.now()
		b.mon.noteRates(v.Folders, now)
		for _, f := range v.Folders {
			b.errs.see(f.ID, f.Status.LastError, now)
		}
		next := snapshotOf(v, err)
		for _, e := range diff(prev, next) {
			publish(e)
		}
		prev = next
	}
	t := time.NewTicker(b.every)
	defer t.Stop()
	poll()
	for {
		// Nobody listens: no need to read the status, nor to wake for
		// it (a timer channel no one waits on does not wake the process).
		var tick <-chan time.Time
		if len(subs) > 0 {
			tick = t.C
		}
		select {
		case <-ctx.Done():
			return nil
		case s := <-b.sub:
			if len(subs) == 0 {
				poll() // idle until now: the changes are told from here on
			}
			var replay []Event
			if s.after >= 0 {
				for _, e := range kept {
					if e.ID > s.after {
						replay = append(replay, e)
					}
				}
			}
			if n := cap(s.ch) / 2; len(replay) > n {
				replay = replay[len(replay)-n:] // the newest; the client missed the rest
			}
			for _, e := range replay {
				s.ch <- e
			}
			subs[s.ch] = true
		case ch := <-b.unsub:
			if subs[ch] {
				delete(subs, ch)
				close(ch)
			}
		case e := <-b.mon.events:
			publish(e)
		case <-tick:
			poll()
		}
	}
}
