package peer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/collections/datafile"
	"github.com/baton-sync/baton/identity"
)

// Protocols and topics.
const (
	protoPropose = protocol.ID("/baton/propose/1.0.0")
	protoSync    = protocol.ID("/baton/sync/1.0.0")

	maxGossip = 2 << 20 // bytes in one pubsub message
)

func topicName(g collections.Genesis, what string) string {
	h := g.Hash()
	return fmt.Sprintf("/baton/%x/%s", h[:8], what)
}

// shared is what the driver publishes for the network goroutines
// (validators, stream handlers), which must not touch the driver's state.
type shared struct {
	servers atomic.Pointer[map[lpeer.ID]bool] // the current chain
	hosts   atomic.Pointer[map[lpeer.ID]bool] // the Domain's hosts (disclose.go)
	refused atomic.Int64                      // gossip refused by the validator
	// relayAddrs are the relay addresses an agent announces (relay.go).
	relayAddrs relayAddrs
	// applied are the hashes of the last certified updates this host
	// applied from the consensus log, as encoded: gossip of the very same
	// bytes needs no second signature check.
	applied recentSet
}

// recentSet is a bounded set of the most recently added hashes, safe for
// concurrent use.
type recentSet struct {
	mu   sync.Mutex
	set  map[[32]byte]struct{}
	ring [][32]byte
	next int
}

const recentSize = 4096

func (r *recentSet) add(h [32]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set == nil {
		r.set = make(map[[32]byte]struct{}, recentSize)
		r.ring = make([][32]byte, recentSize)
	}
	if _, ok := r.set[h]; ok {
		return
	}
	if old := r.ring[r.next]; old != ([32]byte{}) {
		delete(r.set, old)
	}
	r.ring[r.next] = h
	r.set[h] = struct{}{}
	r.next = (r.next + 1) % recentSize
}

func (r *recentSet) has(h [32]byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[h]
	return ok
}

func (s *shared) isServer(id lpeer.ID) bool {
	m := s.servers.Load()
	return m != nil && (*m)[id]
}

func (s *shared) setServers(ids []lpeer.ID) {
	m := make(map[lpeer.ID]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	s.servers.Store(&m)
}

// Run runs the node until ctx ends: it loads the data files, listens,
// joins the domain's topics, takes part in failover (servers) and
// replicates the collections. It returns after every goroutine it started
// has exited and the data files are flushed.
func (n *Node) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("node: Run called twice")
	}
	defer close(n.stopped)
	cfg := n.cfg
	log := cfg.Logger

	store, err := datafile.Open(filepath.Join(cfg.DataDir, "data"))
	if err != nil {
		return fmt.Errorf("opening data files: %w", err)
	}
	d, err := newDriver(n, store)
	if err != nil {
		return err
	}
	if err := d.initAuth(); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	h, err := n.newHost(d.allow, &d.sh.relayAddrs)
	if err != nil {
		return err
	}
	d.host = h
	if cfg.Role == identity.RoleServer && !cfg.Witness {
		r, err := startRelay(h, d.allow)
		if err != nil {
			h.Close()
			return err
		}
		defer r.Close()
	}
	e := &edge{
		node: d.node, cfg: d.cfg, log: d.log, self: d.self, sh: &d.sh, allow: d.allow,
		auth: d.auth, host: h, done: ctx.Done(), events: d.events,
	}
	d.edge = e
	defer h.Close()

	t, err := e.joinTopics(ctx, d.isDevice())
	if err != nil {
		return err
	}
	d.updTopic, d.hbTopic = t.upd, t.hb
	updSub, hbSub := t.updSub, t.hbSub

	var wg sync.WaitGroup
	d.wg = &wg
	stopServing := e.serve(cfg.Role == identity.RoleServer, cfg.Witness, d.isDevice())
	defer func() {
		cancel()
		stopServing()
		if updSub != nil {
			updSub.Cancel()
		}
		hbSub.Cancel()
		wg.Wait()
		d.shutdown()
	}()

	if updSub != nil {
		wg.Go(func() { d.readTopic(ctx, updSub, (*driver).onGossipUpdate) })
	}
	wg.Go(func() { d.readTopic(ctx, hbSub, (*driver).onHeartbeat) })
	if err := e.watchConnections(ctx, &wg); err != nil {
		return err
	}

	if err := d.startWatcher(ctx, &wg); err != nil {
		log.Warn("data files are not watched", "err", err)
	}
	d.startLAN(ctx, &wg, h)
	if cfg.Witness {
		log.Info("this server is a witness: it votes and keeps the consensus log, hosts no folders and takes no logins")
	} else if err := d.startFolders(ctx, &wg, h); err != nil {
		return err
	}

	log.Info("node started", "id", h.ID().String(), "addrs", fmt.Sprint(h.Addrs()), "role", string(cfg.Role))
	close(n.started)
	return d.loop(ctx)
}

