package peer

import (
	"context"
	"errors"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/peer/role"
)

// --- certified updates arriving by gossip (the fast path) ---

// validateUpdate runs on pubsub's goroutines before a message is delivered
// or forwarded: the master's and the author's signatures, the master in the
// chain and publishing as itself, and the epoch fence. The write rules need
// the state and are checked by the driver.
func (d *driver) validateUpdate(_ context.Context, _ lpeer.ID, m *pubsub.Message) pubsub.ValidationResult {
	c, err := collections.UnmarshalCertified(m.Data)
	if err != nil {
		d.sh.refused.Add(1)
		return pubsub.ValidationReject
	}
	if m.GetFrom() != c.Master() || !d.sh.isServer(c.Master()) {
		d.sh.refused.Add(1)
		return pubsub.ValidationReject
	}
	if c.Epoch() < d.sh.highest.Load() {
		d.sh.refused.Add(1)
		return pubsub.ValidationIgnore // a deposed master: fenced
	}
	if err := checkSignatures(c); err != nil {
		d.sh.refused.Add(1)
		return pubsub.ValidationReject
	}
	m.ValidatorData = c
	return pubsub.ValidationAccept
}

// checkSignatures verifies a certified update's two signatures without the
// state: the master's over the certification, the author's over the update.
func checkSignatures(c collections.Certified) error {
	outer, err := identity.UnmarshalEnvelope(c.Marshal())
	if err != nil {
		return err
	}
	if err := outer.OpenBy(identity.PurposeCertification, c.Master()); err != nil {
		return err
	}
	inner, err := identity.UnmarshalEnvelope(c.Signed().Marshal())
	if err != nil {
		return err
	}
	author, err := lpeer.Decode(c.Update().Author)
	if err != nil {
		return err
	}
	return inner.OpenBy(identity.PurposeUpdate, author)
}

func (d *driver) onGossipUpdate(ctx context.Context, m *pubsub.Message) {
	c, ok := m.ValidatorData.(collections.Certified)
	if !ok {
		return
	}
	if drop := d.node.hooks.dropGossip; drop != nil && drop(c) {
		return
	}
	if d.machine != nil {
		if err := d.machine.Fence(c.Epoch()); err != nil {
			d.counters.GossipRefused++
			d.log.Warn("refused update from a deposed master", "master", c.Master().String(), "err", err)
			return
		}
	}
	d.raiseHighest(c.Epoch())
	// A lasting hole in the master's sequence means gossip lost
	// something; onTick pulls (see gapTracker).
	d.gap.observe(c.Epoch(), c.MasterSeq(), d.cfg.Now())
	d.lastGossip = d.cfg.Now()
	v, _ := d.applyCertified(c, collections.VerifyOptions{MinEpoch: d.highest}, "gossip")
	switch v.Outcome {
	case collections.Accepted:
		d.counters.GossipApplied++
	case collections.Duplicate, collections.Stale:
		d.counters.GossipHeld++
	default:
		d.counters.GossipRefused++
	}
}

// applyCertified verifies and applies one certified update, persists it if
// the state retains it, and settles any local submission it answers.
func (d *driver) applyCertified(c collections.Certified, opts collections.VerifyOptions, via string) (collections.Verdict, error) {
	v, err := d.state.Verify(c, opts)
	if err != nil {
		d.log.Warn("refused update", "via", via, "master", c.Master().String(), "author", c.Update().Author, "key", c.Update().Key, "err", err)
		return collections.Verdict{Outcome: collections.Rejected, Err: err}, err
	}
	verdict := d.state.Apply(v)
	u := c.Update()
	if verdict.Store {
		if err := d.appendData(u.Collection, c.Marshal()); err != nil {
			d.log.Error("storing update", "err", err)
		}
	}
	if verdict.Outcome == collections.Accepted {
		d.lastUpdate[u.Collection] = d.cfg.Now()
		d.log.Debug("applied update", "via", via, "collection", u.Collection.String(), "key", u.Key, "epoch", c.Epoch(), "seq", c.MasterSeq())
		d.onRecordChanged(u)
		if d.cfg.OnApplied != nil {
			d.cfg.OnApplied(c)
		}
	}
	if verdict.Outcome != collections.Rejected {
		d.settle(c.Signed().Hash(), submitResult{receipt: Receipt{Certified: c}})
	}
	return verdict, verdict.Err
}

// settle answers local waiters for an update and drops it from the outbox.
func (d *driver) settle(h [32]byte, r submitResult) {
	d.outbox.remove(h)
	delete(d.inflight, h)
	for _, w := range d.waiters[h] {
		w <- r
	}
	delete(d.waiters, h)
}

