package peer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/zeebo/blake3"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer/chain"
	"github.com/baton-sync/baton/peer/wire"
)

// --- certified updates arriving by gossip (the fast path) ---

// validateUpdate runs on pubsub's goroutines before a message is delivered
// or forwarded: the master's and the author's signatures, and the
// certifier and the publisher servers of the chain. Only committed entries
// of the chain's log are published, each certified for its own log
// position (term and index), which orders it wherever it is merged; an
// entry certified in an earlier term and committed by the next master is
// as valid as any. The write rules need the state and are checked by the
// driver.
func (e *edge) validateUpdate(_ context.Context, _ lpeer.ID, m *pubsub.Message) pubsub.ValidationResult {
	c, err := collections.UnmarshalCertified(m.Data)
	if err != nil {
		e.sh.refused.Add(1)
		return pubsub.ValidationReject
	}
	if !e.sh.isServer(m.GetFrom()) || !e.sh.isServer(c.Master()) {
		e.sh.refused.Add(1)
		return pubsub.ValidationReject
	}
	if e.sh.applied.has(blake3.Sum256(m.Data)) {
		// The very bytes this server applied from its log, where both
		// signatures were checked.
		m.ValidatorData = c
		return pubsub.ValidationAccept
	}
	if err := checkSignatures(c); err != nil {
		e.sh.refused.Add(1)
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
	if d.core != nil {
		// A server of the chain applies the log, in order, and nothing else.
		d.counters.GossipHeld++
		return
	}
	if from := m.GetFrom(); from != d.agentView.master || d.agentView.master == "" {
		// Only the master publishes, and only what it committed. Anything
		// else (a deposed master's key certifying in its old term, a
		// master this host has not heard yet) is left to anti-entropy
		// with the servers, which hold exactly the log.
		d.counters.GossipRefused++
		return
	}
	d.lastGossip = d.cfg.Now()
	v, _ := d.applyCertified(c, collections.VerifyOptions{}, "gossip")
	d.counters.countGossip(v.Outcome)
}

// countGossip counts the outcome of applying an update that came by
// gossip or by the master's feed.
func (c *Counters) countGossip(o collections.Outcome) {
	switch o {
	case collections.Accepted:
		c.GossipApplied++
	case collections.Duplicate, collections.Stale:
		c.GossipHeld++
	default:
		c.GossipRefused++
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
		w(r)
	}
	delete(d.waiters, h)
}

// --- local submissions and the outbox ---

func (d *driver) submit(ctx context.Context, u collections.Update) (<-chan submitResult, [32]byte, error) {
	if u.Collection == collections.Domain && !d.isMaster() {
		m := d.master()
		return nil, [32]byte{}, &NotMasterError{Master: m, MasterName: d.hostName(m)}
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
		return nil, [32]byte{}, fmt.Errorf("signing update: %w", err)
	}
	if d.core != nil && d.core.Serving() {
		// Refuse at once what the master would refuse: nothing is queued.
		// (Only when the state is current: a new master may not have
		// applied every committed change yet.)
		if _, err := d.state.VerifyProposal(su, d.self); err != nil {
			return nil, [32]byte{}, fmt.Errorf("%w: %w", ErrRejected, err)
		}
	}
	d.outbox.add(su)
	wait := make(chan submitResult, 1)
	h := su.Hash()
	d.waiters[h] = append(d.waiters[h], func(r submitResult) { wait <- r })
	d.flushOutbox(ctx)
	return wait, h, nil
}

// propose is the master's handling of an update: verify, certify for the
// next log position and propose it. It is acknowledged when it is applied
// (onChainResult settles it).
func (d *driver) propose(su collections.SignedUpdate) error {
	h := su.Hash()
	if d.inflight[h] {
		return nil
	}
	if _, err := d.core.Propose(su); err != nil {
		if errors.Is(err, chain.ErrNotLeader) || errors.Is(err, chain.ErrDropped) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrRejected, err)
	}
	d.inflight[h] = true
	return nil
}

func (d *driver) publish(ctx context.Context, c collections.Certified) {
	d.feedDevices(ctx, c)
	if !d.gossipWanted {
		return
	}
	data := c.Marshal()
	topic := d.updTopic
	d.spawn(ctx, func(ctx context.Context, e *edge) task {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := topic.Publish(pctx, data); err != nil && ctx.Err() == nil {
			return func(_ context.Context, d *driver) { d.log.Warn("publishing update", "err", err) }
		}
		return nil
	})
}