// newHost starts the node's libp2p host, listening on the configured
// addresses behind the connection gater allow and announcing relay's
// addresses after its own. An agent makes and takes relayed connections
// and punches holes (DCUtR), with AutoNAT v2, which the servers serve.
func (n *Node) newHost(allow *allowList, relay *relayAddrs) (host.Host, error) {
	cfg := n.cfg
	listen := append([]string{}, cfg.Listen...)
	for _, a := range cfg.PublicListen {
		if !contains(listen, a) {
			listen = append(listen, a)
		}
	}
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Key.Libp2p()),
		libp2p.ListenAddrStrings(listen...),
		libp2p.ConnectionGater(allow),
		libp2p.AddrsFactory(func(listen []ma.Multiaddr) []ma.Multiaddr {
			return append(n.announce(listen), relay.load()...)
		}),
		libp2p.UserAgent("baton/0.1"),
		libp2p.DisableMetrics(),
	}
	if cfg.Bandwidth != nil {
		opts = append(opts, libp2p.BandwidthReporter(cfg.Bandwidth))
	}
	switch {
	case cfg.Role == identity.RoleAgent:
		opts = append(opts, libp2p.EnableRelay(), libp2p.EnableHolePunching(), libp2p.EnableAutoNATv2())
	case !cfg.Witness:
		opts = append(opts, libp2p.EnableAutoNATv2())
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting libp2p host: %w", err)
	}
	return h, nil
}

// topics are the domain's two gossip topics and this host's
// subscriptions to them.
type topics struct {
	upd, hb       *pubsub.Topic
	updSub, hbSub *pubsub.Subscription // updSub is nil on a device
}

// gossipParams are the gossipsub parameters of a host. Mesh publishing
// (not flood publishing) keeps the master's bytes per update flat as the
// domain grows: it sends to its mesh peers (at most D), which forward.
// Every host's gossipsub heartbeat, which keeps its mesh and emits gossip,
// runs at gossipsub's default of a second, so that a host at rest is not
// woken five times a second for it: a host that connects joins the mesh of
// the hosts it connects to within a second (at the next heartbeat of
// either); what is published before reaches it otherwise (the master's
// heartbeat a second later, committed updates by anti-entropy, a device's
// view by its feed). A device publishes nothing and forwards to no one.
func gossipParams() pubsub.GossipSubParams {
	gs := pubsub.DefaultGossipSubParams()
	gs.HeartbeatInterval = time.Second
	gs.HeartbeatInitialDelay = 20 * time.Millisecond
	gs.D, gs.Dlo, gs.Dhi, gs.Dscore, gs.Dout, gs.Dlazy, gs.GossipFactor = 4, 3, 6, 2, 1, 2, 0.1
	return gs
}

