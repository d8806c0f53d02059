package peer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/baton-sync/baton/peer/chain"
	"github.com/baton-sync/baton/peer/wire"
)

// Raft messages travel between the servers of the chain only, on one
// long-lived stream per direction and peer: libp2p authenticates each end
// by its host key, and the receiver checks that the message's raft sender
// is the peer at the other end. Each message is preceded by the
// generation of its sender's log (chain.Generation, 24 bytes): a server of
// an older generation than a forced promotion made is told so by the first
// message it receives.
const (
	protoRaft = protocol.ID("/baton/raft/2.0.0")
	// maxRaftMessage caps one raft message (a snapshot is one message).
	maxRaftMessage = 256 << 20
	// raftQueue is how many messages wait for one peer before more are
	// dropped (raft sends them again).
	raftQueue = 4096
)

// raftSender sends raft messages to one server, in order, on its own
// goroutine. The driver never waits for it.
type raftSender struct {
	to    lpeer.ID
	queue chan raftOut
}

// raftOut is a message to send and the generation of the log that sent it.
type raftOut struct {
	m   *raftpb.Message
	gen []byte
}

// sendRaft hands rd's messages to their peers' senders, starting senders
// as needed. A message that cannot be queued is reported unreachable.
func (d *driver) sendRaft(ctx context.Context, msgs []*raftpb.Message) {
	if len(msgs) == 0 {
		return
	}
	gen := d.gen.Marshal()
	for _, m := range msgs {
		to, ok := d.raftPeers[m.GetTo()]
		if !ok {
			continue // not a server of the chain (removed): raft gives up on it
		}
		s := d.senders[to]
		if s == nil {
			s = &raftSender{to: to, queue: make(chan raftOut, raftQueue)}
			d.senders[to] = s
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				d.edge.runSender(ctx, s)
			}()
		}
		select {
		case s.queue <- raftOut{m: m, gen: gen}:
		default:
			d.reportRaftFailure(m)
		}
	}
}

func (d *driver) reportRaftFailure(m *raftpb.Message) {
	if d.core == nil {
		return
	}
	d.core.ReportUnreachable(m.GetTo())
	if m.GetType() == raftpb.MsgSnap {
		d.core.ReportSnapshot(m.GetTo(), false)
	}
}

// runSender writes queued messages to s.to until ctx ends. A failed write
// drops the stream (the next message opens another) and is reported to
// raft, which retries.
func (e *edge) runSender(ctx context.Context, s *raftSender) {
	var stream network.Stream
	defer func() {
		if stream != nil {
			_ = stream.Close()
		}
	}()
	fail := func(m *raftpb.Message, err error) {
		if stream != nil {
			_ = stream.Reset()
			stream = nil
		}
		e.post(func(_ context.Context, d *driver) {
			d.log.Debug("raft message not sent", "to", s.to.String(), "type", m.GetType().String(), "err", err)
			d.reportRaftFailure(m)
		})
	}
	for {
		var out raftOut
		select {
		case <-ctx.Done():
			return
		case out = <-s.queue:
		}
		m := out.m
		b, err := proto.MarshalOptions{}.MarshalAppend(out.gen, m)
		if err != nil {
			fail(m, err)
			continue
		}
		if stream == nil {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := e.host.NewStream(network.WithAllowLimitedConn(sctx, "raft"), s.to, protoRaft)
			cancel()
			if err != nil {
				fail(m, fmt.Errorf("opening raft stream: %w", err))
				continue
			}
			stream = st
		}
		// A peer that stops reading (paused, cut off) must not hold this
		// sender for ever: each write has a deadline.
		_ = stream.SetWriteDeadline(time.Now().Add(writeDeadline(m)))
		if err := wire.WriteFrame(stream, b); err != nil {
			fail(m, err)
			continue
		}
		if m.GetType() == raftpb.MsgSnap {
			to := m.GetTo()
			e.post(func(_ context.Context, d *driver) {
				if d.core != nil {
					d.core.ReportSnapshot(to, true)
				}
			})
		}
	}
}

func writeDeadline(m *raftpb.Message) time.Duration {
	if m.GetType() == raftpb.MsgSnap {
		return time.Minute
	}
	return 2 * time.Second
}

// handleRaft reads raft messages from a server of the chain and hands them
// to the driver.
func (e *edge) handleRaft(s network.Stream) {
	from := s.Conn().RemotePeer()
	if !e.sh.isServer(from) {
		_ = s.Reset()
		return
	}
	defer s.Close()
	want := chain.RaftID(from)
	r := bufio.NewReader(s)
	for {
		b, err := wire.ReadFrame(r, maxRaftMessage)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				_ = s.Reset()
			}
			return
		}
		m := new(raftpb.Message)
		var gen chain.Generation
		if len(b) < generationBytes {
			err = fmt.Errorf("raft message of %d bytes, shorter than its header", len(b))
		} else if gen, err = chain.UnmarshalGeneration(b[:generationBytes]); err == nil {
			err = proto.Unmarshal(b[generationBytes:], m)
		}
		if err != nil || m.GetFrom() != want {
			e.log.Warn("refused raft message", "from", from.String(), "err", err, "claimed", m.GetFrom())
			_ = s.Reset()
			return
		}
		if !e.post(func(ctx context.Context, d *driver) { d.stepRaft(ctx, from, gen, m) }) {
			_ = s.Reset()
			return
		}
	}
}

// generationBytes is the length of a raft message's generation header.
var generationBytes = len(chain.Generation{}.Marshal())

// stepRaft hands a received message to the consensus core. A message of a
// newer generation replaces this server's log first (see evicted).
func (d *driver) stepRaft(ctx context.Context, from lpeer.ID, gen chain.Generation, m *raftpb.Message) {
	if d.core == nil {
		return
	}
	err := d.core.StepFrom(gen, m)
	switch {
	case errors.Is(err, chain.ErrEvicted):
		d.evicted(ctx, gen, from)
	case errors.Is(err, chain.ErrStaleGeneration):
		d.log.Debug("raft message from an older generation of the chain ignored", "from", from.String(), "generation", gen.N)
	case err != nil:
		d.log.Debug("raft message refused", "type", m.GetType().String(), "err", err)
	}
}
