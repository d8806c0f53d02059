package peer

import (
	"slices"

	"context"
	"errors"
	"fmt"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/zeebo/blake3"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer/chain"
	"github.com/baton-sync/baton/peer/raftstore"
)

// raftLogName is the chain server's durable raft log, in DataDir.
const raftLogName = "raft.db"

// Log compaction: a snapshot every snapshotEvery applied entries, keeping
// snapshotKeep entries before it for followers slightly behind.
const (
	snapshotEvery = 4096
	snapshotKeep  = 1024
)

// ErrOldDataDir: the data directory was written by the failover protocol
// that came before the consensus engine.
var ErrOldDataDir = errors.New("data directory from an older baton")

// openChain opens the raft log (a new domain's log starts from the
// genesis snapshot), restores the state it holds and builds the core. At
// startup it also applies the entries the log holds as committed, so that
// the node starts with the state it had (the folders it hosts, the
// devices it admits) rather than catching up after it started.
func (d *driver) openChain(startup bool) error {
	path := filepath.Join(d.cfg.DataDir, raftLogName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && startup {
		if err := d.checkNotOld(); err != nil {
			return err
		}
	}
	st, err := raftstore.Open(path)
	if err != nil {
		return fmt.Errorf("opening the raft log: %w", err)
	}
	r, err := restoreLog(st, d.cfg.Genesis, d.loadForcedReport)
	if err != nil {
		_ = st.Close()
		return err
	}
	election, heartbeat := d.raftTicks(r.state)
	core, err := chain.New(chain.Config{
		Key: d.cfg.Key, State: r.state, Storage: r.ms, Applied: r.applied,
		ElectionTicks: election, HeartbeatTicks: heartbeat, Logger: raftLogger{d.log},
		Witness: d.cfg.Witness, Generation: r.gen,
	})
	if err != nil {
		_ = st.Close()
		return err
	}
	d.core, d.raftLog, d.state, d.gen, d.forced = core, st, r.state, r.gen, r.forced
	// The raft log is the durable record; the data files are rewritten
	// from it after a restart, so appending to them need not wait for
	// the disk.
	d.store.NoSync = true
	hs, _, _ := r.ms.InitialState()
	d.savedHS.term, d.savedHS.vote = hs.GetTerm(), hs.GetVote()
	d.replayTo = hs.GetCommit()
	d.replaying = d.replayTo > core.Applied()
	if !d.replaying {
		d.rewriteAll()
	}
	if !startup {
		return nil
	}
	// Raft hands the committed entries after the snapshot to the first
	// Ready. Nothing is sent yet (a message dropped is one raft sends
	// again).
	for core.HasReady() && d.replaying {
		rd := core.Ready()
		if err := st.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			return fmt.Errorf("storing the raft log: %w", err)
		}
		res, err := core.Advance(rd)
		if err != nil {
			return fmt.Errorf("applying the raft log: %w", err)
		}
		d.onChainResult(context.Background(), res)
	}
	return nil
}

// restoredLog is what the raft log holds, restored.
type restoredLog struct {
	ms      *raft.MemoryStorage
	applied uint64 // the index of the snapshot
	state   *collections.State
	gen     chain.Generation
	forced  *forcedReport
}

// restoreLog loads the raft log st (starting an empty one from the
// genesis g), its generation and the report of a log a newer generation
// replaced (loadForced), and restores the state of its snapshot.
func restoreLog(st *raftstore.Store, g collections.Genesis, loadForced func(chain.Generation) (*forcedReport, error)) (restoredLog, error) {
	var r restoredLog
	hs, snap, ents, err := st.Load()
	if err != nil {
		return r, fmt.Errorf("loading the raft log: %w", err)
	}
	genb, err := st.Generation()
	if err != nil {
		return r, fmt.Errorf("loading the raft log: %w", err)
	}
	if r.gen, err = chain.UnmarshalGeneration(genb); err != nil {
		return r, fmt.Errorf("loading the raft log: %w", err)
	}
	if r.forced, err = loadForced(r.gen); err != nil {
		return r, err
	}
	empty := snap.GetMetadata().GetIndex() == 0 && hs.GetTerm() == 0 && len(ents) == 0
	if empty && r.gen.IsZero() {
		init, err := chain.InitialSnapshot(g)
		if err != nil {
			return r, err
		}
		if err := st.Save(nil, nil, init); err != nil {
			return r, fmt.Errorf("starting the raft log: %w", err)
		}
	}
	if r.ms, err = st.Restore(); err != nil {
		return r, fmt.Errorf("restoring the raft log: %w", err)
	}
	if snap, err = r.ms.Snapshot(); err != nil {
		return r, err
	}
	r.applied = snap.GetMetadata().GetIndex()
	if r.state, err = chain.RestoreState(g, snap.GetData()); err != nil {
		return r, fmt.Errorf("restoring the state from the raft log's snapshot: %w", err)
	}
	if empty && r.forced != nil && len(r.forced.State) > 0 {
		// A newer generation replaced this log and its history has not
		// arrived yet: until it does, the state the old log held says
		// which servers are the chain's.
		if r.state, err = chain.RestoreState(g, r.forced.State); err != nil {
			return r, fmt.Errorf("restoring the state kept from the replaced raft log: %w", err)
		}
	}
	return r, nil
}