// joinTopics starts gossipsub on e's host and joins the updates and
// heartbeat topics, validated by e; a device does not subscribe to the
// updates.
func (e *edge) joinTopics(ctx context.Context, device bool) (t topics, err error) {
	h, g := e.host, e.cfg.Genesis
	gs := gossipParams()
	updName, hbName := topicName(g, "updates"), topicName(g, "heartbeat")
	// Updates go to the Domain's hosts only: devices get their view
	// (disclose.go).
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithGossipSubParams(gs),
		pubsub.WithMaxMessageSize(maxGossip),
		pubsub.WithPeerFilter(func(p lpeer.ID, topic string) bool {
			return e.allow.allowed(p) && (topic != updName || e.sh.isHost(p))
		}),
		pubsub.WithSubscriptionFilter(hostsOnlyTopic{sh: e.sh, topic: updName}),
		pubsub.WithPeerOutboundQueueSize(1024),
		pubsub.WithValidateQueueSize(1024),
	)
	if err != nil {
		return t, fmt.Errorf("starting gossipsub: %w", err)
	}
	if err := ps.RegisterTopicValidator(updName, e.validateUpdate, pubsub.WithValidatorInline(true)); err != nil {
		return t, fmt.Errorf("registering validator: %w", err)
	}
	if err := ps.RegisterTopicValidator(hbName, e.validateHeartbeat, pubsub.WithValidatorInline(true)); err != nil {
		return t, fmt.Errorf("registering validator: %w", err)
	}
	if t.upd, err = ps.Join(updName); err != nil {
		return t, fmt.Errorf("joining %s: %w", updName, err)
	}
	if t.hb, err = ps.Join(hbName); err != nil {
		return t, fmt.Errorf("joining %s: %w", hbName, err)
	}
	notSelf := pubsub.WithMessageFilter(func(m *pubsub.Message) bool { return m.ReceivedFrom != h.ID() })
	if !device {
		if t.updSub, err = t.upd.Subscribe(pubsub.WithBufferSize(4096), notSelf); err != nil {
			return t, fmt.Errorf("subscribing %s: %w", updName, err)
		}
	}
	if t.hbSub, err = t.hb.Subscribe(pubsub.WithBufferSize(1024), notSelf); err != nil {
		return t, fmt.Errorf("subscribing %s: %w", hbName, err)
	}
	return t, nil
}

// watchConnections tells the loop of each host that connects, on a
// goroutine of wg, until ctx ends.
func (e *edge) watchConnections(ctx context.Context, wg *sync.WaitGroup) error {
	connSub, err := e.host.EventBus().Subscribe(new(connectednessEvent))
	if err != nil {
		return fmt.Errorf("subscribing to connection events: %w", err)
	}
	wg.Go(func() {
		defer connSub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-connSub.Out():
				if !ok {
					return
				}
				c := ev.(connectednessEvent)
				if c.Connectedness == network.Connected {
					id := c.Peer
					e.post(func(ctx context.Context, d *driver) { d.onConnected(ctx, id) })
				}
			}
		}
	})
	return nil
}

// announce is the address factory: the configured public and private
// addresses when given, else what the host listens on.
func (n *Node) announce(listen []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, s := range append(append([]string{}, n.cfg.PrivateAddrs...), n.cfg.PublicAddrs...) {
		if a, err := ma.NewMultiaddr(s); err == nil {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return listen
	}
	return out
}

// task is work for the driver goroutine.
type task func(ctx context.Context, d *driver)

// readTopic hands every message of sub to the driver.
func (d *driver) readTopic(ctx context.Context, sub *pubsub.Subscription, fn func(d *driver, ctx context.Context, m *pubsub.Message)) {
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return
		}
		d.post(func(ctx context.Context, d *driver) { fn(d, ctx, m) })
	}
}

// post hands fn to the driver goroutine, unless the node is stopping
// (edge.post; set once Run has made the edge).
func (d *driver) post(fn task) bool { return d.edge.post(fn) }

