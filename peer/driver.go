package peer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/collections/datafile"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/peer/chain"
	"github.com/baton-sync/baton/peer/raftstore"
)

// driver owns the node's state: the collections, the consensus core (on
// servers of the chain), the outbox and the data files. Only its goroutine
// (driver.loop) touches them; network goroutines hand it tasks (post) and
// it hands them network work (spawn).
type driver struct {
	node  *Node
	cfg   Config
	log   *slog.Logger
	self  lpeer.ID
	state *collections.State

	store   *datafile.Store
	persist collections.Persistence
	stamps  map[collections.Kind]fileStamp
	dirty   map[collections.Kind]time.Time
	outbox  *outbox

	// On servers of the chain: the consensus core, its durable log, and
	// the raft IDs of the chain's servers. nil elsewhere.
	core      *chain.Core
	raftLog   *raftstore.Store
	raftPeers map[uint64]lpeer.ID
	senders   map[lpeer.ID]*raftSender
	// replaying is set while a restarted server applies the committed
	// entries its log already held; the data files are rewritten after.
	replaying  bool
	replayTo   uint64
	savedHS    struct{ term, vote uint64 } // the durable term and vote
	lastLeader lpeer.ID
	serving    bool // the core was Serving after the last Ready
	leading    bool // leader as of the last Ready with a soft state
	lastBeat   time.Time
	witnesses  map[uint64]bool // the other servers known to be witnesses
	// gen is the generation of the raft log (see chain.ForcePromote);
	// forced, the report of the log a newer generation replaced here.
	gen       chain.Generation
	forced    *forcedReport
	chain     []lpeer.ID
	agentView struct {
		master lpeer.ID
		epoch  uint64
		gen    uint64
		heard  time.Time
	}
	lastGossip time.Time // when the last certified update arrived by gossip

	allow    *allowList
	sh       shared
	host     host.Host
	updTopic *pubsub.Topic
	// gossipWanted: the Domain lists hosts outside the chain, which take
	// committed updates from the updates topic. Servers of the chain
	// apply the log and devices get their feed, so without such hosts
	// the master does not publish there.
	gossipWanted bool
	hbTopic      *pubsub.Topic

	events chan task
	// edge is what runs on network goroutines (edge.go); set by Run.
	edge *edge
	wg   *sync.WaitGroup

	// waiters are called with the result of an update, once.
	waiters map[[32]byte][]func(submitResult)
	// inflight: updates sent to the master (or proposed here) and not yet
	// applied here or failed.
	inflight map[[32]byte]bool
	syncing  map[lpeer.ID]bool
	lastSync map[lpeer.ID]time.Time
	// syncEvery is how far apart the periodic anti-entropy pulls of each
	// peer are (nextSyncEvery); SyncInterval if not set.
	syncEvery map[lpeer.ID]time.Duration
	dialing   map[lpeer.ID]bool
	dialTries map[lpeer.ID]int
	nextDial  map[lpeer.ID]time.Time
	// dialFailedAt: when the last dial of each server failed.
	dialFailedAt map[lpeer.ID]time.Time
	lastFlush    time.Time
	lastDial     time.Time
	lastUpdate   map[collections.Kind]time.Time
	quarantine   []QuarantineEvent
	auth         *authState // users and devices (auth.go); set by Run
	counters     Counters   // GossipRefused also counts d.sh.refused
	backoff      backoff
	disclose     discloseState // the device feeds (disclose.go)
	lan          lanState      // an agent's fellow devices (lan.go)
	relay        relayState    // an agent's reservations at relays (relay.go)
}