// --- local submissions and the outbox ---

func (d *driver) submit(ctx context.Context, u collections.Update) (<-chan submitResult, error) {
	if u.Collection == collections.Domain && !d.isMaster() {
		m := d.master()
		return nil, &NotMasterError{Master: m, MasterName: d.hostName(m)}
	}
	u = d.state.Prepare(d.self, u, d.cfg.Now())
	if s := d.outbox.maxSeq(u.Collection); u.Seq <= s {
		u.Seq = s + 1
	}
	if c := d.outbox.maxClock(); u.Clock <= c {
		u.Clock = c + 1
	}
	su, err := collections.SignUpdate(d.cfg.Key, u)
	if err != nil {
		return nil, fmt.Errorf("signing update: %w", err)
	}
	wait := make(chan submitResult, 1)
	if d.isMaster() {
		c, err := d.certify(ctx, su)
		if err != nil {
			return nil, err
		}
		wait <- submitResult{receipt: Receipt{Certified: c}}
		return wait, nil
	}
	if err := d.outbox.add(su); err != nil {
		return nil, err
	}
	h := su.Hash()
	d.waiters[h] = append(d.waiters[h], wait)
	d.flushOutbox(ctx)
	return wait, nil
}

// certify is the master's handling of a proposed update: verify, certify
// with this epoch, apply, persist, then (only then) acknowledge and publish.
func (d *driver) certify(ctx context.Context, su collections.SignedUpdate) (collections.Certified, error) {
	if !d.isMaster() {
		return collections.Certified{}, ErrNotMaster
	}
	p, err := d.state.VerifyProposal(su, d.self)
	if err != nil {
		return collections.Certified{}, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	c, v, err := p.Certify(d.cfg.Key, d.roleState.Epoch, d.masterSeq+1)
	if err != nil {
		return collections.Certified{}, fmt.Errorf("certifying: %w", err)
	}
	verdict := d.state.Apply(v)
	if verdict.Outcome == collections.Rejected {
		return collections.Certified{}, fmt.Errorf("%w: %w", ErrRejected, verdict.Err)
	}
	u := c.Update()
	if verdict.Outcome != collections.Accepted {
		// Already here (a retried proposal, a replay) or superseded:
		// acknowledge it, but do not make every server receive it again.
		if verdict.Store {
			if err := d.appendData(u.Collection, c.Marshal()); err != nil {
				return collections.Certified{}, err
			}
		}
		d.settle(su.Hash(), submitResult{receipt: Receipt{Certified: c}})
		return c, nil
	}
	d.masterSeq++
	if verdict.Store {
		if err := d.appendData(u.Collection, c.Marshal()); err != nil {
			return collections.Certified{}, err
		}
	}
	if verdict.Outcome == collections.Accepted {
		d.lastUpdate[u.Collection] = d.cfg.Now()
		d.onRecordChanged(u)
		if d.cfg.OnApplied != nil {
			d.cfg.OnApplied(c)
		}
	}
	d.settle(su.Hash(), submitResult{receipt: Receipt{Certified: c}})
	d.publish(ctx, c)
	return c, nil
}

func (d *driver) publish(ctx context.Context, c collections.Certified) {
	data := c.Marshal()
	topic := d.updTopic
	d.spawn(ctx, func(ctx context.Context) task {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := topic.Publish(pctx, data); err != nil && ctx.Err() == nil {
			return func(_ context.Context, d *driver) { d.log.Warn("publishing update", "err", err) }
		}
		return nil
	})
}

// flushOutbox sends pending updates to the master.
func (d *driver) flushOutbox(ctx context.Context) {
	d.lastFlush = d.cfg.Now()
	pending := d.outbox.list()
	if len(pending) == 0 {
		return
	}
	if d.isMaster() {
		for _, su := range pending {
			if _, err := d.certify(ctx, su); err != nil {
				d.log.Warn("pending update refused", "key", su.Update().Key, "err", err)
				d.settle(su.Hash(), submitResult{err: err})
			}
		}
		return
	}
	master := d.master()
	if master == "" || master == d.self || d.host.Network().Connectedness(master) != network.Connected {
		return
	}
	for _, su := range pending {
		h := su.Hash()
		if d.inflight[h] {
			continue
		}
		d.inflight[h] = true
		d.spawn(ctx, func(ctx context.Context) task {
			resp, err := d.propose(ctx, master, su)
			return func(ctx context.Context, d *driver) { d.onProposeResult(ctx, master, su, resp, err) }
		})
	}
}

// proposeResponse is the master's answer to a proposal.
type proposeResponse struct {
	Certified []byte `cbor:"1,keyasint,omitempty"`
	Code      string `cbor:"2,keyasint,omitempty"` // "", "not-master", "rejected", "error"
	Error     string `cbor:"3,keyasint,omitempty"`
	Master    string `cbor:"4,keyasint,omitempty"`
}

func (d *driver) propose(ctx context.Context, master lpeer.ID, su collections.SignedUpdate) (proposeResponse, error) {
	sctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	s, err := d.host.NewStream(sctx, master, protoPropose)
	if err != nil {
		return proposeResponse{}, fmt.Errorf("opening proposal stream to %s: %w", master, err)
	}
	defer s.Close()
	b, err := roundTrip(s, su.Marshal(), maxResponse)
	if err != nil {
		_ = s.Reset()
		return proposeResponse{}, fmt.Errorf("proposing to %s: %w", master, err)
	}
	var resp proposeResponse
	if err := canon.Unmarshal(b, &resp, maxResponse); err != nil {
		return proposeResponse{}, fmt.Errorf("proposal response from %s: %w", master, err)
	}
	return resp, nil
}

func (d *driver) onProposeResult(ctx context.Context, master lpeer.ID, su collections.SignedUpdate, resp proposeResponse, err error) {
	h := su.Hash()
	delete(d.inflight, h)
	switch {
	case err != nil:
		d.log.Debug("proposal not delivered; will retry", "master", master.String(), "err", err)
	case resp.Code == "":
		c, err := collections.UnmarshalCertified(resp.Certified)
		if err == nil && c.Signed().Hash() != h {
			err = errors.New("receipt is for another update")
		}
		if err != nil {
			d.log.Warn("bad receipt from master", "master", master.String(), "err", err)
			return
		}
		d.raiseHighest(c.Epoch())
		if _, err := d.applyCertified(c, collections.VerifyOptions{Master: master, MinEpoch: d.highest}, "receipt"); err != nil && !errors.Is(err, collections.ErrDuplicate) && !errors.Is(err, collections.ErrSuperseded) {
			return
		}
		d.settle(h, submitResult{receipt: Receipt{Certified: c}})
	case resp.Code == "rejected":
		err := fmt.Errorf("%w by the master: %s", ErrRejected, resp.Error)
		d.log.Warn("update rejected by the master; dropped from the outbox", "key", su.Update().Key, "err", resp.Error)
		d.settle(h, submitResult{err: err})
	default:
		d.log.Debug("proposal not accepted; will retry", "master", master.String(), "code", resp.Code, "err", resp.Error)
	}
}

// handlePropose serves a proposal on the master.
func (d *driver) handlePropose(s network.Stream) {
	if d.refuseGuest(s) {
		return
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(ioTimeout))
	b, err := readFrame(s, maxRequest)
	if err != nil {
		_ = s.Reset()
		return
	}
	var resp proposeResponse
	su, err := collections.UnmarshalSignedUpdate(b)
	if err != nil {
		resp = proposeResponse{Code: "rejected", Error: err.Error()}
	} else {
		reply := make(chan proposeResponse, 1)
		if !d.post(func(ctx context.Context, d *driver) { reply <- d.onProposal(ctx, su) }) {
			_ = s.Reset()
			return
		}
		select {
		case resp = <-reply:
		case <-d.done:
			_ = s.Reset()
			return
		}
	}
	out, err := canon.Marshal(resp)
	if err != nil {
		_ = s.Reset()
		return
	}
	_ = writeFrame(s, out)
}

func (d *driver) onProposal(ctx context.Context, su collections.SignedUpdate) proposeResponse {
	if !d.isMaster() {
		return proposeResponse{Code: "not-master", Master: string(d.master())}
	}
	c, err := d.certify(ctx, su)
	switch {
	case errors.Is(err, ErrRejected):
		return proposeResponse{Code: "rejected", Error: err.Error()}
	case err != nil:
		return proposeResponse{Code: "error", Error: err.Error()}
	}
	return proposeResponse{Certified: c.Marshal()}
}

// --- anti-entropy ---

// syncResponse is one page of what the requester lacks.
type syncResponse struct {
	Updates [][]byte `cbor:"1,keyasint"`
	More    bool     `cbor:"2,keyasint"`
}

const syncPageBytes = 8 << 20

func (d *driver) syncTargets() []lpeer.ID {
	var out []lpeer.ID
	for _, id := range d.chain {
		if id != d.self && d.host.Network().Connectedness(id) == network.Connected {
			out = append(out, id)
		}
	}
	return out
}

// syncWith pulls from p whatever this host lacks; then calls done.
func (d *driver) syncWith(ctx context.Context, p lpeer.ID, done func(ctx context.Context, ok bool)) {
	if d.syncing[p] {
		if done != nil {
			done(ctx, false)
		}
		return
	}
	d.syncing[p] = true
	d.lastSync[p] = d.cfg.Now()
	sum, err := d.state.Summary().Marshal()
	if err != nil {
		d.syncing[p] = false
		d.log.Error("encoding summary", "err", err)
		return
	}
	d.spawn(ctx, func(ctx context.Context) task {
		resp, err := d.pull(ctx, p, sum)
		return func(ctx context.Context, d *driver) {
			d.syncing[p] = false
			if err != nil {
				d.log.Debug("anti-entropy pull failed", "peer", p.String(), "err", err)
				if done != nil {
					done(ctx, false)
				}
				return
			}
			applied := 0
			d.counters.SyncPulls++
			d.counters.SyncReceived += int64(len(resp.Updates))
			for _, b := range resp.Updates {
				c, err := collections.UnmarshalCertified(b)
				if err != nil {
					d.log.Warn("anti-entropy: bad update", "peer", p.String(), "err", err)
					continue
				}
				v, _ := d.applyCertified(c, collections.VerifyOptions{History: true}, "sync")
				if v.Outcome == collections.Accepted {
					applied++
				}
			}
			d.counters.SyncApplied += int64(applied)
			if applied > 0 {
				d.log.Debug("anti-entropy pulled updates", "peer", p.String(), "applied", applied)
			}
			if resp.More {
				d.syncWith(ctx, p, done)
				return
			}
			if done != nil {
				done(ctx, true)
			}
		}
	})
}

func (d *driver) pull(ctx context.Context, p lpeer.ID, summary []byte) (syncResponse, error) {
	sctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	s, err := d.host.NewStream(sctx, p, protoSync)
	if err != nil {
		return syncResponse{}, err
	}
	defer s.Close()
	b, err := roundTrip(s, summary, maxResponse)
	if err != nil {
		_ = s.Reset()
		return syncResponse{}, err
	}
	var resp syncResponse
	if err := canon.Unmarshal(b, &resp, maxResponse); err != nil {
		return syncResponse{}, fmt.Errorf("sync response from %s: %w", p, err)
	}
	return resp, nil
}

func (d *driver) handleSync(s network.Stream) {
	if d.refuseGuest(s) {
		return
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(ioTimeout))
	b, err := readFrame(s, maxRequest)
	if err != nil {
		_ = s.Reset()
		return
	}
	theirs, err := collections.UnmarshalSummary(b)
	if err != nil {
		_ = s.Reset()
		return
	}
	reply := make(chan syncResponse, 1)
	if !d.post(func(_ context.Context, d *driver) {
		var resp syncResponse
		size := 0
		for _, c := range d.state.Missing(theirs) {
			m := c.Marshal()
			if size+len(m) > syncPageBytes && len(resp.Updates) > 0 {
				resp.More = true
				break
			}
			resp.Updates = append(resp.Updates, m)
			size += len(m)
		}
		d.counters.SyncServed += int64(len(resp.Updates))
		reply <- resp
	}) {
		_ = s.Reset()
		return
	}
	var resp syncResponse
	select {
	case resp = <-reply:
	case <-d.done:
		_ = s.Reset()
		return
	}
	out, err := canon.Marshal(resp)
	if err != nil {
		_ = s.Reset()
		return
	}
	_ = writeFrame(s, out)
}

// startCatchUp pulls everything from the master the role machine says to
// catch up from, then reports it caught up.
func (d *driver) startCatchUp(ctx context.Context) {
	from, err := lpeer.Decode(d.roleState.CatchUpFrom)
	if err != nil || d.host.Network().Connectedness(from) != network.Connected {
		return
	}
	// The pull fetches everything the source (the master, or a caught-up
	// server) holds, so this host holds epoch's data even if the State has
	// moved on by the time the pull completes.
	epoch := d.roleState.CatchUpEpoch
	d.catchUp.inflight, d.catchUp.from = true, from
	d.syncWith(ctx, from, func(_ context.Context, ok bool) {
		if d.catchUp.from == from {
			d.catchUp.inflight = false
		}
		if ok && d.machine != nil {
			d.log.Info("caught up", "from", from.String(), "name", d.hostName(from), "epoch", epoch)
			d.machine.CaughtUp(epoch)
		}
	})
}

func (d *driver) onConnected(ctx context.Context, id lpeer.ID) {
	if d.sh.isServer(id) {
		d.syncWith(ctx, id, nil)
	}
	if id == d.master() {
		d.flushOutbox(ctx)
	}
}

// --- connections ---

// dialPeers keeps this host connected to the servers of the chain (servers
// dial private addresses first, agents public ones), with jittered backoff.
func (d *driver) dialPeers(ctx context.Context) {
	now := d.cfg.Now()
	for _, id := range d.chain {
		if id == d.self || d.dialing[id] || now.Before(d.nextDial[id]) {
			continue
		}
		if d.host.Network().Connectedness(id) == network.Connected {
			d.dialTries[id] = 0
			continue
		}
		rec, ok := d.state.HostByID(id)
		if !ok {
			continue
		}
		first, second := rec.PrivateAddrs, rec.PublicAddrs
		if d.cfg.Role == identity.RoleAgent {
			first, second = second, first
		}
		var addrs []ma.Multiaddr
		for _, s := range append(append([]string{}, first...), second...) {
			if a, err := ma.NewMultiaddr(s); err == nil {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			continue
		}
		d.host.ConnManager().Protect(id, "baton-chain")
		d.dialing[id] = true
		info := lpeer.AddrInfo{ID: id, Addrs: addrs}
		d.spawn(ctx, func(ctx context.Context) task {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			err := d.host.Connect(cctx, info)
			return func(_ context.Context, d *driver) {
				d.dialing[id] = false
				if err != nil {
					d.counters.DialFailures++
					d.dialFailedAt[id] = d.cfg.Now()
					d.dialTries[id]++
					d.nextDial[id] = d.cfg.Now().Add(d.backoff.delay(d.dialTries[id]))
					d.log.Debug("dial failed", "peer", id.String(), "tries", d.dialTries[id], "err", err)
					return
				}
				d.dialTries[id] = 0
			}
		})
	}
}

// --- status ---

func (d *driver) status() Status {
	st := Status{
		Name:        d.cfg.Name,
		ID:          d.self.String(),
		Role:        string(identity.RoleAgent),
		Epoch:       d.masterEpoch(),
		Domain:      d.state.DomainInfo().Name,
		Collections: map[string]CollectionStatus{},
		Outbox:      len(d.outbox.entries),
		Quarantined: append([]QuarantineEvent{}, d.quarantine...),
		Peers:       []PeerStatus{},
		Counters:    d.counters,
	}
	st.Counters.GossipRefused += d.sh.refused.Load()
	if d.cfg.Role == identity.RoleServer {
		st.Role = "slave"
		switch d.roleState.Role {
		case role.Master:
			if d.isMaster() {
				st.Role = "master"
			}
		case role.Candidate:
			st.Role = "candidate"
		}
	}
	m := d.master()
	st.Master, st.MasterName = m.String(), d.hostName(m)
	if m == "" {
		st.Master = ""
	}
	if d.host != nil {
		for _, a := range d.host.Addrs() {
			st.Listen = append(st.Listen, a.String())
		}
		for _, p := range d.host.Network().Peers() {
			ps := PeerStatus{ID: p.String(), Name: d.hostName(p), Network: "other", Guest: !d.allow.allowed(p)}
			conns := d.host.Network().ConnsToPeer(p)
			if len(conns) > 0 {
				addr := conns[0].RemoteMultiaddr().String()
				ps.Addr = addr
				if rec, ok := d.state.HostByID(p); ok {
					switch {
					case contains(rec.PrivateAddrs, addr):
						ps.Network = "private"
					case contains(rec.PublicAddrs, addr):
						ps.Network = "public"
					}
				}
			}
			st.Peers = append(st.Peers, ps)
		}
	}
	for _, k := range collections.Kinds {
		dg := d.state.Digest(k)
		st.Collections[k.String()] = CollectionStatus{
			Records:    d.state.Count(k),
			Digest:     fmt.Sprintf("%x", dg[:]),
			LastUpdate: d.lastUpdate[k],
		}
	}
	return st
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (d *driver) shutdown() {
	for h, ws := range d.waiters {
		for _, w := range ws {
			w <- submitResult{receipt: Receipt{Queued: true}}
		}
		delete(d.waiters, h)
	}
	d.log.Info("node stopped")
}

var _ = role.Master
