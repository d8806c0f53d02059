package peer

import (
	"context"
	"fmt"
	"strings"
	"time"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/peer/wire"
)

// Least disclosure. The hosts of the Domain (servers, and member hosts the
// admin provisioned) receive every record: the updates topic and the
// anti-entropy protocol (protoSync) serve them only. A user's device (an
// agent logged in with a device certificate) receives what
// collections.State.ViewFor shows its user, and nothing else:
//
//   - it does not subscribe to the updates topic, and servers drop the
//     subscription of any peer that is not a Domain host (a pubsub
//     subscription filter), so gossip never reaches it;
//   - it pulls its view from the servers with protoView, proving which
//     Catalog records it holds (collections.State.Held) so that it learns
//     of a folder it was removed from;
//   - the master pushes each committed update a device's view shows (or
//     that removes its user from a folder) to that device with protoFeed,
//     in order, one batch at a time; what a push misses, the next pull
//     brings.
//
// A device verifies every record as before: the master's certification
// and the author's signature, the write rules (a folder arrives after its
// owner's user record), and live pushes only from the master it follows.
//
// /baton/view/1.0.0 — request viewRequest {1: the requester's
// collections.Summary, 2: certified records it holds}, response
// syncResponse (one page; More asks for another request).
// /baton/feed/1.0.0 — feedMessage {1: certified updates, in apply order},
// answered by an empty frame once the device queued them.
const (
	protoView = protocol.ID("/baton/view/1.0.0")
	protoFeed = protocol.ID("/baton/feed/1.0.0")

	// maxFeedPending caps the updates waiting for one device; beyond it
	// they are dropped and the device's next pull brings them.
	maxFeedPending = 4096
)

type viewRequest struct {
	Summary []byte   `cbor:"1,keyasint"`
	Held    [][]byte `cbor:"2,keyasint,omitempty"`
}

type feedMessage struct {
	Updates [][]byte `cbor:"1,keyasint"`
}

// discloseState is the master's bookkeeping of the device feeds, owned by
// the driver goroutine.
type discloseState struct {
	// members is, per folder key, the members of the folder record last
	// fed, so that a member removed by an update is sent that update. It
	// is rebuilt from the state whenever the master's term changed.
	members map[string]map[string]bool
	term    uint64
	feeds   map[lpeer.ID]*deviceFeed
}

// deviceFeed is what waits to be pushed to one device.
type deviceFeed struct {
	sending bool
	pending [][]byte
}

// isDevice reports whether this node is a user's device: an agent with a
// device certificate. A device gets its view, not the collections.
func (d *driver) isDevice() bool {
	return d.cfg.Role == identity.RoleAgent && len(d.cfg.DeviceCert) > 0
}

func (s *shared) isHost(id lpeer.ID) bool {
	m := s.hosts.Load()
	return m != nil && (*m)[id]
}

func (s *shared) setHosts(hosts []identity.HostRecord) {
	m := make(map[lpeer.ID]bool, len(hosts))
	for _, h := range hosts {
		m[h.ID()] = true
	}
	s.hosts.Store(&m)
}

// hostsOnlyTopic is a pubsub subscription filter: on topic, only the
// Domain's hosts' subscriptions count; a device's is dropped, so nothing
// published there is sent to it.
type hostsOnlyTopic struct {
	sh    *shared
	topic string
}

func (f hostsOnlyTopic) CanSubscribe(string) bool { return true }

func (f hostsOnlyTopic) FilterIncomingSubscriptions(p lpeer.ID, subs []*pb.RPC_SubOpts) ([]*pb.RPC_SubOpts, error) {
	if f.sh.isHost(p) {
		return subs, nil
	}
	out := make([]*pb.RPC_SubOpts, 0, len(subs))
	for _, s := range subs {
		if s.GetTopicid() != f.topic {
			out = append(out, s)
		}
	}
	return out, nil
}

// --- the server side ---