func newDriver(n *Node, store *datafile.Store) (*driver, error) {
	cfg := n.cfg
	state, err := collections.NewState(cfg.Genesis)
	if err != nil {
		return nil, fmt.Errorf("seeding state from the genesis: %w", err)
	}
	d := &driver{
		node:         n,
		cfg:          cfg,
		log:          cfg.Logger,
		self:         cfg.Key.ID(),
		state:        state,
		store:        store,
		stamps:       map[collections.Kind]fileStamp{},
		dirty:        map[collections.Kind]time.Time{},
		allow:        newAllowList(),
		events:       make(chan task, 1024),
		waiters:      map[[32]byte][]func(submitResult){},
		inflight:     map[[32]byte]bool{},
		syncing:      map[lpeer.ID]bool{},
		lastSync:     map[lpeer.ID]time.Time{},
		syncEvery:    map[lpeer.ID]time.Duration{},
		dialing:      map[lpeer.ID]bool{},
		dialTries:    map[lpeer.ID]int{},
		nextDial:     map[lpeer.ID]time.Time{},
		dialFailedAt: map[lpeer.ID]time.Time{},
		lastUpdate:   map[collections.Kind]time.Time{},
		senders:      map[lpeer.ID]*raftSender{},
		raftPeers:    map[uint64]lpeer.ID{},
		relay:        relayState{expires: map[lpeer.ID]time.Time{}, reserving: map[lpeer.ID]bool{}, failedAt: map[lpeer.ID]time.Time{}},
		backoff:      backoff{base: 250 * time.Millisecond, max: 5 * time.Second, rnd: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))},
	}
	if b := n.hooks.backoff; b.max > 0 {
		d.backoff = b
	}
	d.allow.refuseDial = n.hooks.refuseDial
	var bad []string
	if d.outbox, bad, err = openOutbox(filepath.Join(cfg.DataDir, "outbox")); err != nil {
		return nil, err
	}
	if d.isChainServer(state) {
		if err := d.openChain(true); err != nil {
			return nil, err
		}
	} else {
		for _, k := range collections.Kinds {
			if err := d.loadData(k); err != nil {
				return nil, err
			}
		}
	}
	for _, b := range bad {
		d.log.Warn("outbox entry does not decode; moved aside", "entry", b)
	}
	d.onDomainChanged()
	return d, nil
}

// isChainServer reports whether this host runs the consensus core: a
// server in the chain of the genesis or of its data.
func (d *driver) isChainServer(st *collections.State) bool {
	if d.cfg.Role != identity.RoleServer {
		return false
	}
	if st.IsServer(d.self) {
		return true
	}
	_, err := os.Stat(filepath.Join(d.cfg.DataDir, raftLogName))
	return err == nil
}

// loadData replays collection k's data file. A file that does not verify
// is quarantined and rewritten from what the state holds (the rest comes
// back from the other hosts by anti-entropy).
func (d *driver) loadData(k collections.Kind) error {
	res, err := d.state.Load(d.store, k)
	var dfe *collections.DataFileError
	switch {
	case errors.As(err, &dfe):
		d.quarantineFile(k, err.Error())
	case err != nil:
		return fmt.Errorf("loading %s data file: %w", k, err)
	case res.TornAt >= 0:
		d.log.Warn("data file ends in a torn record (crash during a write); rewriting it", "file", res.File, "offset", res.TornAt)
		if err := d.rewrite(k); err != nil {
			return err
		}
	default:
		d.log.Debug("data file loaded", "collection", k.String(), "records", res.Records)
	}
	d.stamp(k)
	return nil
}

func (d *driver) rewrite(k collections.Kind) error {
	if err := d.store.Replace(k, d.state.Snapshot(k)); err != nil {
		return fmt.Errorf("rewriting %s data file: %w", k, err)
	}
	d.persist.Compacted(k)
	d.stamp(k)
	return nil
}

