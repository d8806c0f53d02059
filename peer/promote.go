package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/internal/atomicfile"
	"github.com/baton-sync/baton/peer/chain"
	"github.com/baton-sync/baton/peer/raftstore"
)

// ErrHasMaster: a forced promotion was asked of a server that knows a
// master, or is one.
var ErrHasMaster = errors.New("the chain has a master")

// Promotion is what a forced promotion did.
type Promotion struct {
	// Generation counts the forced promotions of the chain's history.
	Generation uint64 `json:"generation"`
	// Term and Index are where the promoted log ends: its snapshot.
	Term  uint64 `json:"term"`
	Index uint64 `json:"index"`
	// Uncommitted is how many entries at the end of the log were not
	// known committed, and now are.
	Uncommitted uint64 `json:"uncommitted"`
	// OldLog is the copy of the log as it was.
	OldLog string `json:"old_log"`
}

// PromoteForce makes this server the sole voter of the chain, an operator's
// decision when no majority of the voters is left: see chain.ForcePromote.
// It refuses while the server knows a master (ErrHasMaster).
func (n *Node) PromoteForce(ctx context.Context) (Promotion, error) {
	var (
		p   Promotion
		err error
	)
	if derr := n.do(ctx, func(ctx context.Context, d *driver) { p, err = d.promoteForce(ctx) }); derr != nil {
		return Promotion{}, derr
	}
	return p, err
}

// forcedReport is what a server keeps in its data directory when a newer
// generation of the chain replaced its log: the updates its log held that
// the promoted server's history lacks. Until the server has the new
// history (Checked), it lists every update its log held, and keeps the
// state it had, so that a restart before then still knows the chain.
type forcedReport struct {
	Generation   uint64         `json:"generation"`
	PromotedBy   string         `json:"promoted_by"`
	PromotedName string         `json:"promoted_name,omitempty"`
	Evicted      time.Time      `json:"evicted"`
	OldLog       string         `json:"old_log"`
	Checked      bool           `json:"checked"`
	Updates      []forcedUpdate `json:"updates"`
	State        []byte         `json:"state,omitempty"`
}

// forcedUpdate is one update of a replaced log.
type forcedUpdate struct {
	Index      uint64 `json:"index"`
	Term       uint64 `json:"term"`
	Committed  bool   `json:"committed_here"`
	Collection string `json:"collection"`
	Key        string `json:"key"`
	Deleted    bool   `json:"deleted,omitempty"`
	Author     string `json:"author"`
	Certified  []byte `json:"certified"`
}

func forcedReportPath(dir string, g chain.Generation) string {
	return filepath.Join(dir, fmt.Sprintf("forced-promotion-%d.json", g.N))
}

// oldLogPath is a free name for a copy of the raft log of generation g.
func oldLogPath(dir string, g chain.Generation) string {
	base := filepath.Join(dir, fmt.Sprintf("raft-generation-%d", g.N))
	p := base + ".db"
	for i := 2; ; i++ {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return p
		}
		p = fmt.Sprintf("%s.%d.db", base, i)
	}
}

func (d *driver) promoteForce(ctx context.Context) (Promotion, error) {
	if d.core == nil {
		return Promotion{}, errors.New("this host is not a server of the chain")
	}
	if d.cfg.Witness {
		return Promotion{}, errors.New("a witness keeps no folders and never stays master: run this on a server of the chain")
	}
	if d.core.IsLeader() {
		return Promotion{}, fmt.Errorf("%w: this server is the master (term %d)", ErrHasMaster, d.core.Term())
	}
	if lead := d.raftPeers[d.core.Lead()]; lead != "" {
		return Promotion{}, fmt.Errorf("%w: %s is master at term %d; a forced promotion is only for a chain that lost the majority of its voters", ErrHasMaster, d.hostName(lead), d.core.Term())
	}
	old := d.gen
	p, err := d.core.ForcePromote()
	if err != nil {
		// The core may have applied part of its log: start again from disk.
		return Promotion{}, errors.Join(fmt.Errorf("promoting: %w", err), d.reopenChain(ctx))
	}
	oldLog := oldLogPath(d.cfg.DataDir, old)
	err = d.replaceLog(oldLog, func(st *raftstore.Store) error {
		if err := st.Save(p.HardState, nil, p.Snapshot); err != nil {
			return err
		}
		return st.SetGeneration(p.Generation.Marshal())
	})
	if err != nil {
		return Promotion{}, errors.Join(fmt.Errorf("storing the promotion (the log is unchanged): %w", err), d.reopenChain(ctx))
	}
	if err := d.reopenChain(ctx); err != nil {
		return Promotion{}, err
	}
	d.core.Campaign()
	idx := p.Snapshot.GetMetadata().GetIndex()
	d.log.Warn("promoted by force: this server is the chain's only voter; the others rejoin as learners of the new generation",
		"generation", p.Generation.N, "term", p.HardState.GetTerm(), "index", idx, "uncommitted_entries_committed", idx-p.Commit, "old_log", oldLog)
	// Updates that waited here for a commit and that the log held are in
	// the promoted state now.
	for h, e := range d.outbox.entries {
		if cert, ok := d.state.Holds(e.su.Update()); ok && !cert.IsZero() && cert.Hash() == h {
			d.settle(h, submitResult{receipt: Receipt{Certified: cert}})
		}
	}
	return Promotion{
		Generation: p.Generation.N, Term: p.HardState.GetTerm(), Index: idx,
		Uncommitted: idx - p.Commit, OldLog: oldLog,
	}, nil
}

