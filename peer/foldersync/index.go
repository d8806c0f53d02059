package foldersync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/syncfs"
)

// A host's index of a folder is its Local's entries, signed. It is sent in
// pages (each a signed syncfs.Index of at most about pageTarget bytes,
// all with the same sequence, in name order), either whole or, to a
// requester that holds an earlier sequence of the same session, only the
// entries changed since. Entries never leave an index (deletions are
// tombstones), so a delta merged into the previous index gives the new one.
//
// The session is a random number drawn each time a folder starts; the
// sequence grows with every change of the index within a session and
// starts from the clock (in microseconds), so it also grows across
// restarts. A stale index cannot undo anything: Plan ignores entries whose
// versions are not newer than the local ones.

// pubEntry is one entry of a published index.
type pubEntry struct {
	fi      syncfs.FileInfo
	changed uint64 // the sequence that last changed it
}

// blockLoc is where a published block is: a file and an offset.
type blockLoc struct {
	name   string
	offset int64
	size   uint32
}

// published is an immutable snapshot of a folder's index for the stream
// handlers, which must not touch the folder goroutine's state.
type published struct {
	folder  string
	device  string
	session uint64
	seq     uint64 // this index's sequence
	base    uint64 // the session's first sequence: deltas start after it
	entries map[string]pubEntry

	blocksOnce sync.Once
	blocks     map[syncfs.Hash]blockLoc // (lazily)

	once   sync.Once
	sorted []string // names, sorted (lazily)

	mu     sync.Mutex
	full   [][]byte            // the signed full pages, once made
	deltas map[uint64][][]byte // signed deltas since a sequence, a few
}

// newPublished snapshots files at seq, with what changed since prev.
func newPublished(prev *published, folder, device string, session, seq uint64, files syncfs.Snapshot) *published {
	p := &published{folder: folder, device: device, session: session, seq: seq, entries: make(map[string]pubEntry, len(files))}
	p.base = seq
	if prev != nil && prev.session == session {
		p.base = prev.base
	}
	for name, fi := range files {
		e := pubEntry{fi: fi, changed: seq}
		if prev != nil && prev.session == session {
			if old, ok := prev.entries[name]; ok && sameEntry(old.fi, fi) {
				e.changed = old.changed
			}
		}
		p.entries[name] = e
	}
	if prev != nil && prev.session == session {
		// Entries are never removed from a published index: one dropped
		// from the Local (which the engine never does) stays as it was.
		for name, old := range prev.entries {
			if _, ok := p.entries[name]; !ok {
				p.entries[name] = old
			}
		}
	}
	return p
}

// block returns where the published index holds a block. The map is made
// on the first request, as most indexes are never asked for blocks.
func (p *published) block(h syncfs.Hash) (blockLoc, bool) {
	p.blocksOnce.Do(func() {
		p.blocks = make(map[syncfs.Hash]blockLoc)
		for name, e := range p.entries {
			if e.fi.Deleted || e.fi.Type != syncfs.TypeFile {
				continue
			}
			for _, b := range e.fi.Blocks {
				if _, ok := p.blocks[b.Hash]; !ok {
					p.blocks[b.Hash] = blockLoc{name: name, offset: b.Offset, size: b.Size}
				}
			}
		}
	})
	loc, ok := p.blocks[h]
	return loc, ok
}

// differs reports whether files holds an entry p does not have as it is.
func (p *published) differs(files syncfs.Snapshot) bool {
	if p == nil {
		return true
	}
	for name, fi := range files {
		e, ok := p.entries[name]
		if !ok || !sameEntry(e.fi, fi) {
			return true
		}
	}
	return false
}

// sameEntry reports whether a and b are the same entry at the same version.
func sameEntry(a, b syncfs.FileInfo) bool {
	return a.Name == b.Name && a.Type == b.Type && a.Deleted == b.Deleted && a.Size == b.Size &&
		a.Mode == b.Mode && a.ModTime == b.ModTime && a.FileHash == b.FileHash &&
		a.SymlinkTarget == b.SymlinkTarget && a.Version.Equal(b.Version)
}

func (p *published) names() []string {
	p.once.Do(func() {
		p.sorted = make([]string, 0, len(p.entries))
		for n := range p.entries {
			p.sorted = append(p.sorted, n)
		}
		slices.Sort(p.sorted)
	})
	return p.sorted
}

