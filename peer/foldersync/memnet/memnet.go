package memnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/baton-sync/baton/peer/wire"
)

// Errors of the network.
var (
	ErrNotConnected = errors.New("memnet: not connected")
	ErrNoHost       = errors.New("memnet: no such host")
	ErrNoProtocol   = errors.New("memnet: protocol not served")
	ErrReset        = errors.New("memnet: stream reset")
)

// Net is a set of hosts and the connections between them.
type Net struct {
	mu    sync.Mutex
	hosts map[lpeer.ID]*Host
	conns map[[2]lpeer.ID]bool
}

// New is an empty network.
func New() *Net {
	return &Net{hosts: map[lpeer.ID]*Host{}, conns: map[[2]lpeer.ID]bool{}}
}

// Host adds a host with the given ID.
func (n *Net) Host(id lpeer.ID) *Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := &Host{net: n, id: id, handlers: map[protocol.ID]func(wire.Stream, lpeer.ID){}, subs: map[chan lpeer.ID]bool{}}
	n.hosts[id] = h
	return h
}

func pair(a, b lpeer.ID) [2]lpeer.ID {
	if a > b {
		a, b = b, a
	}
	return [2]lpeer.ID{a, b}
}

// Connect connects a and b; each is told if they were not connected.
func (n *Net) Connect(a, b lpeer.ID) error {
	n.mu.Lock()
	ha, hb := n.hosts[a], n.hosts[b]
	if ha == nil || hb == nil || a == b {
		n.mu.Unlock()
		return fmt.Errorf("%w: connecting %s and %s", ErrNoHost, a, b)
	}
	was := n.conns[pair(a, b)]
	n.conns[pair(a, b)] = true
	n.mu.Unlock()
	if !was {
		ha.connected(b)
		hb.connected(a)
	}
	return nil
}

// Disconnect cuts a from b: new streams fail until they connect again
// (streams open stay open).
func (n *Net) Disconnect(a, b lpeer.ID) {
	n.mu.Lock()
	delete(n.conns, pair(a, b))
	n.mu.Unlock()
}

func (n *Net) isConnected(a, b lpeer.ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conns[pair(a, b)]
}

// Host is one host of a Net.
type Host struct {
	net *Net
	id  lpeer.ID

	mu       sync.Mutex
	handlers map[protocol.ID]func(wire.Stream, lpeer.ID)
	subs     map[chan lpeer.ID]bool
}

// ID is the host's peer ID.
func (h *Host) ID() lpeer.ID { return h.id }

// Connect connects h to p.
func (h *Host) Connect(p lpeer.ID) error { return h.net.Connect(h.id, p) }

// Peers are the hosts h is connected to.
func (h *Host) Peers() []lpeer.ID {
	h.net.mu.Lock()
	defer h.net.mu.Unlock()
	var out []lpeer.ID
	for c := range h.net.conns {
		switch h.id {
		case c[0]:
			out = append(out, c[1])
		case c[1]:
			out = append(out, c[0])
		}
	}
	slices.Sort(out)
	return out
}

// SetHandler serves proto with handle (nil stops serving it).
func (h *Host) SetHandler(proto protocol.ID, handle func(s wire.Stream, from lpeer.ID)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if handle == nil {
		delete(h.handlers, proto)
		return
	}
	h.handlers[proto] = handle
}

// NewStream opens proto to p, connecting first if dial is set. The
// handler runs on its own goroutine.
func (h *Host) NewStream(ctx context.Context, p lpeer.ID, proto protocol.ID, dial bool) (wire.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !h.net.isConnected(h.id, p) {
		if !dial {
			return nil, fmt.Errorf("%w to %s", ErrNotConnected, p)
		}
		if err := h.net.Connect(h.id, p); err != nil {
			return nil, err
		}
	}
	h.net.mu.Lock()
	to := h.net.hosts[p]
	h.net.mu.Unlock()
	to.mu.Lock()
	handle := to.handlers[proto]
	to.mu.Unlock()
	if handle == nil {
		return nil, fmt.Errorf("%w: %s on %s", ErrNoProtocol, proto, p)
	}
	a, b := newPipe(), newPipe()
	local := &Stream{in: a, out: b, remote: p}
	remote := &Stream{in: b, out: a, remote: h.id}
	go handle(remote, h.id)
	return local, nil
}