// appendData stores one retained certified update durably.
func (d *driver) appendData(k collections.Kind, rec []byte) error {
	if !d.stampMatches(k) {
		// The file changed behind our back: check it before appending
		// to it, so tampering is never hidden by our own write.
		d.checkDataFile(k)
	}
	if err := d.store.Append(k, rec); err != nil {
		d.log.Warn("appending to data file failed; rewriting it", "collection", k.String(), "err", err)
		if rerr := d.rewrite(k); rerr != nil {
			return fmt.Errorf("storing %s update: %w (and rewriting: %v)", k, err, rerr)
		}
		return nil
	}
	d.persist.Appended(k)
	if d.persist.ShouldCompact(k, d.state.Retained(k)) {
		if err := d.rewrite(k); err != nil {
			d.log.Warn("compaction failed", "err", err)
		}
	}
	d.stamp(k)
	return nil
}

// onDomainChanged refreshes everything derived from the Domain: who may
// connect, the chain the validators check, the passwords of users no
// longer homed here, and the raft IDs of the chain's servers.
func (d *driver) onDomainChanged() {
	ids := d.state.Chain().IDs()
	d.sh.setServers(ids)
	hosts := d.state.Hosts()
	d.sh.setHosts(hosts)
	d.gossipWanted = slices.ContainsFunc(hosts, func(h identity.HostRecord) bool { return !slices.Contains(ids, h.ID()) })
	d.refreshAllow()
	d.prunePasswords()
	d.chain = ids
	for _, id := range ids {
		d.raftPeers[chain.RaftID(id)] = id
	}
	if d.core == nil && d.cfg.Role == identity.RoleServer && d.state.IsServer(d.self) && d.host != nil {
		// This server was added to the chain: it joins the consensus with
		// a log that starts where every server's does (the genesis), and
		// the master sends it the rest.
		d.log.Info("added to the chain: joining the consensus")
		if err := d.openChain(false); err != nil {
			d.log.Error("cannot join the chain's consensus", "err", err)
			return
		}
		d.onDomainChanged()
	}
}

// isMaster reports whether this host may acknowledge writes now: it leads
// the chain's consensus.
func (d *driver) isMaster() bool { return d.core != nil && d.core.IsLeader() }

// master is the master this host follows, or "".
func (d *driver) master() lpeer.ID {
	if d.core != nil {
		return d.raftPeers[d.core.Lead()]
	}
	if time.Since(d.agentView.heard) > masterHeardFor {
		return ""
	}
	return d.agentView.master
}

func (d *driver) masterEpoch() uint64 {
	if d.core != nil {
		return d.core.Term()
	}
	return d.agentView.epoch
}

func (d *driver) hostName(id lpeer.ID) string {
	if id == "" {
		return ""
	}
	if id == d.self {
		return d.cfg.Name
	}
	if r, ok := d.state.HostByID(id); ok {
		return r.Name
	}
	return ""
}

func (d *driver) onStart(ctx context.Context) {
	d.dialPeers(ctx)
}

func (d *driver) onTick(ctx context.Context) {
	now := d.cfg.Now()
	tick := d.tickEvery()
	if d.core != nil {
		d.refreshWitnesses()
		d.core.Tick()
		if due(now, d.lastBeat, d.beatEvery(), tick) {
			d.lastBeat = now
			d.sendHeartbeat(ctx)
		}
	}
	if due(now, d.lastDial, time.Second, tick) {
		d.lastDial = now
		d.dialPeers(ctx)
		d.dialDevices(ctx)
		d.reserveRelays(ctx)
	}
	if due(now, d.lastFlush, 500*time.Millisecond, tick) {
		d.flushOutbox(ctx)
	}
	// Periodic anti-entropy (hosts outside the chain). While gossip is
	// streaming in, a pull would mostly fetch what is already queued here,
	// so it waits for a quiet moment (at most three intervals).
	busy := now.Sub(d.lastGossip) < time.Second
	for _, p := range d.syncTargets() {
		due, every := now.Sub(d.lastSync[p]), cmp.Or(d.syncEvery[p], d.cfg.SyncInterval)
		if due >= every && !busy || due >= 3*every {
			d.syncWith(ctx, p, nil)
		}
	}
	for k, t := range d.dirty {
		if now.Sub(t) >= d.cfg.WatchDebounce {
			delete(d.dirty, k)
			d.checkDataFile(k)
		}
	}
	d.onAuthTick(ctx)
}