// checkNotOld refuses a data directory that holds collections but no raft
// log: it was written by the failover protocol before this version.
func (d *driver) checkNotOld() error {
	old := false
	if _, err := os.Stat(filepath.Join(d.cfg.DataDir, "epoch")); err == nil {
		old = true
	}
	for _, k := range collections.Kinds {
		if l, err := d.store.Load(k); err == nil && len(l.Entries) > 0 {
			old = true
		}
	}
	if !old {
		return nil
	}
	return fmt.Errorf("%w: %s holds the Domain, Catalog and Report as the failover protocol before the consensus engine kept them, and no raft log: "+
		"move that directory aside, then run 'baton domain join' with the domain's genesis again (this server then catches up from the others)", ErrOldDataDir, d.cfg.DataDir)
}

// raftTicks are the election and heartbeat timeouts in ticks, from the
// domain's failover settings: the election timeout is half the fail-after
// time (raft randomizes it up to twice that).
func (d *driver) raftTicks(st *collections.State) (election, heartbeat int) {
	tick := int(d.cfg.TickInterval / time.Millisecond)
	set := st.DomainInfo().Settings
	if tick <= 0 || set.FailAfterMillis <= 0 || set.HeartbeatMillis <= 0 {
		return 10, 1
	}
	election = max(3, set.FailAfterMillis/2/tick)
	heartbeat = min(max(1, set.HeartbeatMillis/tick), election/3)
	return election, max(1, heartbeat)
}

func (d *driver) closeChain() {
	if d.raftLog != nil {
		if err := d.raftLog.Close(); err != nil {
			d.log.Warn("closing the raft log", "err", err)
		}
		d.raftLog = nil
	}
}

func (d *driver) rewriteAll() {
	for _, k := range collections.Kinds {
		if err := d.rewrite(k); err != nil {
			d.log.Error("rewriting data file", "collection", k.String(), "err", err)
		}
	}
}

// processReady does what the consensus core asks, in raft's order: store
// the hard state, entries and snapshot durably, send the messages, then
// apply what was committed.
func (d *driver) processReady(ctx context.Context) error {
	if d.core == nil {
		return nil
	}
	for d.core.HasReady() {
		// The role as of the last Ready: raft may have made this server
		// leader (or not) since, as it stepped the messages just taken.
		wasLeader := d.leading
		rd := d.core.Ready()
		// Raft's rules: no message leaves before the latest term and vote
		// are durable, and no acknowledgement (an append or vote
		// response) before the entries it acknowledges are. The leader's
		// appends and heartbeats may leave while it writes its own copy of
		// the same entries (a lost commit index is learnt again from the
		// leader).
		var early, late []*raftpb.Message
		if d.votes(rd) {
			late = rd.Messages
		} else {
			for _, m := range rd.Messages {
				switch m.GetType() {
				case raftpb.MsgAppResp, raftpb.MsgVoteResp, raftpb.MsgPreVoteResp:
					late = append(late, m)
				default:
					early = append(early, m)
				}
			}
		}
		d.sendRaft(ctx, early)
		if err := d.raftLog.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			return fmt.Errorf("storing the raft log (nothing more is acknowledged): %w", err)
		}
		if hs := rd.HardState; hs != nil && hs.GetTerm() != 0 {
			d.savedHS.term, d.savedHS.vote = hs.GetTerm(), hs.GetVote()
		}
		d.sendRaft(ctx, late)
		res, err := d.core.Advance(rd)
		if err != nil {
			return fmt.Errorf("applying the raft log: %w", err)
		}
		d.onChainResult(ctx, res)
		if rd.SoftState != nil {
			d.onLeadership(ctx, wasLeader)
		}
		if serving := d.core.Serving(); serving != d.serving {
			d.serving = serving
			if serving {
				d.flushOutbox(ctx) // what waited for the new master's first entry
			}
		}
	}
	snap, err := d.core.Compact(snapshotEvery, snapshotKeep)
	if err != nil {
		d.log.Warn("compacting the raft log", "err", err)
	} else if snap != nil {
		if err := d.raftLog.SaveSnapshot(snap); err != nil {
			d.log.Warn("storing a raft snapshot", "err", err)
		}
	}
	return nil
}