// Connected sends each host that connects to h, until stop.
func (h *Host) Connected() (<-chan lpeer.ID, func(), error) {
	c := make(chan lpeer.ID, 64)
	h.mu.Lock()
	h.subs[c] = true
	h.mu.Unlock()
	stop := func() {
		h.mu.Lock()
		if h.subs[c] {
			delete(h.subs, c)
			close(c)
		}
		h.mu.Unlock()
	}
	return c, stop, nil
}

func (h *Host) connected(p lpeer.ID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		select {
		case c <- p:
		default: // a subscriber that does not keep up misses news, as with libp2p
		}
	}
}

// Stream is one end of a stream.
type Stream struct {
	in, out *pipe
	remote  lpeer.ID

	mu    sync.Mutex
	timer *time.Timer
}

// RemotePeer is the host at the other end.
func (s *Stream) RemotePeer() lpeer.ID { return s.remote }

func (s *Stream) Read(b []byte) (int, error)  { return s.in.read(b) }
func (s *Stream) Write(b []byte) (int, error) { return s.out.write(b) }

// CloseWrite ends what this end sends: the other end reads EOF.
func (s *Stream) CloseWrite() error { s.out.close(nil); return nil }

// Close closes both directions.
func (s *Stream) Close() error {
	s.out.close(nil)
	s.in.close(os.ErrClosed)
	s.stopTimer()
	return nil
}

// Reset breaks the stream both ways: the other end's reads and writes fail.
func (s *Stream) Reset() error {
	s.out.fail(ErrReset)
	s.in.fail(ErrReset)
	s.stopTimer()
	return nil
}

// SetDeadline breaks the stream at t (both ways, as a timeout).
func (s *Stream) SetDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if t.IsZero() {
		return nil
	}
	s.timer = time.AfterFunc(time.Until(t), func() {
		s.in.fail(os.ErrDeadlineExceeded)
		s.out.fail(os.ErrDeadlineExceeded)
	})
	return nil
}

func (s *Stream) stopTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

// maxBuffered is how much one direction holds before the writer waits.
const maxBuffered = 4 << 20

// pipe is one direction of a stream: a bounded buffer.
type pipe struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    bytes.Buffer
	closed bool  // the writer closed: EOF once drained
	err    error // broken: reads and writes fail at once
}

func newPipe() *pipe {
	p := &pipe{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *pipe) write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for len(b) > 0 {
		for p.err == nil && !p.closed && p.buf.Len() >= maxBuffered {
			p.cond.Wait()
		}
		if p.err != nil {
			return n, p.err
		}
		if p.closed {
			return n, os.ErrClosed
		}
		k := min(len(b), maxBuffered-p.buf.Len())
		p.buf.Write(b[:k])
		b, n = b[k:], n+k
		p.cond.Broadcast()
	}
	return n, nil
}

func (p *pipe) read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.buf.Len() == 0 && p.err == nil && !p.closed {
		p.cond.Wait()
	}
	if p.err != nil {
		return 0, p.err
	}
	if p.buf.Len() == 0 {
		return 0, io.EOF
	}
	n, _ := p.buf.Read(b)
	p.cond.Broadcast()
	return n, nil
}

// close marks the end of what is written (err nil), or stops the reader
// taking more (err set: the writer's next writes fail).
func (p *pipe) close(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.closed = true
	} else if p.err == nil {
		p.err = err
		p.buf.Reset()
	}
	p.cond.Broadcast()
}

func (p *pipe) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
		p.buf.Reset()
	}
	p.cond.Broadcast()
}