// heartbeatEvery is the domain's heartbeat setting (collections.DefaultFailover
// sets 250 ms), or a second while the Domain has no setting.
func (d *driver) heartbeatEvery() time.Duration {
	if ms := d.state.DomainInfo().Settings.HeartbeatMillis; ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return time.Second
}

// beatEvery is how often this server of the chain publishes its heartbeat
// (beatPeriod).
func (d *driver) beatEvery() time.Duration {
	return beatPeriod(d.isMaster(), d.heartbeatEvery())
}

// Heartbeats of the chain's servers, by which hosts outside the chain
// follow the master.
//
// The chain's failover is not timed by them: raft's own messages are (the
// domain's heartbeat and fail-after settings, raftTicks). A host outside
// the chain follows the master whose heartbeat it heard last and drops it
// once it has not heard it for masterHeardFor; a new master beats at once
// (onLeadership). So the master beats every masterBeat, whatever the
// domain's heartbeat setting: a host outside the chain follows a new
// master as soon as its first beat arrives (a beat later if that one is
// lost), and stops following a master that failed within masterHeardFor
// (two beats may be lost before then). At rest that is one signed message
// a second to every host (each verifies it twice: the pubsub signature and
// the envelope), not one per 250 ms.
const (
	masterBeat     = time.Second
	masterHeardFor = 3 * masterBeat
	// slaveBeats: a server of the chain that is not master publishes
	// every slaveBeats of the domain's heartbeat periods (and no more
	// often than the master): that it is alive, for heardFrom. Every
	// server verifies every heartbeat it relays, so with n servers the
	// cost grows as n².
	slaveBeats = 4
)

// beatPeriod is how often a server of the chain publishes its heartbeat:
// every masterBeat on the master, every slaveBeats heartbeat periods (at
// least masterBeat) on the others.
func beatPeriod(master bool, heartbeat time.Duration) time.Duration {
	if master {
		return masterBeat
	}
	return max(masterBeat, slaveBeats*heartbeat)
}

// heartbeat is what each server of the chain publishes: that it is alive
// (agents redial it), and on the master, every masterBeat, that it is
// master, with its term (agents follow it). Servers of the chain do not act on it (raft
// decides), so a replayed one misleads nobody about leadership.
type heartbeat struct {
	From   string `cbor:"2,keyasint"`
	Epoch  uint64 `cbor:"4,keyasint"`
	Master bool   `cbor:"7,keyasint"`
	// Generation is the sender's log generation (chain.Generation.N): a
	// master promoted by force may have a lower term than the one it
	// replaced, and agents order masters by generation first.
	Generation uint64 `cbor:"8,keyasint,omitempty"`
}

func encodeHeartbeat(key *identity.PrivateKey, hb heartbeat) ([]byte, error) {
	payload, err := canon.Marshal(hb)
	if err != nil {
		return nil, err
	}
	env, err := identity.Seal(identity.PurposeHeartbeat, payload, key)
	if err != nil {
		return nil, err
	}
	return env.Marshal()
}

// decodeHeartbeat verifies a signed heartbeat: the signature, by the host
// it says it is from.
func decodeHeartbeat(data []byte) (heartbeat, error) {
	env, err := identity.UnmarshalEnvelope(data)
	if err != nil {
		return heartbeat{}, err
	}
	signers, err := env.Open(identity.PurposeHeartbeat)
	if err != nil {
		return heartbeat{}, err
	}
	var hb heartbeat
	if err := canon.Unmarshal(env.Payload, &hb, 4<<10); err != nil {
		return heartbeat{}, fmt.Errorf("heartbeat: %w", err)
	}
	if len(signers) != 1 || signers[0].ID().String() != hb.From {
		return heartbeat{}, fmt.Errorf("%w: heartbeat from %s signed by another host", identity.ErrWrongSigner, hb.From)
	}
	return hb, nil
}

