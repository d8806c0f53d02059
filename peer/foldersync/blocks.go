package foldersync

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/peer/wire"
	"github.com/baton-sync/baton/syncfs"
)

// handleBlock serves ProtoBlock: each block asked for is looked up in the
// folder's published index and read from its file, which is first checked
// to still be what the index says (its size and mtime; see openPublished);
// a block this host does not have (or whose file changed) is answered as
// missing. Blocks of a file whose stat matches are not hashed again here:
// the receiver verifies every block and asks the next peer for one that
// does not match.
func (e *Engine) handleBlock(s Stream, p lpeer.ID) {
	_ = s.SetDeadline(time.Now().Add(ioTimeout))
	var req blockRequest
	if err := wire.ReadMsg(bufio.NewReader(s), maxRequest, &req); err != nil || req.validate(e.cfg.Chunking.MaxSize) != nil {
		_ = s.Reset()
		return
	}
	if e.peerRoleIn(req.Folder, p) == roleNone {
		e.log.Debug("block request refused", "peer", p.String(), "folder", req.Folder)
		_ = s.Reset()
		return
	}
	f := e.folder(req.Folder)
	var pub *published
	if f != nil {
		pub = f.pub.Load()
	}
	if pub == nil {
		_ = s.Reset()
		return
	}
	defer s.Close()
	root, err := os.OpenRoot(f.root)
	if err != nil {
		_ = s.Reset()
		return
	}
	defer root.Close()
	files := map[string]*servedFile{}
	defer func() {
		for _, fh := range files {
			if fh != nil {
				fh.f.Close()
			}
		}
	}()
	missing := []byte{1, blockMissing} // a frame: its length, then the status
	for _, ref := range req.Blocks {
		frame := missing
		if loc, ok := pub.block(ref.Hash); ok && loc.size == ref.Size {
			fh, seen := files[loc.name]
			if !seen {
				fh = openPublished(root, pub, loc.name)
				files[loc.name] = fh
			}
			if fh != nil && fh.f != nil {
				// One buffer holds the whole frame, so the block is
				// copied once on its way to the stream.
				var hdr [binary.MaxVarintLen64]byte
				n := binary.PutUvarint(hdr[:], uint64(1+ref.Size))
				buf := syncfs.BlockBuffer(n + 1 + int(ref.Size))
				data := buf[n+1:]
				if _, err := fh.f.ReadAt(data, loc.offset); err == nil && (fh.same || syncfs.HashBytes(data) == ref.Hash) {
					copy(buf, hdr[:n])
					buf[n] = blockOK
					frame = buf
					f.served.Add(int64(ref.Size))
				} else {
					syncfs.FreeBlockBuffer(buf)
				}
			}
		}
		_ = s.SetDeadline(time.Now().Add(ioTimeout))
		_, err := s.Write(frame) // Write does not keep frame (io.Writer)
		if len(frame) > len(missing) {
			syncfs.FreeBlockBuffer(frame)
			e.cfg.Activity.moved(time.Now())
		}
		if err != nil {
			return
		}
	}
}

// servedFile is a file handleBlock serves blocks from.
type servedFile struct {
	f *os.File
	// same says the file has the size and mtime the published index
	// records: it is taken to hold the indexed blocks without hashing
	// them. Otherwise (a filesystem that keeps coarser mtimes than the
	// index, say) each block is hashed before it is sent.
	same bool
}

// openPublished opens name, a file of the published index pub, if it may
// still be the file the index describes: a regular file of the recorded
// size. A file whose size changed since its scan is not served (its blocks
// are answered as missing) until the next scan publishes it anew. Returns
// nil if it cannot be served.
func openPublished(root *os.Root, pub *published, name string) *servedFile {
	e, ok := pub.get(name)
	if !ok || e.fi.Deleted || e.fi.Type != syncfs.TypeFile {
		return nil
	}
	fh, err := root.Open(filepath.FromSlash(name))
	if err != nil {
		return nil
	}
	fi, err := fh.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != e.fi.Size {
		fh.Close()
		return nil
	}
	return &servedFile{f: fh, same: fi.ModTime().UnixNano() == e.fi.ModTime}
}

