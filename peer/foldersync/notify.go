package foldersync

import (
	"context"
	"errors"
	"fmt"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/peer/wire"
)

// announce tells the peers that take this host's changes that its index
// changed (announcesTo): from the server, every connected member device;
// from a read-write device, the server and the other connected member
// devices.
func (f *folder) announce(ctx context.Context, p *published) {
	a := f.e.access()
	fo, ok := a.Folder(f.id)
	if !ok {
		return
	}
	for _, q := range announcesTo(a, fo, f.e.self, f.e.cfg.Transport.Peers()) {
		f.sendNotify(ctx, q)
	}
}

// sendNotify sends a notification to q in the background; one at a time
// per peer, the latest sequence.
func (f *folder) sendNotify(ctx context.Context, q lpeer.ID) {
	f.mu.Lock()
	if f.notifying[q] > 0 {
		f.notifying[q] = 2
		f.mu.Unlock()
		return
	}
	f.notifying[q] = 1
	f.mu.Unlock()
	f.bg.Go(func() {
		for {
			for attempt := 1; ; attempt++ {
				p := f.pub.Load()
				err := f.e.sendNotify(ctx, q, notifyMsg{Folder: f.id, Session: p.session, Sequence: p.seq})
				if err == nil || ctx.Err() != nil || errors.Is(err, errNotSynced) {
					break
				}
				f.log.Debug("notification not delivered", "peer", q.String(), "attempt", attempt, "err", err)
				if attempt == notifyAttempts {
					break // the peer's periodic pull will see the change
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
				}
			}
			f.mu.Lock()
			if f.notifying[q] == 2 && ctx.Err() == nil {
				f.notifying[q] = 1
				f.mu.Unlock()
				continue
			}
			delete(f.notifying, q)
			f.mu.Unlock()
			return
		}
	})
}

// notifyAttempts bounds the deliveries tried for one notification.
const notifyAttempts = 3

// sendNotify sends m to q over an existing connection and waits for the
// receipt, which says a running folder took it.
func (e *Engine) sendNotify(ctx context.Context, q lpeer.ID, m notifyMsg) error {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	s, err := e.cfg.Transport.NewStream(ctx, q, ProtoNotify, false)
	if err != nil {
		return err
	}
	defer s.Close()
	req, err := canon.Marshal(m)
	if err != nil {
		return err
	}
	b, err := wire.Exchange(s, time.Now().Add(ioTimeout), req, 16)
	if err != nil {
		return fmt.Errorf("no receipt: %w", err)
	}
	if len(b) > 0 {
		return errNotSynced
	}
	return nil
}

// errNotSynced: the peer does not sync the folder (a member device that
// did not accept it): nothing to send it again.
var errNotSynced = errors.New("folder not synced there")

// handleNotify serves ProtoNotify: the folder looks at the sender's index
// if it takes changes from it. The receipt is an empty frame, or a frame
// holding 1 if the folder is not synced here.
func (e *Engine) handleNotify(s Stream, p lpeer.ID) {
	wire.Serve(s, time.Now().Add(ioTimeout), maxRequest, func(b []byte) ([]byte, error) {
		var m notifyMsg
		if err := canon.Unmarshal(b, &m, maxRequest); err != nil {
			return nil, err
		}
		if e.peerRoleIn(m.Folder, p) == roleNone {
			return nil, errNotMember
		}
		if f := e.folder(m.Folder); f != nil {
			f.notify(p)
			return []byte{}, nil // taken
		}
		return []byte{1}, nil // not synced here
	})
}

// errNotMember: a notification from a host that is not a member of the
// folder gets no answer.
var errNotMember = errors.New("not a member of the folder")