// pageOf is the first page of cs, at most syncPageBytes (at least one
// update).
func pageOf(cs []collections.Certified) syncResponse {
	var resp syncResponse
	size := 0
	for _, c := range cs {
		m := c.Marshal()
		if size+len(m) > syncPageBytes && len(resp.Updates) > 0 {
			resp.More = true
			break
		}
		resp.Updates = append(resp.Updates, m)
		size += len(m)
	}
	return resp
}

// handleView serves a device its view.
func (e *edge) handleView(s network.Stream) {
	if e.refuseGuest(s) {
		return
	}
	remote := s.Conn().RemotePeer()
	wire.ServeMsg(s, time.Now().Add(ioTimeout), maxRequest, func(b []byte) (syncResponse, error) {
		var req viewRequest
		if err := canon.Unmarshal(b, &req, maxRequest); err != nil {
			return syncResponse{}, err
		}
		theirs, err := collections.UnmarshalSummary(req.Summary)
		if err != nil {
			return syncResponse{}, err
		}
		var held []collections.Certified
		for _, h := range req.Held {
			if len(held) == collections.MaxHeld {
				break
			}
			if c, err := collections.UnmarshalCertified(h); err == nil {
				held = append(held, c)
			}
		}
		ctx, cancel := e.handlerContext(ioTimeout)
		defer cancel()
		return query(ctx, e.node, func(d *driver) syncResponse {
			user, ok := d.state.ValidDevice(remote, d.cfg.Now())
			if !ok {
				d.log.Debug("view asked by a host that is not a valid device", "peer", remote.String())
				return syncResponse{}
			}
			resp := pageOf(d.state.ViewFor(user, held).Missing(theirs))
			d.counters.SyncServed += int64(len(resp.Updates))
			return resp
		})
	})
}

// feedDevices queues c, just committed and applied here, for the
// connected devices whose view shows it (the master's duty).
func (d *driver) feedDevices(ctx context.Context, c collections.Certified) {
	if d.host == nil {
		return
	}
	was := d.folderMembersBefore(c)
	views := map[string]collections.View{}
	now := d.cfg.Now()
	for _, p := range d.host.Network().Peers() {
		user, ok := d.state.ValidDevice(p, now)
		if !ok || d.sh.isHost(p) {
			continue
		}
		v, ok := views[user]
		if !ok {
			v = d.state.ViewFor(user, nil)
			views[user] = v
		}
		if cs := v.Feed(c, was); len(cs) > 0 {
			d.queueFeed(ctx, p, cs)
		}
	}
}

// folderMembersBefore is, if c is a folder record, the members of the
// record it replaced as last fed (none known for a folder not fed in this
// term), and remembers c's.
func (d *driver) folderMembersBefore(c collections.Certified) map[string]bool {
	u := c.Update()
	if u.Collection != collections.Catalog || !strings.HasPrefix(u.Key, collections.FolderPrefix) {
		return nil
	}
	ds := &d.disclose
	if ds.members == nil || ds.term != d.masterEpoch() {
		ds.members, ds.term = map[string]map[string]bool{}, d.masterEpoch()
		for _, f := range d.state.Folders() {
			ds.members[f.Key()] = membersOf(f)
		}
	}
	was := ds.members[u.Key]
	if f, ok := d.state.Folder(strings.TrimPrefix(u.Key, collections.FolderPrefix)); ok {
		ds.members[u.Key] = membersOf(f)
	} else {
		delete(ds.members, u.Key)
	}
	return was
}

func membersOf(f collections.Folder) map[string]bool {
	m := make(map[string]bool, len(f.Members))
	for u := range f.Members {
		m[u] = true
	}
	return m
}