// votes reports whether rd changes the durable term or vote, or carries a
// snapshot: then its messages wait for the write.
func (d *driver) votes(rd raft.Ready) bool {
	if !raft.IsEmptySnap(rd.Snapshot) {
		return true
	}
	hs := rd.HardState
	return hs != nil && hs.GetTerm() != 0 && (hs.GetTerm() != d.savedHS.term || hs.GetVote() != d.savedHS.vote)
}

// onLeadership logs a change of master and, on the new master, proposes
// what waits in the outbox.
func (d *driver) onLeadership(ctx context.Context, wasLeader bool) {
	lead := d.master()
	isLeader := d.isMaster()
	d.leading = isLeader
	switch {
	case isLeader && !wasLeader:
		d.log.Info("promoted to master", "epoch", d.masterEpoch())
		d.sendHeartbeat(ctx)
		d.lastBeat = d.cfg.Now()
	case wasLeader && !isLeader:
		d.log.Info("stepped down from master", "new_master", lead.String(), "name", d.hostName(lead), "epoch", d.masterEpoch())
	case lead != d.lastLeader && lead != "":
		d.log.Info("following master", "master", lead.String(), "name", d.hostName(lead), "epoch", d.masterEpoch())
	case lead == "" && d.lastLeader != "":
		d.log.Warn("no master reachable", "last_master", d.lastLeader.String())
	}
	if lead != d.lastLeader {
		// Proposals sent to the old master may never be answered.
		for h := range d.inflight {
			delete(d.inflight, h)
		}
	}
	if !isLeader {
		d.dropDomainOutbox(lead)
	}
	d.lastLeader = lead
	if lead != "" {
		d.flushOutbox(ctx)
	}
}

// dropDomainOutbox answers the Domain changes this server authored as
// master and never got into its log (a leadership transfer began first):
// only the master that authors a Domain change certifies it, so no other
// server will. Those it proposed are answered when their log position is
// committed (applied, or Lost).
func (d *driver) dropDomainOutbox(lead lpeer.ID) {
	for h, e := range d.outbox.entries {
		if e.su.Update().Collection != collections.Domain || d.core.Pending(h) {
			continue
		}
		d.log.Warn("domain change not proposed before this server lost the master role; dropped", "key", e.su.Update().Key, "master", lead.String())
		d.settle(h, submitResult{err: &NotMasterError{Master: lead, MasterName: d.hostName(lead)}})
	}
}

// onChainResult stores, publishes and acknowledges what the core applied.
func (d *driver) onChainResult(ctx context.Context, res chain.Result) {
	if res.Restored {
		d.state = d.core.State()
		d.log.Info("state restored from a snapshot of the raft log", "applied", d.core.Applied())
		d.rewriteAll()
		d.onDomainChanged()
		d.refreshAllow()
		d.checkForced()
	}
	for _, a := range res.Applied {
		c := a.Certified
		h := c.Hash()
		if a.Err != nil {
			d.log.Warn("committed entry refused", "index", a.Index, "term", a.Term, "key", c.Update().Key, "err", a.Err)
			delete(d.inflight, h)
			if !errors.Is(a.Err, chain.ErrMisplaced) {
				d.settle(h, submitResult{err: fmt.Errorf("%w: %w", ErrRejected, a.Err)})
			}
			continue
		}
		u := c.Update()
		d.sh.applied.add(blake3.Sum256(c.Marshal()))
		if a.Verdict.Store && !d.replaying {
			if err := d.appendData(u.Collection, c.Marshal()); err != nil {
				d.log.Error("storing update", "err", err)
			}
		}
		if a.Verdict.Outcome == collections.Accepted {
			d.lastUpdate[u.Collection] = d.cfg.Now()
			d.log.Debug("applied update", "collection", u.Collection.String(), "key", u.Key, "term", a.Term, "index", a.Index)
			d.onRecordChanged(u)
			if d.cfg.OnApplied != nil {
				d.cfg.OnApplied(c)
			}
			if d.isMaster() {
				d.publish(ctx, c)
			}
		}
		d.settle(h, submitResult{receipt: Receipt{Certified: c}})
	}
	for _, held := range res.InSnapshot {
		delete(d.inflight, held.Hash)
		d.settle(held.Hash, submitResult{receipt: Receipt{Certified: held.Certified}})
	}
	for _, h := range res.Lost {
		delete(d.inflight, h)
		e, ok := d.outbox.entries[h]
		if !ok {
			continue
		}
		if e.su.Update().Collection == collections.Domain && !d.isMaster() {
			// Only the master that authored a Domain change certifies it:
			// it is not proposed again elsewhere.
			m := d.master()
			d.settle(h, submitResult{err: fmt.Errorf("%w (the master is now %s)", chain.ErrLost, d.hostName(m))})
		}
	}
	if d.replaying && d.core.Applied() >= d.replayTo {
		d.replaying = false
		d.rewriteAll()
	}
}

