package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
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
	"github.com/baton-sync/baton/peer/role"
)

// driver owns the node's state: the collections, the role machine, the
// outbox and the data files. Only its goroutine (driver.loop) touches them;
// network goroutines hand it tasks (post) and it hands them network work
// (spawn).
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
	epochs  epochFile
	outbox  *outbox

	machine   *role.Machine // nil unless this host is a server in the chain
	chain     []lpeer.ID
	roleState role.State
	highest   uint64 // highest epoch seen (also machine's, for agents from heartbeats)
	agentView struct {
		master lpeer.ID
		epoch  uint64
		heard  time.Time
	}
	masterSeq  uint64 // at the master: last sequence number used this epoch
	gap        gapTracker
	lastGossip time.Time // when the last certified update arrived by gossip

	allow    *allowList
	sh       shared
	host     host.Host
	updTopic *pubsub.Topic
	hbTopic  *pubsub.Topic

	events chan task
	done   <-chan struct{}
	wg     *sync.WaitGroup

	waiters   map[[32]byte][]chan submitResult
	inflight  map[[32]byte]bool
	syncing   map[lpeer.ID]bool
	lastSync  map[lpeer.ID]time.Time
	dialing   map[lpeer.ID]bool
	dialTries map[lpeer.ID]int
	nextDial  map[lpeer.ID]time.Time
	// dialFailedAt: when the last dial of each server failed.
	dialFailedAt map[lpeer.ID]time.Time
	catchUp      struct {
		inflight bool
		from     lpeer.ID // the server the pull in flight is from
	}
	lastFlush  time.Time
	lastDial   time.Time
	lastUpdate map[collections.Kind]time.Time
	quarantine []QuarantineEvent
	auth       *authState // users and devices (auth.go); set by Run
	counters   Counters   // GossipRefused also counts d.sh.refused
	backoff    backoff
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
		epochs:       epochFile{path: filepath.Join(cfg.DataDir, "epoch")},
		allow:        newAllowList(),
		events:       make(chan task, 1024),
		waiters:      map[[32]byte][]chan submitResult{},
		inflight:     map[[32]byte]bool{},
		syncing:      map[lpeer.ID]bool{},
		lastSync:     map[lpeer.ID]time.Time{},
		dialing:      map[lpeer.ID]bool{},
		dialTries:    map[lpeer.ID]int{},
		nextDial:     map[lpeer.ID]time.Time{},
		dialFailedAt: map[lpeer.ID]time.Time{},
		lastUpdate:   map[collections.Kind]time.Time{},
		backoff:      backoff{base: 250 * time.Millisecond, max: 5 * time.Second, rnd: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))},
	}
	if b := n.hooks.backoff; b.max > 0 {
		d.backoff = b
	}
	for _, k := range collections.Kinds {
		if err := d.loadData(k); err != nil {
			return nil, err
		}
	}
	if d.highest, err = d.epochs.load(); err != nil {
		return nil, err
	}
	if me := d.state.MaxEpoch(); me > d.highest {
		d.highest = me
	}
	var bad []string
	if d.outbox, bad, err = openOutbox(filepath.Join(cfg.DataDir, "outbox")); err != nil {
		return nil, err
	}
	for _, b := range bad {
		d.log.Warn("outbox entry does not decode; moved aside", "entry", b)
	}
	d.onDomainChanged()
	return d, nil
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
// longer homed here, and the role machine.
func (d *driver) onDomainChanged() {
	chain := d.state.Chain().IDs()
	d.sh.setServers(chain)
	d.refreshAllow()
	d.prunePasswords()
	if equalIDs(chain, d.chain) {
		return
	}
	wasMaster := d.roleState.Role == role.Master
	d.chain = chain
	d.machine = nil
	if d.cfg.Role != identity.RoleServer || !d.state.IsServer(d.self) {
		if wasMaster {
			d.setRoleState(role.State{})
		}
		return
	}
	strs := make([]string, len(chain))
	for i, id := range chain {
		strs[i] = id.String()
	}
	rc := role.DefaultConfig(d.self.String(), strs)
	set := d.state.DomainInfo().Settings
	rc.Majority = set.Majority
	tick := int(d.cfg.TickInterval / time.Millisecond)
	if tick > 0 && set.HeartbeatMillis > 0 && set.FailAfterMillis > 0 {
		rc.HeartbeatTicks = max(1, set.HeartbeatMillis/tick)
		rc.FailAfterTicks = max(rc.HeartbeatTicks*2+1, set.FailAfterMillis/tick)
		rc.StartupGraceTicks = rc.FailAfterTicks + rc.FailAfterTicks/2
	}
	m, err := role.New(rc, role.Persisted{Epoch: d.highest})
	if err != nil {
		d.log.Error("cannot run the failover role machine", "err", err)
		return
	}
	if wasMaster {
		// The chain changed under a live master: it holds everything, so
		// it is caught up, and the machine re-elects it at a new epoch.
		m.CaughtUp(d.highest)
		d.setRoleState(role.State{})
	}
	d.machine = m
}

