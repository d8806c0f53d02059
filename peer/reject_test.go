package peer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// rogue is a raw libp2p host driven by a test as an attacker: it speaks the
// domain's protocols directly, bypassing every check a Node would make.
type rogue struct {
	t      *testing.T
	h      host.Host
	topic  *pubsub.Topic
	cancel context.CancelFunc
}

// newRogue starts a host with key's identity that joins the domain's update
// topic. If author is not nil, it publishes as author (whose private key it
// holds): a relay that can sign pubsub messages as someone else.
func newRogue(t *testing.T, c *peertest.Cluster, key, author *identity.PrivateKey) *rogue {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h, err := libp2p.New(libp2p.Identity(key.Libp2p()), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &rogue{t: t, h: h, cancel: cancel}
	t.Cleanup(r.close)
	opts := []pubsub.Option{pubsub.WithFloodPublish(true), pubsub.WithMaxMessageSize(4 << 20)}
	if author != nil {
		if err := h.Peerstore().AddPrivKey(author.ID(), author.Libp2p()); err != nil {
			t.Fatal(err)
		}
		if err := h.Peerstore().AddPubKey(author.ID(), author.Public().Libp2p()); err != nil {
			t.Fatal(err)
		}
		opts = append(opts, pubsub.WithMessageAuthor(author.ID()))
	}
	ps, err := pubsub.NewGossipSub(ctx, h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	gh := c.Genesis.Hash()
	if r.topic, err = ps.Join(fmt.Sprintf("/baton/%x/updates", gh[:8])); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rogue) close() {
	if r.topic != nil {
		_ = r.topic.Close()
	}
	r.cancel()
	_ = r.h.Close()
}

// connect dials the given members and waits until they are subscribers of
// the update topic as the rogue sees it.
func (r *rogue) connect(c *peertest.Cluster, idxs ...int) {
	r.t.Helper()
	for _, i := range idxs {
		m := c.Members[i]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := r.h.Connect(ctx, lpeer.AddrInfo{ID: m.Key.ID(), Addrs: []ma.Multiaddr{ma.StringCast(m.Addr)}})
		cancel()
		if err != nil {
			r.t.Fatalf("rogue connecting to %s: %v", m.Name, err)
		}
	}
	c.WaitFor("the rogue to see the servers on the update topic", 10*time.Second, func() bool {
		have := map[lpeer.ID]bool{}
		for _, p := range r.topic.ListPeers() {
			have[p] = true
		}
		for _, i := range idxs {
			if !have[c.Members[i].Key.ID()] {
				return false
			}
		}
		return true
	})
}

func (r *rogue) publish(data []byte) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.topic.Publish(ctx, data); err != nil {
		r.t.Fatalf("rogue publishing: %v", err)
	}
}

// proposeReply mirrors the propose protocol's CBOR response.
type proposeReply struct {
	Certified []byte `cbor:"1,keyasint,omitempty"`
	Code      string `cbor:"2,keyasint,omitempty"`
	Error     string `cbor:"3,keyasint,omitempty"`
	Master    string `cbor:"4,keyasint,omitempty"`
}

// propose sends su to member i over /baton/propose/1.0.0 and returns the
// reply.
func (r *rogue) propose(c *peertest.Cluster, i int, su collections.SignedUpdate) proposeReply {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := r.h.NewStream(ctx, c.Members[i].Key.ID(), protocol.ID("/baton/propose/1.0.0"))
	if err != nil {
		r.t.Fatalf("opening a proposal stream: %v", err)
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	if err := msgio.NewVarintWriter(s).WriteMsg(su.Marshal()); err != nil {
		r.t.Fatalf("proposing: %v", err)
	}
	_ = s.CloseWrite()
	b, err := msgio.NewVarintReaderSize(s, 32<<20).ReadMsg()
	if err != nil {
		r.t.Fatalf("reading the proposal reply: %v", err)
	}
	var rep proposeReply
	if err := canon.Unmarshal(b, &rep, 32<<20); err != nil {
		r.t.Fatalf("decoding the proposal reply: %v", err)
	}
	return rep
}

// sign signs u as key with the given numbers.
func sign(t *testing.T, key *identity.PrivateKey, u collections.Update, seq, clock uint64) collections.SignedUpdate {
	t.Helper()
	u.Author, u.Seq, u.Clock, u.Issued = key.ID().String(), seq, clock, peertest.Created.UnixNano()
	su, err := collections.SignUpdate(key, u)
	if err != nil {
		t.Fatal(err)
	}
	return su
}

func certify(t *testing.T, master *identity.PrivateKey, su collections.SignedUpdate, epoch, seq uint64) collections.Certified {
	t.Helper()
	c, err := collections.Certify(master, su, epoch, seq)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustPut(t *testing.T, v collections.Value) collections.Update {
	t.Helper()
	u, err := collections.Put(v)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// digests returns member i's collection digests.
func digests(c *peertest.Cluster, i int) map[string]string {
	out := map[string]string{}
	for k, v := range c.Status(i).Collections {
		out[k] = v.Digest
	}
	return out
}

// snapshot returns the digests of the given members.
func snapshot(c *peertest.Cluster, idxs []int) []map[string]string {
	var out []map[string]string
	for _, i := range idxs {
		out = append(out, digests(c, i))
	}
	return out
}

func checkUnchanged(t *testing.T, c *peertest.Cluster, idxs []int, before []map[string]string, what string) {
	t.Helper()
	for j, i := range idxs {
		got := digests(c, i)
		for k, v := range before[j] {
			if got[k] != v {
				t.Errorf("after %s: %s's %s digest changed", what, c.Members[i].Name, k)
			}
		}
	}
}

// counter returns one counter of member i.
func counter(c *peertest.Cluster, i int, f func(peer.Counters) int64) int64 {
	return f(c.Status(i).Counters)
}

// waitCounters waits until counter f of every member in idxs exceeds what
// it was in before (same order).
func waitCounters(c *peertest.Cluster, what string, idxs []int, before []int64, f func(peer.Counters) int64) {
	c.WaitFor(what, 10*time.Second, func() bool {
		for j, i := range idxs {
			if counter(c, i, f) <= before[j] {
				return false
			}
		}
		return true
	})
}

func counters(c *peertest.Cluster, idxs []int, f func(peer.Counters) int64) []int64 {
	var out []int64
	for _, i := range idxs {
		out = append(out, counter(c, i, f))
	}
	return out
}

func refused(x peer.Counters) int64 { return x.GossipRefused }
func held(x peer.Counters) int64    { return x.GossipHeld }

// notApplied counts gossip a host kept out of its state: held (a server of
// the chain, or a duplicate) or refused (an agent: not from its master).
func notApplied(x peer.Counters) int64 { return x.GossipHeld + x.GossipRefused }

// TestForgedGossipChangesNothing publishes forged certified updates on the
// update topic from hosts the Domain admits (agents' keys, so they pass the
// connection gater). What the gossip validator can tell from signatures
// and the chain alone (a certifier or publisher outside the chain, a bad
// author signature) every host refuses. A forgery with valid signatures
// that breaks the write rules is refused by the agent, which applies
// gossip; the servers of the chain hold it unapplied (they apply only
// the consensus log). No digest moves anywhere.
func TestForgedGossipChangesNothing(t *testing.T) {
	c := peertest.NewClusterWith(t, peertest.Options{Servers: 3, Agents: 3, Settings: collections.DefaultFailover(3)})
	servers := []int{0, 1, 2}
	const agent = 5 // a3 runs; a1's and a2's keys are the rogues'
	for _, i := range append(servers, agent) {
		c.Start(i)
	}
	m, epoch := c.WaitMaster(20 * time.Second)
	if m != 0 {
		t.Fatalf("master is %s, want s1", c.Members[m].Name)
	}
	putUser(t, c, 0, "ann", 1)
	c.WaitConverged(10 * time.Second)
	s1, s2, a1, a2 := c.Members[0].Key, c.Members[1].Key, c.Members[3].Key, c.Members[4].Key
	everyone := append(append([]int{}, servers...), agent)
	before := snapshot(c, everyone)

	// 1. Certified by a host outside the chain (the agent itself).
	r1 := newRogue(t, c, a1, nil)
	r1.connect(c, everyone...)
	mallory := sign(t, a1, mustPut(t, collections.User{Name: "mallory", HomeServer: s2.ID().String()}), 1, 1000)
	ref := counters(c, everyone, refused)
	r1.publish(certify(t, a1, mallory, epoch, 1000).Marshal())
	waitCounters(c, "every host to refuse an update certified by an agent", everyone, ref, refused)
	checkUnchanged(t, c, everyone, before, "an update certified by an agent")

	// 2. A master's certification published by a relay, not the master.
	ref = counters(c, everyone, refused)
	report := sign(t, s2, mustPut(t, collections.ReportRecord{ID: "r1", Author: s2.ID().String(), Kind: "usage", Created: peertest.Created.UnixNano()}), 1000, 1000)
	r1.publish(certify(t, s1, report, epoch, 1000).Marshal())
	waitCounters(c, "every host to refuse a master's certification relayed by an agent", everyone, ref, refused)
	checkUnchanged(t, c, everyone, before, "a relayed certification")
	r1.close()

	// 3. Signed as the master (the rogue holds its key) but with the
	// author's signature flipped: receivers check the author too.
	r2 := newRogue(t, c, a2, s1)
	others := []int{1, 2, agent} // the master drops messages claiming to be its own
	r2.connect(c, others...)
	raw := append([]byte{}, report.Marshal()...)
	raw[len(raw)-1] ^= 1 // the envelope ends in the author's signature
	forged, err := collections.UnmarshalSignedUpdate(raw)
	if err != nil {
		t.Fatalf("flipped signature no longer decodes: %v", err)
	}
	if st, err := collections.NewState(c.Genesis); err != nil {
		t.Fatal(err)
	} else if _, err := st.VerifyProposal(forged, s1.ID()); !errors.Is(err, collections.ErrBadSignature) {
		t.Fatalf("the flipped update verifies with %v; want a bad signature", err)
	}
	ref = counters(c, others, refused)
	r2.publish(certify(t, s1, forged, epoch, 1001).Marshal())
	waitCounters(c, "the slaves and the agent to refuse an update whose author signature is flipped", others, ref, refused)
	checkUnchanged(t, c, everyone, before, "a flipped author signature")

	// 4. Signed as the master, but a Domain write authored by a slave:
	// the write rules (Domain records are the certifier's own) refuse it
	// on the agent; the slaves hold it without applying it.
	ref = counters(c, []int{agent}, refused)
	h := counters(c, []int{1, 2}, held)
	dom := sign(t, s2, mustPut(t, collections.User{Name: "eve", HomeServer: s2.ID().String()}), 1000, 1000)
	r2.publish(certify(t, s1, dom, epoch, 1002).Marshal())
	waitCounters(c, "the agent to refuse a Domain write authored by a slave", []int{agent}, ref, refused)
	waitCounters(c, "the slaves to hold, not apply, a Domain write authored by a slave", []int{1, 2}, h, held)
	checkUnchanged(t, c, everyone, before, "forged updates")

	// Nothing of it arrives later either: a real write converges without
	// any of the forged keys.
	putUser(t, c, 0, "bob", 2)
	c.WaitConverged(10 * time.Second)
	for _, i := range everyone {
		st := c.State(i)
		for _, name := range []string{"mallory", "eve"} {
			if _, ok := st.User(name); ok {
				t.Errorf("%s has forged user %s", c.Members[i].Name, name)
			}
		}
		if _, ok := st.ReportByID("r1"); ok {
			t.Errorf("%s has the forged report", c.Members[i].Name)
		}
	}
	for _, i := range everyone {
		if n := c.Status(i).Counters.GossipApplied; c.Members[i].Role == identity.RoleServer && n != 0 {
			t.Errorf("%s applied %d gossiped updates; servers of the chain apply the log only", c.Members[i].Name, n)
		}
	}
}

// TestProposalsBreakingWriteRulesAreRejected submits updates straight to
// the master's propose protocol from an admitted host: an agent writing the
// Domain or a server's folder, and a server writing another server's folder
// or the Domain. Each is rejected with a reason and nothing is applied.
func TestProposalsBreakingWriteRulesAreRejected(t *testing.T) {
	c := peertest.NewClusterWith(t, peertest.Options{Servers: 3, Agents: 1, Settings: collections.DefaultFailover(3)})
	servers := []int{0, 1, 2}
	for _, i := range servers {
		c.Start(i)
	}
	c.WaitMaster(20 * time.Second)
	putUser(t, c, 0, "ann", 1)
	c.WaitConverged(10 * time.Second)
	s2, s3, a1 := c.Members[1].Key, c.Members[2].Key, c.Members[3].Key
	before := snapshot(c, servers)

	r := newRogue(t, c, a1, nil)
	r.connect(c, 0)
	folder := func(id string) collections.Folder {
		return collections.Folder{ID: id, Name: id, Owner: "ann", Server: s2.ID().String(), Members: map[string]collections.Right{"ann": collections.RightOwner}}
	}
	for _, tc := range []struct {
		name string
		su   collections.SignedUpdate
	}{
		{"agent adds a user", sign(t, a1, mustPut(t, collections.User{Name: "mallory", HomeServer: s2.ID().String()}), 1, 100)},
		{"agent adds itself to the chain", sign(t, a1, mustPut(t, collections.Chain{Servers: []string{a1.ID().String()}}), 2, 101)},
		{"agent writes s2's folder", sign(t, a1, mustPut(t, folder("fa")), 1, 102)},
		{"s3 writes s2's folder", sign(t, s3, mustPut(t, folder("fb")), 1, 103)},
		{"s2 adds a user", sign(t, s2, mustPut(t, collections.User{Name: "eve", HomeServer: s2.ID().String()}), 1, 104)},
	} {
		rep := r.propose(c, 0, tc.su)
		if rep.Code != "rejected" || rep.Error == "" || len(rep.Certified) != 0 {
			t.Errorf("%s: reply code %q, error %q, certified %d bytes; want rejected with a reason", tc.name, rep.Code, rep.Error, len(rep.Certified))
		} else {
			t.Logf("%s: rejected: %s", tc.name, rep.Error)
		}
	}
	// The master's state is checked synchronously; the slaves would only
	// change through the master, which published nothing.
	checkUnchanged(t, c, []int{0}, before[:1], "rejected proposals")
	putUser(t, c, 0, "bob", 2)
	c.WaitConverged(10 * time.Second)
	for _, i := range servers {
		st := c.State(i)
		for _, name := range []string{"mallory", "eve"} {
			if _, ok := st.User(name); ok {
				t.Errorf("%s has user %s from a rejected proposal", c.Members[i].Name, name)
			}
		}
		for _, id := range []string{"fa", "fb"} {
			if _, ok := st.Folder(id); ok {
				t.Errorf("%s has folder %s from a rejected proposal", c.Members[i].Name, id)
			}
		}
		if !st.IsServer(s2.ID()) || st.IsServer(a1.ID()) || len(st.Chain().Servers) != 3 {
			t.Errorf("%s's chain changed: %v", c.Members[i].Name, st.Chain().Servers)
		}
	}
}

// TestReplayedUpdateChangesNothing re-publishes an update after a later one
// superseded it, as the master (whose key the rogue holds) and through a
// relay, and proposes it again to the master: digests do not move.
func TestReplayedUpdateChangesNothing(t *testing.T) {
	c := peertest.NewClusterWith(t, peertest.Options{Servers: 3, Agents: 1, Settings: collections.DefaultFailover(3)})
	servers := []int{0, 1, 2}
	for _, i := range servers {
		c.Start(i)
	}
	c.WaitMaster(20 * time.Second)
	old := putUser(t, c, 0, "ann", 1).Certified
	putUser(t, c, 0, "ann", 2)                   // supersedes old
	oldFolder := putFolder(t, c, 2, "f1", "ann") // ann's home is now s3
	c.WaitConverged(10 * time.Second)
	before := snapshot(c, servers)

	// As the master: validated, then held (superseded), not applied.
	r := newRogue(t, c, c.Members[3].Key, c.Members[0].Key)
	r.connect(c, 1, 2)
	slaves := []int{1, 2}
	h := counters(c, slaves, held)
	r.publish(old.Marshal())
	waitCounters(c, "the slaves to hold a replayed Domain update", slaves, h, held)
	checkUnchanged(t, c, servers, before, "a replayed Domain update")

	// A Catalog update replayed as the master: a duplicate.
	h = counters(c, slaves, held)
	r.publish(oldFolder.Marshal())
	waitCounters(c, "the slaves to hold a replayed Catalog update", slaves, h, held)
	checkUnchanged(t, c, servers, before, "a replayed Catalog update")
	r.close()

	// Through a relay: refused before it reaches the state.
	r = newRogue(t, c, c.Members[3].Key, nil)
	r.connect(c, servers...)
	ref := counters(c, servers, refused)
	r.publish(old.Marshal())
	waitCounters(c, "every server to refuse a relayed replay", servers, ref, refused)

	// Proposed again to the master: it may acknowledge (the update is
	// already held) but changes nothing.
	rep := r.propose(c, 0, old.Signed())
	t.Logf("replayed proposal: code %q error %q", rep.Code, rep.Error)
	c.WaitConverged(10 * time.Second)
	checkUnchanged(t, c, servers, before, "replays")
	if u, ok := c.State(0).User("ann"); !ok || u.HomeServer != c.Members[2].Key.ID().String() {
		t.Errorf("ann = %+v, %v after replays; want home s3", u, ok)
	}
}

// TestDeposedMasterCertificationChangesNothing: after failover, the
// deposed master's key (on a fresh host) publishes by gossip its old
// certification of a record a later master overwrote, and a new
// certification of that record at an early log position. Neither changes
// any server (they apply the consensus log only) nor the agent (it applies
// gossip from the master it follows only; and records order by log
// position, so even applied they would not override the newer record).
func TestDeposedMasterCertificationChangesNothing(t *testing.T) {
	c := peertest.NewClusterWith(t, peertest.Options{Servers: 3, Agents: 1, Settings: collections.DefaultFailover(3)})
	const agent = 3
	c.StartAll()
	_, e1 := c.WaitMaster(20 * time.Second)
	old := putUser(t, c, 0, "ann", 0).Certified // ann's home is s1
	c.WaitConverged(10 * time.Second)

	start := time.Now()
	c.Stop(0)
	m, e2 := c.WaitMaster(15 * time.Second)
	if m != 1 || e2 <= e1 {
		t.Fatalf("after s1 stopped: master %s epoch %d; want s2 above %d", c.Members[m].Name, e2, e1)
	}
	t.Logf("failover took %v", time.Since(start))
	newer := putUser(t, c, 1, "ann", 2).Certified // now s3
	c.WaitConverged(10 * time.Second)
	if newer.MasterSeq() <= old.MasterSeq() || newer.Epoch() <= old.Epoch() {
		t.Fatalf("ann rewritten at term %d index %d, after term %d index %d; want a later position", newer.Epoch(), newer.MasterSeq(), old.Epoch(), old.MasterSeq())
	}
	live := []int{1, 2, agent}
	before := snapshot(c, live)

	s1 := c.Members[0].Key
	r := newRogue(t, c, s1, nil)
	r.connect(c, live...)
	// Its old certification, replayed.
	h := counters(c, live, notApplied)
	r.publish(old.Marshal())
	waitCounters(c, "every live host to keep out the deposed master's replayed certification", live, h, notApplied)
	checkUnchanged(t, c, live, before, "a replayed certification of the deposed master")
	// A new update of the same record, certified in its old term at the
	// log position right after its last write there.
	back := sign(t, s1, mustPut(t, collections.User{Name: "ann", HomeServer: s1.ID().String()}), 100, 1000)
	h = counters(c, live, notApplied)
	r.publish(certify(t, s1, back, e1, old.MasterSeq()+1).Marshal())
	waitCounters(c, "every live host to keep out the deposed master's certification at an earlier position", live, h, notApplied)
	checkUnchanged(t, c, live, before, "a certification of the deposed master at an earlier position")
	r.close()

	putUser(t, c, 1, "bob", 2)
	c.WaitConverged(10 * time.Second)
	for _, i := range live {
		u, ok := c.State(i).User("ann")
		if !ok || u.HomeServer != c.Members[2].Key.ID().String() {
			t.Errorf("%s: ann = %+v, %v; want the newer record, home s3", c.Members[i].Name, u, ok)
		}
	}
}

// TestDeposedMasterCannotAddRecords: after failover, the deposed
// master's key (on a fresh host) certifies a record of a new key in its
// old term and publishes it by gossip. No log holds it, so no host may
// apply it: the servers of the chain ignore it, and an agent that applied
// it would differ from every server for good (anti-entropy only adds).
func TestDeposedMasterCannotAddRecords(t *testing.T) {
	c := peertest.NewClusterWith(t, peertest.Options{Servers: 3, Agents: 1, Settings: collections.DefaultFailover(3)})
	const agent = 3
	c.StartAll()
	_, e1 := c.WaitMaster(20 * time.Second)
	last := putUser(t, c, 0, "ann", 0).Certified
	c.WaitConverged(10 * time.Second)
	c.Stop(0)
	if m, e2 := c.WaitMaster(15 * time.Second); m != 1 || e2 <= e1 {
		t.Fatalf("after s1 stopped: master %s epoch %d; want s2 above %d", c.Members[m].Name, e2, e1)
	}
	live := []int{1, 2, agent}
	before := snapshot(c, live)

	s1 := c.Members[0].Key
	r := newRogue(t, c, s1, nil)
	r.connect(c, live...)
	zed := sign(t, s1, mustPut(t, collections.User{Name: "zed", HomeServer: s1.ID().String()}), 100, 1000)
	h, ref := counters(c, []int{1, 2}, held), counters(c, []int{agent}, refused)
	r.publish(certify(t, s1, zed, e1, last.MasterSeq()+1).Marshal())
	waitCounters(c, "the live servers to hold the deposed master's certification", []int{1, 2}, h, held)
	waitCounters(c, "the agent to refuse the deposed master's certification", []int{agent}, ref, refused)
	checkUnchanged(t, c, live, before, "a certification of the deposed master")
	r.close()

	putUser(t, c, 1, "bob", 2)
	c.WaitConverged(10 * time.Second)
	for _, i := range live {
		if _, ok := c.State(i).User("zed"); ok {
			t.Errorf("%s applied the deposed master's certification", c.Members[i].Name)
		}
	}
}

// TestUnknownHostCannotConnect: a host whose key the Domain does not list
// cannot hold a connection to a server nor open a stream, and never shows up
// among its peers.
func TestUnknownHostCannotConnect(t *testing.T) {
	c := peertest.NewCluster(t, 2, collections.FailoverSettings{Majority: false, HeartbeatMillis: 250, FailAfterMillis: 1500})
	c.StartAll()
	c.WaitMaster(20 * time.Second)

	outsider := identitytest.Key("outsider")
	h, err := libp2p.New(libp2p.Identity(outsider.Libp2p()), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	target := c.Members[1]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cerr := h.Connect(ctx, lpeer.AddrInfo{ID: target.Key.ID(), Addrs: []ma.Multiaddr{ma.StringCast(target.Addr)}})
	t.Logf("outsider dial: %v", cerr)
	// With early muxer negotiation the dialer may finish its side of the
	// upgrade before the server's gater closes the connection: then it is
	// closed at once.
	c.WaitFor("the outsider to be disconnected", 5*time.Second, func() bool {
		return h.Network().Connectedness(target.Key.ID()) != network.Connected
	})
	_, serr := h.NewStream(ctx, target.Key.ID(), protocol.ID("/baton/sync/1.0.0"))
	if serr == nil {
		t.Fatalf("outsider opened a stream to %s (dial error %v)", target.Name, cerr)
	}
	for _, i := range c.Running() {
		for _, p := range c.Status(i).Peers {
			if p.ID == outsider.ID().String() {
				t.Errorf("%s lists the outsider among its peers", c.Members[i].Name)
			}
		}
	}
	// Its dial was refused by the server's gater, not merely slow: the
	// servers still talk to each other.
	if ps := c.Status(1).Peers; len(ps) != 1 || !strings.HasPrefix(ps[0].Name, "s") {
		t.Errorf("s2's peers = %+v; want only s1", ps)
	}
}

// putFolder creates folder id owned by owner at member i (its hosting
// server) and returns the certified update.
func putFolder(t *testing.T, c *peertest.Cluster, at int, id, owner string) collections.Certified {
	t.Helper()
	f := collections.Folder{ID: id, Name: id, Owner: owner, Server: c.Members[at].Key.ID().String(), Members: map[string]collections.Right{owner: collections.RightOwner}}
	r, err := c.Submit(at, mustPut(t, f))
	if err != nil || r.Queued {
		t.Fatalf("creating folder %s at %s: %v (queued %v)", id, c.Members[at].Name, err, r.Queued)
	}
	return r.Certified
}