// requestBlocks asks p for refs of folder and calls got with each block
// received, verified (the only place a fetched block is hashed); got owns
// one reference to it. It returns the refs p did not supply or supplied
// wrong.
func (e *Engine) requestBlocks(ctx context.Context, p lpeer.ID, folder string, refs []blockRef, got func(blockRef, fetchedBlock)) ([]blockRef, error) {
	sctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	s, err := e.cfg.Transport.NewStream(sctx, p, ProtoBlock, true)
	if err != nil {
		return refs, err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(ioTimeout))
	if err := wire.WriteMsg(s, blockRequest{Folder: folder, Blocks: refs}); err != nil {
		_ = s.Reset()
		return refs, err
	}
	_ = s.CloseWrite()
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	// A small buffer: a block larger than it is read straight into its
	// own buffer (bufio passes large reads through), so only its first
	// bytes are copied twice.
	br := bufio.NewReaderSize(s, 32<<10)
	var missing []blockRef
	for i, ref := range refs {
		_ = s.SetDeadline(time.Now().Add(ioTimeout))
		fb, ok, err := readBlockFrame(br, ref, e.cfg.Chunking.MaxSize)
		if err != nil {
			_ = s.Reset()
			return append(missing, refs[i:]...), err
		}
		if ok {
			e.cfg.Activity.moved(time.Now())
			got(ref, fb)
			continue
		}
		missing = append(missing, ref)
	}
	return missing, nil
}

// fetchedBlock is a received, verified block. Its bytes are in a pooled
// buffer (buf, nil for a small block) that goes back to the pool when its
// last holder releases it: vb's release drops one reference, and share
// hands out another.
type fetchedBlock struct {
	vb  syncfs.VerifiedBlock
	buf *blockBuf
}

// share returns the block for one more holder, who must Release it.
func (b fetchedBlock) share() syncfs.VerifiedBlock {
	if b.buf != nil {
		b.buf.refs.Add(1)
	}
	return b.vb
}

// blockBuf is a pooled buffer shared by the holders of a fetchedBlock.
type blockBuf struct {
	b    []byte
	refs atomic.Int32
}

func (bb *blockBuf) unref() {
	switch n := bb.refs.Add(-1); {
	case n == 0:
		syncfs.FreeBlockBuffer(bb.b)
	case n < 0:
		panic("foldersync: block buffer released too often")
	}
}

// readBlockFrame reads the frame answering ref: the block, received into a
// pooled buffer and verified (ok), or a missing or wrong block (not ok,
// its bytes skipped). An error means the stream is unusable.
func readBlockFrame(br *bufio.Reader, ref blockRef, maxBlock uint32) (fetchedBlock, bool, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return fetchedBlock{}, false, fmt.Errorf("reading frame: %w", err)
	}
	if n > 1+uint64(maxBlock) {
		return fetchedBlock{}, false, fmt.Errorf("%w: %d bytes, limit %d", wire.ErrTooLarge, n, 1+maxBlock)
	}
	if n == 0 {
		return fetchedBlock{}, false, nil
	}
	status, err := br.ReadByte()
	if err != nil {
		return fetchedBlock{}, false, fmt.Errorf("reading frame: %w", err)
	}
	if status != blockOK || n-1 != uint64(ref.Size) {
		if _, err := br.Discard(int(n - 1)); err != nil {
			return fetchedBlock{}, false, fmt.Errorf("reading frame: %w", err)
		}
		return fetchedBlock{}, false, nil
	}
	bb := &blockBuf{b: syncfs.BlockBuffer(int(ref.Size))}
	if _, err := io.ReadFull(br, bb.b); err != nil {
		syncfs.FreeBlockBuffer(bb.b)
		return fetchedBlock{}, false, fmt.Errorf("reading frame: %w", err)
	}
	vb, err := syncfs.VerifyBlock(bb.b, ref.Hash)
	if err != nil {
		syncfs.FreeBlockBuffer(bb.b)
		return fetchedBlock{}, false, nil
	}
	bb.refs.Store(1)
	return fetchedBlock{vb: vb.OnRelease(bb.unref), buf: bb}, true, nil
}

// nearQueue is how far ahead of the prefetchers a block the applier asks
// for may be for the applier to wait for them rather than fetch it alone.
const nearQueue = 2 * maxBatch

// Prefetch entry states.
const (
	pfQueued   = iota // waiting for a prefetch worker
	pfInflight        // being fetched
	pfDone            // fetched (data nil: not to be had)
	pfClaimed         // taken by the applier before a worker got to it
)

// pfEntry is one block the plan needs.
type pfEntry struct {
	ref     blockRef
	pos     int // its place in the queue (counted from the first entry ever queued)
	last    int // the last action that needs it, of those indexed so far
	uses    int // Block calls still expected
	state   int
	evict   bool // drop when fetched
	counted bool // its bytes are in source.held
	done    chan struct{}
	data    fetchedBlock // holding one reference while ok
	ok      bool         // data was fetched
}