// pages returns the signed pages of the entries changed after since (all
// of them when since is zero).
func (p *published) pages(key *identity.PrivateKey, since uint64) ([][]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if since == 0 && p.full != nil {
		return p.full, nil
	}
	if d, ok := p.deltas[since]; ok {
		return d, nil
	}
	var (
		out   [][]byte
		page  []syncfs.FileInfo
		bytes int
	)
	flush := func() error {
		signed, err := p.sign(key, page)
		if err != nil {
			return err
		}
		out = append(out, signed...)
		page, bytes = nil, 0
		return nil
	}
	for _, n := range p.names() {
		e := p.entries[n]
		if e.changed <= since {
			continue
		}
		sz := entrySize(e.fi)
		if len(page) > 0 && bytes+sz > pageTarget {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		page = append(page, e.fi)
		bytes += sz
	}
	if len(page) > 0 || len(out) == 0 && since == 0 {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if len(out) > maxPages {
		return nil, fmt.Errorf("index of folder %s needs %d pages, limit %d", p.folder, len(out), maxPages)
	}
	if since == 0 {
		p.full = out
	} else {
		if p.deltas == nil || len(p.deltas) >= 8 {
			p.deltas = map[uint64][][]byte{}
		}
		p.deltas[since] = out
	}
	return out, nil
}

// sign signs files as one page, or as several if the encoding turns out
// larger than an index may be.
func (p *published) sign(key *identity.PrivateKey, files []syncfs.FileInfo) ([][]byte, error) {
	signed, err := syncfs.SignIndex(key, syncfs.Index{Folder: p.folder, Device: p.device, Sequence: p.seq, Files: files})
	if err == nil && len(signed) <= syncfs.MaxIndexSize {
		return [][]byte{signed}, nil
	}
	if len(files) < 2 {
		if err == nil {
			err = fmt.Errorf("entry %s does not fit in an index", files[0].Name)
		}
		return nil, err
	}
	a, err := p.sign(key, files[:len(files)/2])
	if err != nil {
		return nil, err
	}
	b, err := p.sign(key, files[len(files)/2:])
	if err != nil {
		return nil, err
	}
	return append(a, b...), nil
}

// entrySize estimates an entry's encoded size, generously.
func entrySize(f syncfs.FileInfo) int {
	return 128 + len(f.Name) + len(f.SymlinkTarget) + 64*len(f.Blocks) + 80*len(f.Version.Counters)
}

// handleIndex serves ProtoIndex.
func (e *Engine) handleIndex(s network.Stream) {
	p := s.Conn().RemotePeer()
	_ = s.SetDeadline(time.Now().Add(ioTimeout))
	var req indexRequest
	if err := readMsg(bufio.NewReader(s), maxRequest, &req); err != nil {
		_ = s.Reset()
		return
	}
	if e.peerRoleIn(req.Folder, p) == roleNone {
		e.log.Debug("index request refused", "peer", p.String(), "folder", req.Folder)
		_ = s.Reset()
		return
	}
	defer s.Close()
	fail := func(msg string) { _ = writeMsg(s, indexHeader{Status: statusError, Error: msg}) }
	f := e.folder(req.Folder)
	if f == nil {
		fail("folder not synced here")
		return
	}
	pub := f.pub.Load()
	if pub == nil {
		fail("folder not scanned yet")
		return
	}
	hdr := indexHeader{Status: statusFull, Session: pub.session, Sequence: pub.seq}
	since := uint64(0)
	if req.Session == pub.session {
		switch {
		case req.Have == pub.seq:
			hdr.Status = statusNotModified
			_ = writeMsg(s, hdr)
			return
		case req.Have >= pub.base && req.Have < pub.seq:
			hdr.Status, since = statusDelta, req.Have
		}
	}
	pages, err := pub.pages(e.cfg.Key, since)
	if err != nil {
		e.log.Error("signing index", "folder", req.Folder, "err", err)
		fail("cannot make the index")
		return
	}
	hdr.Pages = uint32(len(pages))
	if err := writeMsg(s, hdr); err != nil {
		return
	}
	for _, pg := range pages {
		_ = s.SetDeadline(time.Now().Add(ioTimeout))
		if err := writeFrame(s, pg); err != nil {
			return
		}
	}
}

// remoteIndex is the latest verified index of another host.
type remoteIndex struct {
	session uint64
	seq     uint64
	snap    syncfs.Snapshot
	delta   []string // the names that came in the delta that made it; nil if it came whole
}

var errRefused = errors.New("refused")

// requestIndex asks p for its index of folder, holding held (nil: none),
// verifies it and returns the new index (held itself if not modified). A
// delta is merged into held's snapshot, which the caller replaces by the
// result; on an error held is left as it was.
func (e *Engine) requestIndex(ctx context.Context, p lpeer.ID, folder string, held *remoteIndex) (*remoteIndex, error) {
	req := indexRequest{Folder: folder}
	if held != nil {
		req.Session, req.Have = held.session, held.seq
	}
	sctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	s, err := e.cfg.Host.NewStream(sctx, p, ProtoIndex)
	if err != nil {
		return nil, fmt.Errorf("asking %s for its index: %w", p, err)
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(ioTimeout))
	if err := writeMsg(s, req); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("asking %s for its index: %w", p, err)
	}
	_ = s.CloseWrite()
	br := bufio.NewReaderSize(s, 64<<10)
	var hdr indexHeader
	if err := readMsg(br, maxHeader, &hdr); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("index from %s: %w", p, err)
	}
	switch hdr.Status {
	case statusError:
		return nil, fmt.Errorf("%w: %s has no index of folder %s: %s", errRefused, p, folder, hdr.Error)
	case statusNotModified:
		if held == nil || hdr.Session != held.session {
			return nil, fmt.Errorf("index from %s: not modified, but nothing is held", p)
		}
		return held, nil
	case statusDelta:
		if held == nil || hdr.Session != held.session || hdr.Sequence <= held.seq {
			return nil, fmt.Errorf("index from %s: a delta that does not follow what is held", p)
		}
	case statusFull:
	default:
		return nil, fmt.Errorf("index from %s: unknown status %d", p, hdr.Status)
	}
	if hdr.Pages > maxPages {
		return nil, fmt.Errorf("index from %s: %d pages, limit %d", p, hdr.Pages, maxPages)
	}
	var (
		entries []syncfs.FileInfo
		last    string
	)
	for i := range hdr.Pages {
		_ = s.SetDeadline(time.Now().Add(ioTimeout))
		b, err := readFrame(br, syncfs.MaxIndexSize)
		if err != nil {
			_ = s.Reset()
			return nil, fmt.Errorf("index from %s: page %d: %w", p, i, err)
		}
		idx, _, err := syncfs.OpenIndex(b)
		if err != nil {
			return nil, fmt.Errorf("index from %s: page %d: %w", p, i, err)
		}
		switch {
		case idx.Device != p.String():
			return nil, fmt.Errorf("%w: index from %s is %s's", identity.ErrWrongSigner, p, idx.Device)
		case idx.Folder != folder:
			return nil, fmt.Errorf("index from %s: folder %s, asked for %s", p, idx.Folder, folder)
		case idx.Sequence != hdr.Sequence:
			return nil, fmt.Errorf("index from %s: page %d at sequence %d, header says %d", p, i, idx.Sequence, hdr.Sequence)
		}
		if len(idx.Files) > 0 {
			if i > 0 && strings.Compare(idx.Files[0].Name, last) <= 0 {
				return nil, fmt.Errorf("index from %s: page %d overlaps the previous one", p, i)
			}
			last = idx.Files[len(idx.Files)-1].Name
		}
		entries = append(entries, idx.Files...)
	}
	out := &remoteIndex{session: hdr.Session, seq: hdr.Sequence}
	if hdr.Status == statusDelta {
		// Every page verified: the delta goes into the held snapshot,
		// which the new index replaces.
		out.snap = held.snap
	} else {
		out.snap = make(syncfs.Snapshot, len(entries))
	}
	for _, fi := range entries {
		out.snap[fi.Name] = fi
		if hdr.Status == statusDelta {
			out.delta = append(out.delta, fi.Name)
		}
	}
	if hdr.Status == statusDelta && out.delta == nil {
		out.delta = []string{}
	}
	return out, nil
}