// flushOutbox proposes pending updates (on the master) or sends them to
// the master.
func (d *driver) flushOutbox(ctx context.Context) {
	d.lastFlush = d.cfg.Now()
	pending := d.outbox.list()
	if len(pending) == 0 {
		return
	}
	if d.isMaster() {
		for _, su := range pending {
			if err := d.propose(su); errors.Is(err, ErrRejected) {
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
		if d.inflight[h] || su.Update().Collection == collections.Domain {
			continue // a Domain change is certified by its author only
		}
		d.inflight[h] = true
		d.spawn(ctx, func(ctx context.Context, e *edge) task {
			resp, err := e.sendProposal(ctx, master, su)
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
	Conflict  bool   `cbor:"5,keyasint,omitempty"` // rejected: a failed condition (collections.ErrConflict)
}

func (e *edge) sendProposal(ctx context.Context, master lpeer.ID, su collections.SignedUpdate) (proposeResponse, error) {
	resp, err := call[proposeResponse](ctx, e.host, lpeer.AddrInfo{ID: master}, protoPropose, su.Marshal(), maxResponse)
	if err != nil {
		return proposeResponse{}, fmt.Errorf("proposing to %s: %w", master, err)
	}
	return resp, nil
}

func (d *driver) onProposeResult(_ context.Context, master lpeer.ID, su collections.SignedUpdate, resp proposeResponse, err error) {
	h := su.Hash()
	switch {
	case err != nil:
		delete(d.inflight, h)
		d.log.Debug("proposal not delivered; will retry", "master", master.String(), "err", err)
	case resp.Code == "":
		// Committed at the master. It is acknowledged here once this host
		// applied it too: the log brings it (d.inflight stays set until then
		// so that it is not sent again). A host outside the chain applies
		// the receipt itself.
		if d.core != nil {
			return
		}
		delete(d.inflight, h)
		c, err := collections.UnmarshalCertified(resp.Certified)
		if err == nil && c.Signed().Hash() != h {
			err = errors.New("receipt is for another update")
		}
		if err != nil {
			d.log.Warn("bad receipt from master", "master", master.String(), "err", err)
			return
		}
		if _, err := d.applyCertified(c, collections.VerifyOptions{Master: master}, "receipt"); err != nil && !errors.Is(err, collections.ErrDuplicate) && !errors.Is(err, collections.ErrSuperseded) {
			return
		}
		d.settle(h, submitResult{receipt: Receipt{Certified: c}})
	case resp.Code == "rejected":
		err := resp.rejection()
		d.log.Warn("update rejected by the master; dropped from the outbox", "key", su.Update().Key, "err", resp.Error)
		d.settle(h, submitResult{err: err})
	default:
		delete(d.inflight, h)
		d.log.Debug("proposal not accepted; will retry", "master", master.String(), "code", resp.Code, "err", resp.Error)
	}
}

// handlePropose serves a proposal on the master.
func (e *edge) handlePropose(s network.Stream) {
	if e.refuseGuest(s) {
		return
	}
	wire.ServeMsg(s, time.Now().Add(ioTimeout), maxRequest, func(b []byte) (proposeResponse, error) {
		su, err := collections.UnmarshalSignedUpdate(b)
		if err != nil {
			return proposeResponse{Code: "rejected", Error: err.Error()}, nil
		}
		// Answered once committed: onProposal keeps reply until then.
		reply := make(chan proposeResponse, 1)
		if err := e.node.do(context.Background(), func(ctx context.Context, d *driver) { d.onProposal(ctx, su, reply) }); err != nil {
			return proposeResponse{}, ErrStopped
		}
		timer := time.NewTimer(ioTimeout - time.Second)
		defer timer.Stop()
		select {
		case resp := <-reply:
			return resp, nil
		case <-timer.C:
			return proposeResponse{Code: "error", Error: "not committed in time"}, nil
		case <-e.done:
			return proposeResponse{}, ErrStopped
		}
	})
}

// onProposal proposes su (on the master) and answers reply once it is
// committed and applied here, or refused.
func (d *driver) onProposal(_ context.Context, su collections.SignedUpdate, reply chan<- proposeResponse) {
	if !d.isMaster() {
		reply <- proposeResponse{Code: "not-master", Master: string(d.master())}
		return
	}
	err := d.propose(su)
	switch {
	case errors.Is(err, ErrRejected):
		reply <- rejected(err)
		return
	case err != nil:
		reply <- proposeResponse{Code: "error", Error: err.Error()}
		return
	}
	h := su.Hash()
	d.waiters[h] = append(d.waiters[h], func(r submitResult) {
		switch {
		case errors.Is(r.err, ErrRejected):
			reply <- rejected(r.err)
		case r.err != nil || r.receipt.Queued:
			reply <- proposeResponse{Code: "error", Error: "not committed"}
		default:
			reply <- proposeResponse{Certified: r.receipt.Certified.Marshal()}
		}
	})
}

// --- anti-entropy ---

// syncResponse is one page of what the requester lacks.
type syncResponse struct {
	Updates [][]byte `cbor:"1,keyasint"`
	More    bool     `cbor:"2,keyasint"`
}

const syncPageBytes = 8 << 20

// syncTargets are the servers a host outside the chain pulls from: the
// servers of the chain have the log.
func (d *driver) syncTargets() []lpeer.ID {
	if d.core != nil {
		return nil
	}
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
	proto, req, err := d.pullRequest(sum)
	if err != nil {
		d.syncing[p] = false
		d.log.Error("encoding pull request", "err", err)
		return
	}
	d.spawn(ctx, func(ctx context.Context, e *edge) task {
		resp, err := e.pull(ctx, p, proto, req)
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
			d.syncEvery[p] = nextSyncEvery(cmp.Or(d.syncEvery[p], d.cfg.SyncInterval), d.cfg.SyncInterval, applied)
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

// syncBackoff bounds the periodic anti-entropy spacing: at most this many
// SyncIntervals.
const syncBackoff = 8

// nextSyncEvery is the spacing of the periodic anti-entropy pulls of a
// peer after one that applied applied updates, spaced cur: base again
// once a pull brings anything, twice cur (up to syncBackoff times base)
// while they bring nothing. Pulls are the safety net: changes arrive by
// gossip and, on a device, by the master's feed, and a pull still runs
// at once on connecting; a host at
// rest asks every few tens of seconds instead of every few seconds. See
// also syncSoon.
func nextSyncEvery(cur, base time.Duration, applied int) time.Duration {
	if applied > 0 || cur < base {
		return base
	}
	return min(2*cur, syncBackoff*base)
}

// syncSoon brings the periodic anti-entropy pulls back to every
// SyncInterval: what this host was sent may not all have been taken (a
// feed from a master it did not follow yet).
func (d *driver) syncSoon() { clear(d.syncEvery) }

func (e *edge) pull(ctx context.Context, p lpeer.ID, proto protocol.ID, req []byte) (syncResponse, error) {
	return call[syncResponse](ctx, e.host, lpeer.AddrInfo{ID: p}, proto, req, maxResponse)
}

// handleSync serves the Domain's hosts; a device asks for its view
// (handleView).
func (e *edge) handleSync(s network.Stream) {
	if e.refuseGuest(s) {
		return
	}
	if !e.sh.isHost(s.Conn().RemotePeer()) {
		_ = s.Reset()
		return
	}
	wire.ServeMsg(s, time.Now().Add(ioTimeout), maxRequest, func(b []byte) (syncResponse, error) {
		theirs, err := collections.UnmarshalSummary(b)
		if err != nil {
			return syncResponse{}, err
		}
		ctx, cancel := e.handlerContext(ioTimeout)
		defer cancel()
		return query(ctx, e.node, func(d *driver) syncResponse {
			resp := pageOf(d.state.Missing(theirs))
			d.counters.SyncServed += int64(len(resp.Updates))
			return resp
		})
	})
}

func (d *driver) onConnected(ctx context.Context, id lpeer.ID) {
	if d.sh.isServer(id) && d.core == nil {
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
		d.dial(ctx, lpeer.AddrInfo{ID: id, Addrs: addrs})
	}
}

// dial connects to info in the background; a failure delays the next
// dial of the same host by the reconnect backoff.
func (d *driver) dial(ctx context.Context, info lpeer.AddrInfo) { d.dialWith(ctx, info, false) }

// dialWith is dial; with direct, only a direct connection will do (a
// relayed one is not used, nor made).
func (d *driver) dialWith(ctx context.Context, info lpeer.AddrInfo, direct bool) {
	id := info.ID
	d.dialing[id] = true
	d.spawn(ctx, func(ctx context.Context, e *edge) task {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if direct {
			cctx = network.WithForceDirectDial(cctx, "a direct connection to a fellow device")
		}
		err := e.host.Connect(cctx, info)
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
	}
	st.Witness = d.cfg.Witness
	if d.core != nil {
		d.chainStatus(&st)
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
			ps.Relayed = d.host.Network().Connectedness(p) == network.Limited
			st.Peers = append(st.Peers, ps)
		}
	}
	now := d.cfg.Now()
	for srv, exp := range d.relay.expires {
		if exp.After(now) {
			st.Relays = append(st.Relays, srv.String())
		}
	}
	slices.Sort(st.Relays)
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
	if err := d.outbox.persistAll(); err != nil {
		d.log.Error("keeping the outbox on disk", "err", err)
	}
	for h, ws := range d.waiters {
		for _, w := range ws {
			w(submitResult{receipt: Receipt{Queued: true}})
		}
		delete(d.waiters, h)
	}
	d.closeChain()
	d.log.Info("node stopped")
}