// spawn runs work on its own goroutine (network calls the driver must not
// wait for) and posts its result back to the driver.
func (d *driver) spawn(ctx context.Context, work func(ctx context.Context, e *edge) task) {
	d.wg.Add(1)
	e := d.edge
	go func() {
		defer d.wg.Done()
		if res := work(ctx, e); res != nil {
			d.post(res)
		}
	}()
}

// loop is the driver goroutine.
func (d *driver) loop(ctx context.Context) error {
	every := d.tickEvery()
	tick := time.NewTicker(every)
	defer tick.Stop()
	d.onStart(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-d.node.reqs:
			r.fn(ctx, d)
		case fn := <-d.events:
			fn(ctx, d)
		case <-tick.C:
			d.onTick(ctx)
		}
		// Take what else is already waiting before acting on the
		// consensus core, so that one write of the raft log covers
		// every message that arrived meanwhile.
		d.drainEvents(ctx, 256)
		if err := d.processReady(ctx); err != nil {
			d.log.Error("stopping: the consensus log cannot be kept", "err", err)
			return err
		}
		if e := d.tickEvery(); e != every {
			every = e // the host joined or left the chain, or is alone in it or no more
			tick.Reset(every)
		}
	}
}

// coreLessTicks is how many TickIntervals apart a host without a
// consensus core (an agent, a host outside the chain) ticks. Nothing it
// does at a tick needs the consensus engine's resolution: it dials every
// second, runs anti-entropy every few seconds, flushes its outbox every
// half second and checks a changed data file once WatchDebounce passed,
// each at most one tick late; and a folder at rest wakes it a fifth as
// often.
const coreLessTicks = 5

// aloneTicks is how many TickIntervals apart a server ticks while it
// leads a chain of itself alone (chain.Core.Alone): raft's ticks time
// nothing then (no other server to send heartbeats to, no election to
// hold), and what else it does at a tick is done at most a tick late: its
// heartbeat to the hosts outside the chain every masterBeat (a second),
// dials every second, its outbox every half second, a changed data file
// once WatchDebounce passed. Once the chain names another server, the
// next tick (Core.Tick) starts the change of configuration and the server
// ticks at the interval again.
const aloneTicks = 10

// tickMode is what a host's tick is for.
type tickMode int

const (
	tickCoreLess tickMode = iota // no consensus core: an agent, a host outside the chain
	tickCore                     // a server of the chain with others
	tickAlone                    // a server that leads a chain of itself alone
)

// tickEvery is the driver's tick (tickPeriod).
func (d *driver) tickEvery() time.Duration {
	switch {
	case d.core == nil:
		return tickPeriod(d.cfg.TickInterval, tickCoreLess)
	case d.core.Alone():
		return tickPeriod(d.cfg.TickInterval, tickAlone)
	}
	return tickPeriod(d.cfg.TickInterval, tickCore)
}

// tickPeriod is the driver's tick: interval on a server of the chain with
// others (it counts the domain's failover settings in ticks), aloneTicks
// times that on a server alone in the chain, coreLessTicks times that on
// any other host.
func tickPeriod(interval time.Duration, mode tickMode) time.Duration {
	switch mode {
	case tickAlone:
		return aloneTicks * interval
	case tickCoreLess:
		return coreLessTicks * interval
	}
	return interval
}

// due reports whether something done every period, last at last, is due
// at a tick at now: half a tick early counts, so that a period that is a
// whole number of ticks is not stretched by one when a tick comes a little
// early.
func due(now, last time.Time, period, tick time.Duration) bool {
	return now.Sub(last) >= period-tick/2
}

// drainEvents runs up to n tasks that are already queued, without waiting.
func (d *driver) drainEvents(ctx context.Context, n int) {
	for range n {
		select {
		case fn := <-d.events:
			fn(ctx, d)
		default:
			return
		}
	}
}

type connectednessEvent = event.EvtPeerConnectednessChanged