// queueFeed adds cs to what waits for device p and sends it unless a
// batch is on its way.
func (d *driver) queueFeed(ctx context.Context, p lpeer.ID, cs []collections.Certified) {
	ds := &d.disclose
	if ds.feeds == nil {
		ds.feeds = map[lpeer.ID]*deviceFeed{}
	}
	f := ds.feeds[p]
	if f == nil {
		f = &deviceFeed{}
		ds.feeds[p] = f
	}
	if len(f.pending)+len(cs) > maxFeedPending {
		d.log.Debug("device feed full: dropping what waits; the device's next pull brings it", "device", p.String(), "updates", len(f.pending))
		f.pending = nil
		return
	}
	for _, c := range cs {
		f.pending = append(f.pending, c.Marshal())
	}
	if !f.sending {
		d.sendFeed(ctx, p, f)
	}
}

// sendFeed pushes what waits for p, then the next batch, until none waits.
func (d *driver) sendFeed(ctx context.Context, p lpeer.ID, f *deviceFeed) {
	batch := f.pending
	f.pending, f.sending = nil, true
	d.spawn(ctx, func(ctx context.Context, e *edge) task {
		err := e.pushFeed(ctx, p, batch)
		return func(ctx context.Context, d *driver) {
			f.sending = false
			if err != nil {
				d.log.Debug("feeding a device failed; its next pull brings the updates", "device", p.String(), "err", err)
				delete(d.disclose.feeds, p)
				return
			}
			if len(f.pending) > 0 {
				d.sendFeed(ctx, p, f)
				return
			}
			delete(d.disclose.feeds, p)
		}
	})
}

func (e *edge) pushFeed(ctx context.Context, p lpeer.ID, batch [][]byte) error {
	b, err := canon.Marshal(feedMessage{Updates: batch})
	if err != nil {
		return err
	}
	if _, err := roundTrip(ctx, e.host, lpeer.AddrInfo{ID: p}, protoFeed, b, 16); err != nil {
		return fmt.Errorf("feeding %s: %w", p, err)
	}
	return nil
}

// --- the device side ---

// handleFeed takes a batch of updates the master pushed.
func (e *edge) handleFeed(s network.Stream) {
	remote := s.Conn().RemotePeer()
	if !e.sh.isServer(remote) {
		_ = s.Reset()
		return
	}
	wire.Serve(s, time.Now().Add(ioTimeout), maxResponse, func(b []byte) ([]byte, error) {
		var msg feedMessage
		if err := canon.Unmarshal(b, &msg, maxResponse); err != nil {
			return nil, err
		}
		var cs []collections.Certified
		for _, u := range msg.Updates {
			c, err := collections.UnmarshalCertified(u)
			if err != nil {
				return nil, err
			}
			cs = append(cs, c)
		}
		if !e.post(func(_ context.Context, d *driver) { d.onFeed(remote, cs) }) {
			return nil, ErrStopped
		}
		return []byte{1}, nil
	})
}

// onFeed applies what the master pushed, as gossip was: only from the
// master this device follows, each update verified.
func (d *driver) onFeed(from lpeer.ID, cs []collections.Certified) {
	if from != d.agentView.master || d.agentView.master == "" {
		d.counters.GossipRefused += int64(len(cs))
		d.syncSoon() // the next pulls bring them, if they are the master's
		return
	}
	d.lastGossip = d.cfg.Now()
	for _, c := range cs {
		v, _ := d.applyCertified(c, collections.VerifyOptions{}, "feed")
		d.counters.countGossip(v.Outcome)
	}
}

// pullRequest is what this host sends to pull from a server: a device
// asks for its view with protoView, any other host for the collections
// with protoSync.
func (d *driver) pullRequest(sum []byte) (protocol.ID, []byte, error) {
	if !d.isDevice() {
		return protoSync, sum, nil
	}
	req := viewRequest{Summary: sum}
	if d.auth != nil && d.auth.certInfo.User != "" {
		for _, c := range d.state.Held(d.auth.certInfo.User) {
			req.Held = append(req.Held, c.Marshal())
		}
	}
	b, err := canon.Marshal(req)
	if err != nil {
		return "", nil, fmt.Errorf("encoding view request: %w", err)
	}
	return protoView, b, nil
}