// raftLogger sends raft's own log to slog at debug level (warnings and
// errors at theirs).
type raftLogger struct {
	l interface {
		Debug(string, ...any)
		Info(string, ...any)
		Warn(string, ...any)
		Error(string, ...any)
	}
}

func (r raftLogger) Debug(v ...any)              { r.l.Debug("raft: " + fmt.Sprint(v...)) }
func (r raftLogger) Debugf(f string, v ...any)   { r.l.Debug("raft: " + fmt.Sprintf(f, v...)) }
func (r raftLogger) Info(v ...any)               { r.l.Debug("raft: " + fmt.Sprint(v...)) }
func (r raftLogger) Infof(f string, v ...any)    { r.l.Debug("raft: " + fmt.Sprintf(f, v...)) }
func (r raftLogger) Warning(v ...any)            { r.l.Warn("raft: " + fmt.Sprint(v...)) }
func (r raftLogger) Warningf(f string, v ...any) { r.l.Warn("raft: " + fmt.Sprintf(f, v...)) }
func (r raftLogger) Error(v ...any)              { r.l.Error("raft: " + fmt.Sprint(v...)) }
func (r raftLogger) Errorf(f string, v ...any)   { r.l.Error("raft: " + fmt.Sprintf(f, v...)) }
func (r raftLogger) Fatal(v ...any)              { panic(fmt.Sprint(v...)) }
func (r raftLogger) Fatalf(f string, v ...any)   { panic(fmt.Sprintf(f, v...)) }
func (r raftLogger) Panic(v ...any)              { panic(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(f string, v ...any)   { panic(fmt.Sprintf(f, v...)) }

// chainStatus fills in the consensus engine's view.
func (d *driver) chainStatus(st *Status) {
	rs := d.core.Status()
	cs := &ChainStatus{
		Term: rs.GetTerm(), Commit: rs.GetCommit(), Applied: d.core.Applied(),
		Voters: []string{}, Learners: []string{},
	}
	if lead := d.raftPeers[rs.Lead]; lead != "" {
		cs.Leader, cs.LeaderName = lead.String(), d.hostName(lead)
	}
	conf := d.core.ConfState()
	cs.Witnesses, cs.WitnessIDs = []string{}, []string{}
	for _, id := range d.chain {
		if d.isWitness(id) {
			cs.Witnesses = append(cs.Witnesses, d.hostName(id))
			cs.WitnessIDs = append(cs.WitnessIDs, id.String())
		}
	}
	for _, id := range d.chain {
		rid := chain.RaftID(id)
		switch {
		case slices.Contains(conf.GetVoters(), rid):
			cs.Voters = append(cs.Voters, d.hostName(id))
		case slices.Contains(conf.GetLearners(), rid):
			cs.Learners = append(cs.Learners, d.hostName(id))
		}
	}
	switch len(cs.Voters) {
	case 1:
		cs.Warning = "one server: the domain stops taking changes while it is down; add servers to the chain (or a server and a witness: 'baton init --witness')"
	case 2:
		cs.Warning = "two servers cannot fail over: a change needs both, so the domain stops taking changes while either is down; add a third server or a witness ('baton init --witness') to the chain"
	}
	if d.cfg.Witness {
		var homed []string
		for u := range d.homeUsers() {
			homed = append(homed, u)
		}
		if len(homed) > 0 {
			slices.Sort(homed)
			cs.Warning = strings.TrimPrefix(cs.Warning+"; ", "; ") + fmt.Sprintf("this witness is the home server of %s, who cannot log in: a witness takes no logins (remove and add them again with another home server)", strings.Join(homed, ", "))
		}
	}
	if w := d.forcedWarning(); w != "" {
		cs.Warning = strings.TrimPrefix(cs.Warning+"; ", "; ") + w
	}
	cs.Generation = d.gen.N
	st.Chain = cs
	st.Epoch = rs.GetTerm()
	switch {
	case d.isMaster():
		st.Role = "master"
	case rs.RaftState == raft.StateCandidate || rs.RaftState == raft.StatePreCandidate:
		st.Role = "candidate"
	}
}