// Bounds of a source's memory whatever the size of the plan: it indexes
// the blocks of the plan's actions only while fewer than queueAhead are
// queued and not yet fetched, and holds at most maxHeld fetched blocks
// (besides Config.Prefetch bytes): a plan of 100,000 small files held an
// entry for each block and ran 37,000 blocks of 1 KiB ahead, 73 MB. Both
// are 4 times what the fetches in flight hold at most (Config.Fetches
// streams of maxBatch blocks); at 4,096 each, they held 9 MB of a device's
// 59 at the peak of a sync of 100,000 files of 1 KiB.
const (
	queueAhead = 2048
	maxHeld    = 2048
)

// source is the BlockSource of one apply: it fetches blocks from peers
// (the one whose index is applied first, then the folder's other members
// connected), ahead of the applier in plan order, within a memory budget,
// in batches of several blocks per stream.
type source struct {
	f     *folder
	peers []lpeer.ID
	stop  context.CancelFunc // ends the prefetch workers' context
	wg    sync.WaitGroup

	mu       sync.Mutex
	cond     *sync.Cond
	actions  []syncfs.Action // the plan; actions[:indexed] have their blocks queued
	indexed  int
	entries  map[syncfs.Hash]*pfEntry
	queue    []*pfEntry // the entries from position qbase on
	qbase    int
	next     int // the position of the first entry a worker may take
	byLast   map[int][]*pfEntry
	finished map[int]bool // actions finished above low
	low      int          // every action below it is finished
	held     int64        // bytes fetched or in flight, not yet used or evicted
	heldN    int          // blocks fetched or in flight, not yet used or evicted
	budget   int64
	closed   bool
}

// newSource returns the source for applying actions, and starts fetching
// their blocks ahead.
func (f *folder) newSource(ctx context.Context, peers []lpeer.ID, actions []syncfs.Action) *source {
	ctx, stop := context.WithCancel(ctx)
	s := &source{
		f: f, peers: peers, stop: stop, actions: actions,
		entries: map[syncfs.Hash]*pfEntry{}, byLast: map[int][]*pfEntry{}, finished: map[int]bool{},
		budget: f.e.cfg.Prefetch,
	}
	s.cond = sync.NewCond(&s.mu)
	s.index()
	workers := max(1, f.e.cfg.Fetches/2)
	for range workers {
		s.wg.Go(func() { s.prefetch(ctx) })
	}
	return s
}

// index queues the blocks of the next actions of the plan while fewer
// than queueAhead entries wait for a worker. A block already queued or
// held is counted once more. s.mu is held.
func (s *source) index() {
	for s.indexed < len(s.actions) && s.qbase+len(s.queue)-s.next < queueAhead {
		i := s.indexed
		s.indexed++
		for _, b := range s.actions[i].Need {
			ent := s.entries[b.Hash]
			if ent == nil {
				ent = &pfEntry{ref: blockRef{Hash: b.Hash, Size: b.Size}, pos: s.qbase + len(s.queue), last: -1, done: make(chan struct{})}
				s.entries[b.Hash] = ent
				s.queue = append(s.queue, ent)
			}
			ent.uses++
			if ent.last != i {
				ent.last = i
				s.byLast[i] = append(s.byLast[i], ent)
			}
		}
	}
	// The entries before next are a worker's or done: the queue forgets them.
	if k := s.next - s.qbase; k >= queueAhead {
		clear(s.queue[:k])
		s.queue = append(s.queue[:0], s.queue[k:]...)
		s.qbase = s.next
	}
}

// close stops the prefetching and waits for it.
func (s *source) close() {
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
}

// prefetch is a worker: it takes the next batch of queued blocks when the
// budget allows and fetches it.
func (s *source) prefetch(ctx context.Context) {
	for {
		s.mu.Lock()
		for {
			s.index()
			for s.next < s.qbase+len(s.queue) && s.queue[s.next-s.qbase].state != pfQueued {
				s.next++
			}
			if s.closed || s.next >= s.qbase+len(s.queue) && s.indexed == len(s.actions) {
				s.mu.Unlock()
				return
			}
			if s.next < s.qbase+len(s.queue) {
				first := s.queue[s.next-s.qbase]
				if s.held == 0 || s.held+int64(first.ref.Size) <= s.budget && s.heldN < maxHeld {
					break
				}
			}
			s.cond.Wait()
		}
		var (
			batch []*pfEntry
			bytes int64
		)
		for s.next < s.qbase+len(s.queue) && len(batch) < maxBatch {
			ent := s.queue[s.next-s.qbase]
			if ent.state != pfQueued {
				s.next++
				continue
			}
			sz := int64(ent.ref.Size)
			if len(batch) > 0 && (bytes+sz > maxBatchBytes || s.held+sz > s.budget || s.heldN >= maxHeld) {
				break
			}
			ent.state, ent.counted = pfInflight, true
			s.held += sz
			s.heldN++
			bytes += sz
			batch = append(batch, ent)
			s.next++
		}
		s.mu.Unlock()

		refs := make([]blockRef, len(batch))
		for i, ent := range batch {
			refs[i] = ent.ref
		}
		got := s.fetch(ctx, refs)
		s.mu.Lock()
		for _, ent := range batch {
			ent.data, ent.ok = got[ent.ref.Hash]
			ent.state = pfDone
			close(ent.done)
			if ent.evict || !ent.ok {
				s.release(ent)
			}
		}
		s.mu.Unlock()
	}
}