func equalIDs(a, b []lpeer.ID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// isMaster reports whether this host may acknowledge writes now.
func (d *driver) isMaster() bool { return d.roleState.AcceptWrites() }

// master is the master this host follows, or "".
func (d *driver) master() lpeer.ID {
	if d.machine != nil {
		id, _ := lpeer.Decode(d.roleState.Master)
		return id
	}
	if time.Since(d.agentView.heard) > 3*time.Second {
		return ""
	}
	return d.agentView.master
}

func (d *driver) masterEpoch() uint64 {
	if d.machine != nil {
		return d.roleState.Epoch
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

func (d *driver) raiseHighest(e uint64) {
	if e > d.highest {
		d.highest = e
	}
	d.sh.highest.Store(d.highest)
}

// --- the role machine ---

func (d *driver) onStart(ctx context.Context) {
	d.sh.highest.Store(d.highest)
	d.dialPeers(ctx)
}

// gapWait is how long a hole in the master's sequence may last before a
// pull: gossip reorders, and most holes fill within milliseconds.
const gapWait = 500 * time.Millisecond

func (d *driver) onTick(ctx context.Context) {
	now := d.cfg.Now()
	if d.machine != nil {
		d.machine.Tick()
	}
	if now.Sub(d.lastDial) >= time.Second {
		d.lastDial = now
		d.dialPeers(ctx)
	}
	if now.Sub(d.lastFlush) >= 500*time.Millisecond {
		d.flushOutbox(ctx)
	}
	if m := d.master(); m != "" && m != d.self && d.gap.due(now, gapWait) {
		epoch, upTo := d.gap.epoch, d.gap.max
		d.syncWith(ctx, m, func(_ context.Context, ok bool) {
			if ok {
				d.gap.filled(epoch, upTo)
			}
		})
	}
	// Periodic anti-entropy. While gossip is streaming in without holes,
	// a pull would mostly fetch what is already queued here, so it waits
	// for a quiet moment (at most three intervals).
	busy := now.Sub(d.lastGossip) < time.Second && d.gap.since.IsZero()
	for _, p := range d.syncTargets() {
		due := now.Sub(d.lastSync[p])
		if due >= d.cfg.SyncInterval && !busy || due >= 3*d.cfg.SyncInterval {
			d.syncWith(ctx, p, nil)
		}
	}
	for k, t := range d.dirty {
		if now.Sub(t) >= d.cfg.WatchDebounce {
			delete(d.dirty, k)
			d.checkDataFile(k)
		}
	}
	if d.roleState.CatchUpFrom != "" && !d.catchUp.inflight {
		d.startCatchUp(ctx)
	}
	d.onAuthTick(ctx)
}

func (d *driver) processReady(ctx context.Context) {
	if d.machine == nil || !d.machine.HasReady() {
		return
	}
	rd := d.machine.Ready()
	if rd.PersistEpoch != 0 {
		if err := d.epochs.save(rd.PersistEpoch); err != nil {
			// Nothing in this Ready may be acted on before the epoch is
			// durable; try again at the next event.
			d.log.Error("cannot persist epoch; not acting on the role change", "err", err)
			return
		}
		d.raiseHighest(rd.PersistEpoch)
	}
	for _, m := range rd.Messages {
		d.sendRoleMessage(ctx, m)
	}
	if rd.StateChanged {
		d.setRoleState(rd.State)
	}
	d.machine.Advance(rd)
	if rd.StateChanged {
		if d.roleState.CatchUpFrom != "" {
			d.startCatchUp(ctx)
		}
		if d.master() != "" {
			d.flushOutbox(ctx)
		}
	}
}

func (d *driver) setRoleState(s role.State) {
	old := d.roleState
	d.roleState = s
	d.raiseHighest(s.Epoch)
	switch {
	case s.Role == role.Master && (old.Role != role.Master || old.Epoch != s.Epoch):
		d.masterSeq = 0
		d.log.Info("promoted to master", "epoch", s.Epoch)
		// The master's data files are the master copies: rewrite them
		// from the verified state.
		for _, k := range collections.Kinds {
			if err := d.rewrite(k); err != nil {
				d.log.Error("rewriting master copies", "err", err)
			}
		}
	case old.Role == role.Master && s.Role != role.Master:
		d.log.Info("stepped down from master", "epoch", old.Epoch, "new_master", s.Master, "new_epoch", s.Epoch)
	case s.Master != old.Master && s.Master != "":
		d.log.Info("following master", "master", s.Master, "name", d.hostName(lpeer.ID(s.Master)), "epoch", s.Epoch)
	case s.Master == "" && old.Master != "":
		d.log.Warn("no master reachable", "last_master", old.Master)
	}
	if s.CatchUpFrom != "" && s.CatchUpFrom != old.CatchUpFrom && s.Master == "" {
		d.log.Info("no master: catching up from a caught-up server", "from", s.CatchUpFrom, "name", d.hostName(lpeer.ID(s.CatchUpFrom)), "epoch", s.CatchUpEpoch)
	}
	if s.CatchUpFrom != old.CatchUpFrom || s.CatchUpEpoch != old.CatchUpEpoch {
		// A pull from the old source may hang (it failed): do not wait
		// for it.
		d.catchUp.inflight = false
	}
}

// heartbeat is a role message on the wire: role.Message, signed by its sender.
type heartbeat struct {
	Type        uint8  `cbor:"1,keyasint"`
	From        string `cbor:"2,keyasint"`
	To          string `cbor:"3,keyasint,omitempty"`
	Epoch       uint64 `cbor:"4,keyasint"`
	Master      string `cbor:"5,keyasint,omitempty"`
	MasterEpoch uint64 `cbor:"6,keyasint"`
	IsMaster    bool   `cbor:"7,keyasint"`
	CaughtUp    uint64 `cbor:"8,keyasint"`
}

func encodeRoleMessage(key *identity.PrivateKey, m role.Message) ([]byte, error) {
	payload, err := canon.Marshal(heartbeat{
		Type: uint8(m.Type), From: m.From, To: m.To, Epoch: m.Epoch, Master: m.Master,
		MasterEpoch: m.MasterEpoch, IsMaster: m.IsMaster, CaughtUp: m.CaughtUp,
	})
	if err != nil {
		return nil, err
	}
	env, err := identity.Seal(identity.PurposeHeartbeat, payload, key)
	if err != nil {
		return nil, err
	}
	return env.Marshal()
}

// decodeRoleMessage verifies a signed role message: the signature, by the
// host the message says it is from.
func decodeRoleMessage(data []byte) (role.Message, error) {
	env, err := identity.UnmarshalEnvelope(data)
	if err != nil {
		return role.Message{}, err
	}
	signers, err := env.Open(identity.PurposeHeartbeat)
	if err != nil {
		return role.Message{}, err
	}
	var hb heartbeat
	if err := canon.Unmarshal(env.Payload, &hb, 4<<10); err != nil {
		return role.Message{}, fmt.Errorf("heartbeat: %w", err)
	}
	if len(signers) != 1 || signers[0].ID().String() != hb.From {
		return role.Message{}, fmt.Errorf("%w: heartbeat from %s signed by another host", identity.ErrWrongSigner, hb.From)
	}
	return role.Message{
		Type: role.MessageType(hb.Type), From: hb.From, To: hb.To, Epoch: hb.Epoch, Master: hb.Master,
		MasterEpoch: hb.MasterEpoch, IsMaster: hb.IsMaster, CaughtUp: hb.CaughtUp,
	}, nil
}

func (d *driver) sendRoleMessage(ctx context.Context, m role.Message) {
	data, err := encodeRoleMessage(d.cfg.Key, m)
	if err != nil {
		d.log.Error("encoding role message", "err", err)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := d.hbTopic.Publish(pctx, data); err != nil && ctx.Err() == nil {
		d.log.Debug("publishing role message", "err", err)
	}
}

// Redials a role message can bring forward (see heardFrom).
const (
	heardRedials   = 3                      // for the first failed dials after a server was lost
	heardRedialGap = 250 * time.Millisecond // after a failure, before its redial
)

// heardFrom notes a role message from server id (signed by it: the
// validator checked). When this host's dials of id have failed (it was
// down) and id is heard again, through the other servers, id is redialed
// at once rather than when the reconnect backoff runs out (up to several
// seconds, and libp2p's own dial backoff is cleared too): changes waiting
// for it (an agent's outbox, a folder it hosts) move as soon as it is
// back. This happens once per failed dial, for the first few only, so a
// server that is alive but not reachable from here is not dialed again
// and again.
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
func (d *driver) validateHeartbeat(_ context.Context, _ lpeer.ID, m *pubsub.Message) pubsub.ValidationResult {
	msg, err := decodeRoleMessage(m.Data)
	if err != nil || msg.From != m.GetFrom().String() {
		return pubsub.ValidationReject
	}
	if !d.sh.isServer(m.GetFrom()) {
		return pubsub.ValidationIgnore
	}
	m.ValidatorData = msg
	return pubsub.ValidationAccept
}

func (d *driver) onHeartbeat(_ context.Context, m *pubsub.Message) {
	msg, ok := m.ValidatorData.(role.Message)
	if !ok {
		return
	}
	if from, err := lpeer.Decode(msg.From); err == nil {
		d.heardFrom(from)
	}
	if msg.To != "" && msg.To != d.self.String() {
		return
	}
	if d.machine != nil {
		if err := d.machine.Step(msg); err != nil {
			d.log.Debug("role message refused", "from", msg.From, "err", err)
		}
		return
	}
	// Agents (and servers outside the chain) only follow the master.
	if msg.Type == role.MsgHeartbeat && msg.IsMaster && msg.Epoch >= d.agentView.epoch {
		from, err := lpeer.Decode(msg.From)
		if err != nil {
			return
		}
		if from != d.agentView.master {
			d.log.Info("following master", "master", msg.From, "name", d.hostName(from), "epoch", msg.Epoch)
		}
		d.agentView.master, d.agentView.epoch, d.agentView.heard = from, msg.Epoch, d.cfg.Now()
		d.raiseHighest(msg.Epoch)
	}
}