func (d *driver) sendHeartbeat(ctx context.Context) {
	data, err := encodeHeartbeat(d.cfg.Key, heartbeat{From: d.self.String(), Epoch: d.masterEpoch(), Master: d.isMaster(), Generation: d.gen.N})
	if err != nil {
		d.log.Error("encoding heartbeat", "err", err)
		return
	}
	topic := d.hbTopic
	d.spawn(ctx, func(ctx context.Context, e *edge) task {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := topic.Publish(pctx, data); err != nil && ctx.Err() == nil {
			return func(_ context.Context, d *driver) { d.log.Debug("publishing heartbeat", "err", err) }
		}
		return nil
	})
}

// Redials a heartbeat can bring forward (see heardFrom).
const (
	heardRedials   = 3                      // for the first failed dials after a server was lost
	heardRedialGap = 250 * time.Millisecond // after a failure, before its redial
)

// heardFrom notes a heartbeat from server id (signed by it: the validator
// checked). When this host's dials of id have failed (it was down) and id
// is heard again, through the other servers, id is redialed at once rather
// than when the reconnect backoff runs out (up to several seconds, and
// libp2p's own dial backoff is cleared too): changes waiting for it (an
// agent's outbox, a folder it hosts) move as soon as it is back. This
// happens once per failed dial, for the first few only, so a server that
// is alive but not reachable from here is not dialed again and again.
func (d *driver) heardFrom(id lpeer.ID) {
	tries := d.dialTries[id]
	if tries == 0 || tries > heardRedials || d.dialing[id] || id == d.self {
		return
	}
	failed := d.dialFailedAt[id]
	now := d.cfg.Now()
	if now.Sub(failed) < heardRedialGap || !d.nextDial[id].After(now) {
		return
	}
	if d.host.Network().Connectedness(id) == network.Connected {
		return
	}
	d.log.Debug("server heard again: dialing it now", "peer", id.String(), "tries", tries)
	if sw, ok := d.host.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(id)
	}
	d.nextDial[id] = now
}

// validateHeartbeat runs on pubsub's goroutines: it checks the signature and
// that the sender is a server of the chain, and touches no driver state.
// This server's own heartbeat, which pubsub validates as it publishes it,
// is not opened again (it was sealed here a moment ago, and no
// subscription here takes it).
func (e *edge) validateHeartbeat(_ context.Context, from lpeer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == e.self && m.GetFrom() == e.self {
		return pubsub.ValidationAccept
	}
	if !e.sh.isServer(m.GetFrom()) {
		return pubsub.ValidationIgnore
	}
	hb, err := decodeHeartbeat(m.Data)
	if err != nil || hb.From != m.GetFrom().String() {
		return pubsub.ValidationReject
	}
	m.ValidatorData = hb
	return pubsub.ValidationAccept
}

func (d *driver) onHeartbeat(_ context.Context, m *pubsub.Message) {
	hb, ok := m.ValidatorData.(heartbeat)
	if !ok {
		return
	}
	from, err := lpeer.Decode(hb.From)
	if err != nil {
		return
	}
	d.heardFrom(from)
	if d.core != nil || !hb.Master {
		return
	}
	if hb.Generation < d.agentView.gen || hb.Generation == d.agentView.gen && hb.Epoch < d.agentView.epoch {
		return
	}
	// Agents (and servers outside the chain) only follow the master.
	if from != d.agentView.master {
		d.log.Info("following master", "master", hb.From, "name", d.hostName(from), "epoch", hb.Epoch)
		d.syncSoon() // what the new master sent before this was not taken
	}
	d.agentView.master, d.agentView.epoch, d.agentView.gen, d.agentView.heard = from, hb.Epoch, hb.Generation, d.cfg.Now()
}