// release forgets ent and frees its bytes. s.mu is held.
func (s *source) release(ent *pfEntry) {
	if ent.counted {
		s.held -= int64(ent.ref.Size)
		s.heldN--
		ent.counted = false
	}
	if s.entries[ent.ref.Hash] == ent {
		delete(s.entries, ent.ref.Hash)
	}
	if ent.ok {
		ent.data.vb.Release()
	}
	ent.data, ent.ok = fetchedBlock{}, false
	s.cond.Broadcast()
}

// done tells the source the applier finished action i. Once every
// action up to some index is finished, the blocks no later action needs
// are dropped.
func (s *source) done(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished[i] = true
	for s.finished[s.low] {
		delete(s.finished, s.low)
		for _, ent := range s.byLast[s.low] {
			if ent.last != s.low || s.entries[ent.ref.Hash] != ent {
				continue // needed by a later action too, or released
			}
			switch ent.state {
			case pfQueued:
				ent.state = pfClaimed
				s.release(ent)
			case pfInflight:
				ent.evict = true
			case pfDone:
				s.release(ent)
			}
		}
		delete(s.byLast, s.low)
		s.low++
	}
	s.cond.Broadcast() // the workers may index further
}

// Block implements syncfs.BlockSource.
func (s *source) Block(ctx context.Context, hash syncfs.Hash, size uint32) (syncfs.VerifiedBlock, error) {
	s.mu.Lock()
	s.index()
	ent := s.entries[hash]
	if ent != nil && ent.ref.Size == size {
		if ent.state == pfQueued && ent.pos >= s.next+nearQueue {
			// Far ahead of the prefetchers: fetch it now, alone.
			ent.state = pfClaimed
			s.release(ent)
		} else {
			s.mu.Unlock()
			select {
			case <-ent.done:
			case <-ctx.Done():
				return syncfs.VerifiedBlock{}, ctx.Err()
			}
			s.mu.Lock()
			if ent.ok {
				vb := ent.data.share()
				ent.uses--
				if ent.uses <= 0 {
					s.release(ent)
				}
				s.mu.Unlock()
				return vb, nil
			}
		}
	}
	s.mu.Unlock()
	ref := blockRef{Hash: hash, Size: size}
	if fb, ok := s.fetch(ctx, []blockRef{ref})[hash]; ok {
		return fb.vb, nil
	}
	return syncfs.VerifiedBlock{}, fmt.Errorf("%w: %x from %d peers", syncfs.ErrBlockUnavailable, hash[:8], len(s.peers))
}

// fetch gets refs from the peers in order, each asked for what the ones
// before it did not supply, in batches, at most Fetches streams at once
// per folder. It returns the blocks received, verified, by hash; the caller
// owns a reference to each.
func (s *source) fetch(ctx context.Context, refs []blockRef) map[syncfs.Hash]fetchedBlock {
	out := make(map[syncfs.Hash]fetchedBlock, len(refs))
	for _, p := range s.peers {
		if len(refs) == 0 || ctx.Err() != nil {
			break
		}
		select {
		case s.f.fetchSem <- struct{}{}:
		case <-ctx.Done():
			return out
		}
		missing, err := s.f.e.requestBlocks(ctx, p, s.f.id, refs, func(r blockRef, b fetchedBlock) {
			if old, dup := out[r.Hash]; dup {
				old.vb.Release()
			}
			out[r.Hash] = b
			s.f.fetched.Add(int64(r.Size))
		})
		<-s.f.fetchSem
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			s.f.log.Debug("fetching blocks", "peer", p.String(), "blocks", len(refs), "err", err)
		}
		refs = missing
	}
	return out
}