// replaceLog copies the raft log to oldLog, writes a new one with fill and
// puts it in the old one's place. On error the old log stays in place.
func (d *driver) replaceLog(oldLog string, fill func(*raftstore.Store) error) error {
	path := filepath.Join(d.cfg.DataDir, raftLogName)
	tmp := path + ".new"
	_ = os.Remove(tmp)
	st, err := raftstore.Open(tmp)
	if err != nil {
		return err
	}
	err = fill(st)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.raftLog.Backup(oldLog)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	d.closeChain()
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replacing the raft log: %w", err)
	}
	if err := atomicfile.SyncDir(d.cfg.DataDir); err != nil {
		return fmt.Errorf("replacing the raft log: %w", err)
	}
	return nil
}

// reopenChain builds the core again from the raft log on disk.
func (d *driver) reopenChain(ctx context.Context) error {
	wasLeader := d.leading
	d.closeChain()
	d.core = nil
	if err := d.openChain(false); err != nil {
		return fmt.Errorf("reopening the raft log: %w", err)
	}
	d.serving = false
	d.onDomainChanged()
	d.refreshAllow()
	d.onLeadership(ctx, wasLeader)
	return nil
}

// evicted replaces this server's log with an empty one of generation g,
// after a message of g arrived from from: a server was promoted by force
// and its history, not this server's, is the chain's. What the old log
// held is kept (a copy of the log, and a report checked once this server
// has the new history); the new history arrives as a snapshot.
func (d *driver) evicted(ctx context.Context, g chain.Generation, from lpeer.ID) {
	held, err := d.core.LogUpdates()
	if err != nil {
		d.log.Error("reading the raft log to replace", "err", err)
		return
	}
	state, err := chain.EncodeState(d.state)
	if err != nil {
		d.log.Error("encoding the state to replace", "err", err)
		return
	}
	oldLog := oldLogPath(d.cfg.DataDir, d.gen)
	r := forcedReport{
		Generation: g.N, Evicted: d.cfg.Now().UTC(), OldLog: oldLog, State: state,
	}
	if by := d.raftPeers[g.By]; by != "" {
		r.PromotedBy, r.PromotedName = by.String(), d.hostName(by)
	}
	for _, u := range held {
		uu := u.Certified.Update()
		r.Updates = append(r.Updates, forcedUpdate{
			Index: u.Index, Term: u.Term, Committed: u.Committed, Collection: uu.Collection.String(),
			Key: uu.Key, Deleted: uu.Delete, Author: uu.Author, Certified: u.Certified.Marshal(),
		})
	}
	if err := writeForcedReport(forcedReportPath(d.cfg.DataDir, g), r); err != nil {
		d.log.Error("cannot keep what the raft log holds; it is not replaced", "err", err)
		return
	}
	err = d.replaceLog(oldLog, func(st *raftstore.Store) error { return st.SetGeneration(g.Marshal()) })
	if err != nil {
		d.log.Error("replacing the raft log", "err", err)
		if rerr := d.reopenChain(ctx); rerr != nil {
			d.log.Error("reopening the raft log", "err", rerr)
		}
		return
	}
	d.log.Error("the chain was promoted by force: this server's raft log is replaced by the promoted server's history; "+
		"what its log held that the new history lacks will be listed in the report",
		"promoted", r.PromotedName, "generation", g.N, "from", from.String(), "updates_held", len(held),
		"report", forcedReportPath(d.cfg.DataDir, g), "old_log", oldLog)
	if err := d.reopenChain(ctx); err != nil {
		d.log.Error("reopening the raft log", "err", err)
	}
}

// checkForced compares, once this server holds the new generation's
// history, the updates its replaced log held with it, and keeps the report
// of those not kept.
func (d *driver) checkForced() {
	r := d.forced
	if r == nil || r.Checked || d.core.Applied() == 0 {
		return
	}
	var lost []forcedUpdate
	for _, u := range r.Updates {
		c, err := collections.UnmarshalCertified(u.Certified)
		if err != nil || chain.Kept(d.state, c) {
			continue
		}
		lost = append(lost, u)
		if u.Committed {
			d.log.Error("a change this server had committed is not in the promoted server's history",
				"collection", u.Collection, "key", u.Key, "author", u.Author, "index", u.Index, "term", u.Term, "generation", r.Generation)
		}
	}
	r.Checked, r.Updates, r.State = true, lost, nil
	path := forcedReportPath(d.cfg.DataDir, d.gen)
	if err := writeForcedReport(path, *r); err != nil {
		d.log.Error("writing the report of the replaced raft log", "err", err)
		return
	}
	d.log.Warn("caught up with the promoted server's history", "generation", r.Generation, "not_kept", len(lost), "report", path)
}

func writeForcedReport(path string, r forcedReport) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}

// loadForcedReport reads the report of generation g, if there is one.
func (d *driver) loadForcedReport(g chain.Generation) (*forcedReport, error) {
	if g.IsZero() {
		return nil, nil
	}
	b, err := os.ReadFile(forcedReportPath(d.cfg.DataDir, g))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r forcedReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reading %s: %w", forcedReportPath(d.cfg.DataDir, g), err)
	}
	return &r, nil
}

// forcedWarning is what status says about the last forced promotion.
func (d *driver) forcedWarning() string {
	r := d.forced
	if r == nil {
		return ""
	}
	by := r.PromotedName
	if by == "" {
		by = "another server"
	}
	path := forcedReportPath(d.cfg.DataDir, d.gen)
	if !r.Checked {
		return fmt.Sprintf("%s was promoted by force (generation %d): this server is catching up with its history; what its own log held is kept in %s", by, r.Generation, path)
	}
	committed := 0
	for _, u := range r.Updates {
		if u.Committed {
			committed++
		}
	}
	if committed == 0 {
		return ""
	}
	return fmt.Sprintf("%d changes this server had committed are not in the history of %s, promoted by force (generation %d): they are listed in %s", committed, by, r.Generation, path)
}
