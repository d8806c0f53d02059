package foldersync

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer/wire"
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

// blockLoc is where a published block is: a file and an offset.
type blockLoc struct {
	name   string
	offset int64
	size   uint32
}

// published is an immutable snapshot of a folder's index for the stream
// handlers, which must not touch the folder goroutine's state. Each one is
// made from the previous one and the entries that changed, sharing what
// did not (see pubTree), so publishing costs what changed, not the folder.
type published struct {
	folder  string
	device  string
	session uint64
	seq     uint64 // this index's sequence
	base    uint64 // the session's first sequence: deltas start after it
	tree    pubTree

	// Counts of the live entries, for the status.
	files, dirs int
	bytes       int64
	nblocks     int // blocks of live files

	blocks *blockIndex // shared with the other indexes of the session

	cache pageCache // its signed pages
}

// newPublished returns the index at seq: prev (nil: none) with the entries
// of files named in names (unique) that differ from prev's, or, if all (or prev is
// of another session), every entry of files. It also returns the names
// that changed; it returns nil if none did (and there is a prev). Entries are never removed from
// a published index: one dropped from the Local (which the engine never
// does) stays as it was. A new tree (no prev) keeps the entries of its
// chunks in store (nil: in memory) once it is large.
func newPublished(prev *published, folder, device string, session, seq uint64, files syncfs.Entries, names []string, all bool, store *chunkStore) (*published, []string) {
	if prev != nil && prev.session != session {
		prev = nil
	}
	if prev == nil {
		all = true
	}
	if all {
		names = make([]string, 0, files.Len())
		for n := range files.All() {
			names = append(names, n)
		}
	}
	p := &published{folder: folder, device: device, session: session, seq: seq, base: seq, tree: pubTree{store: store}}
	if prev != nil {
		p.base, p.tree = prev.base, prev.tree
		p.files, p.dirs, p.bytes, p.nblocks = prev.files, prev.dirs, prev.bytes, prev.nblocks
	}
	var (
		changed []string
		added   []string // files whose blocks the block index lacks
	)
	// Only the names of what changed are kept and sorted, not copies of
	// the entries: names may list every entry (a whole folder, or many
	// that are as published, those an apply under way has not reached
	// yet).
	for _, n := range names {
		fi, ok := files.Get(n)
		if !ok {
			continue
		}
		var old pubEntry
		had := false
		if prev != nil {
			old, had = prev.tree.get(n)
			if had && sameEntry(old.fi, fi) {
				continue
			}
		}
		if had {
			p.count(old.fi, -1)
		}
		p.count(fi, 1)
		changed = append(changed, n)
		if prev != nil && !fi.Deleted && fi.Type == syncfs.TypeFile && len(fi.Blocks) > 0 && (!had || old.fi.FileHash != fi.FileHash || old.fi.Deleted) {
			added = append(added, n)
		}
	}
	if len(changed) == 0 && prev != nil {
		return nil, nil
	}
	slices.Sort(changed)
	// The entries go into the tree a batch at a time.
	batch := make([]pubEntry, 0, min(len(changed), pubBatch))
	for i := 0; i < len(changed); i += pubBatch {
		batch = batch[:0]
		for _, n := range changed[i:min(i+pubBatch, len(changed))] {
			fi, _ := files.Get(n)
			batch = append(batch, pubEntry{fi: fi, changed: seq})
		}
		p.tree = p.tree.with(batch)
	}
	if prev != nil && prev.blocks.keep(p.nblocks) {
		p.blocks = prev.blocks
		p.blocks.add(files, added)
	} else {
		p.blocks = newBlockIndex(p.tree, p.nblocks)
	}
	return p, changed
}

// pubBatch is how many changed entries newPublished puts in a tree at a
// time.
const pubBatch = 1024

// count adds (sign 1) or removes (sign -1) fi from p's counts.
func (p *published) count(fi syncfs.FileInfo, sign int) {
	switch {
	case fi.Deleted:
	case fi.Type == syncfs.TypeDir:
		p.dirs += sign
	default:
		p.files += sign
		p.bytes += int64(sign) * fi.Size
		p.nblocks += sign * len(fi.Blocks)
	}
}

// get returns p's entry for name.
func (p *published) get(name string) (pubEntry, bool) { return p.tree.get(name) }

// block returns where the published index holds a block.
func (p *published) block(h syncfs.Hash) (blockLoc, bool) {
	return p.blocks.find(h, p.tree)
}

// blockIndex maps block hashes to where files hold them, for all the
// indexes of a session: each index adds the blocks of the files it
// changed, and a lookup keeps only the places its own index still has.
// Places that went stale are dropped by making a new one when they
// outnumber the live blocks.
//
// The places are two arrays sorted by the first 8 bytes of their hash:
// main, and tail, what was added since main was made, merged into main
// once it grows past a part of it. A place takes 32 bytes (a map took
// about 73 a block of a folder of small files). The arrays are never
// modified once made: an add makes a new tail (and sometimes a new main),
// so a lookup reads the ones it found without the lock. A lookup checks
// the whole hash against the file's entry, so two hashes that share their
// first bytes only cost a look at the other's places.
//
// An index of more places than its store's limit (spillAbove) keeps
// main in the store (chunkStore.putPlaces), as a bucket of its own that
// goes once no published index holds the blockIndex, and merges its
// tail into it.
type blockIndex struct {
	mu    sync.RWMutex
	main  []blockPlace // in memory, unless in store
	tail  []blockPlace
	store *chunkStore
	disk  []byte // the bucket of main's places in store; nil: none
	mainN int    // the places in main, wherever they are
}

// blockPlace is where a block is: a file and an offset. Its size is the
// file's entry's.
type blockPlace struct {
	key    uint64 // blockKey of its hash
	offset int64
	name   string
}

// blockKey is what blockIndex sorts h by.
func blockKey(h syncfs.Hash) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

// newBlockIndex returns the index of t's live files' blocks, of which
// there are about n: in t's store if they are more than it keeps in
// memory (in memory if that fails).
func newBlockIndex(t pubTree, n int) *blockIndex {
	places := make([]blockPlace, 0, n)
	for e := range t.all() {
		if !e.fi.Deleted && e.fi.Type == syncfs.TypeFile {
			places = appendPlaces(places, e.fi)
		}
	}
	sortPlaces(places)
	b := &blockIndex{main: slices.Clip(places), mainN: len(places), store: t.store}
	if b.store != nil && len(places) > b.store.above {
		b.toDisk(places)
	}
	return b
}

// toDisk puts places, all of b's (sorted), in a bucket of b's store of
// its own, and then lets go of them in memory; they stay there if that
// fails. Only the folder's goroutine calls it.
func (b *blockIndex) toDisk(places []blockPlace) {
	s := b.store
	disk, err := s.newPlaces()
	if err == nil {
		err = s.putPlaces(disk, places)
	}
	if err != nil {
		s.fail("storing a block index", err)
		return
	}
	b.mu.Lock()
	b.main, b.tail, b.disk, b.mainN = nil, nil, disk, len(places)
	b.mu.Unlock()
	runtime.AddCleanup(b, s.freePlaces, disk)
}

// appendPlaces appends the places of fi's blocks to places.
func appendPlaces(places []blockPlace, fi syncfs.FileInfo) []blockPlace {
	for _, blk := range fi.Blocks {
		places = append(places, blockPlace{key: blockKey(blk.Hash), offset: blk.Offset, name: fi.Name})
	}
	return places
}

func sortPlaces(places []blockPlace) {
	slices.SortFunc(places, func(a, b blockPlace) int { return cmp.Compare(a.key, b.key) })
}

// keep reports whether b may go on serving an index with live blocks:
// it holds not too many stale places.
func (b *blockIndex) keep(live int) bool {
	if b == nil {
		return false
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.mainN+len(b.tail) <= 2*live+4096
}

// add adds the blocks of the files of files named in names.
func (b *blockIndex) add(files syncfs.Entries, names []string) {
	if len(names) == 0 {
		return
	}
	var added []blockPlace
	for _, n := range names {
		fi, _ := files.Get(n)
		added = appendPlaces(added, fi)
	}
	sortPlaces(added)
	b.mu.Lock()
	tail := mergePlaces(b.tail, added)
	b.tail = tail
	merge := len(tail) > b.mainN/8+4096
	if merge && b.disk == nil {
		main := mergePlaces(b.main, tail)
		if b.store != nil && len(main) > b.store.above {
			// Grown past what is kept in memory. Lookups meanwhile find
			// the places in memory.
			b.mu.Unlock()
			b.toDisk(main)
			return
		}
		b.main, b.tail, b.mainN = main, nil, len(main)
	}
	b.mu.Unlock()
	if !merge || b.disk == nil {
		return
	}
	// Only the folder's goroutine adds. Lookups meanwhile find the
	// places in the tail, and on disk once stored.
	if err := b.store.putPlaces(b.disk, tail); err != nil {
		b.store.fail("storing a block index", err)
		return
	}
	b.mu.Lock()
	b.tail, b.mainN = nil, b.mainN+len(tail)
	b.mu.Unlock()
}

// mergePlaces returns a new array of the places of a and b, both sorted.
func mergePlaces(a, b []blockPlace) []blockPlace {
	out := make([]blockPlace, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0].key < a[0].key {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

// find returns a place of h that t holds.
func (b *blockIndex) find(h syncfs.Hash, t pubTree) (blockLoc, bool) {
	k := blockKey(h)
	b.mu.RLock()
	main, tail, disk := b.main, b.tail, b.disk
	b.mu.RUnlock()
	// The latest places first: a block's earlier places are the likelier
	// to be stale.
	for _, places := range [][]blockPlace{tail, main} {
		i, _ := slices.BinarySearchFunc(places, k, func(p blockPlace, k uint64) int { return cmp.Compare(p.key, k) })
		for ; i < len(places) && places[i].key == k; i++ {
			if loc, ok := placeIn(t, places[i], h); ok {
				return loc, true
			}
		}
	}
	var loc blockLoc
	found := false
	if disk != nil {
		b.store.findPlaces(disk, k, func(p blockPlace) bool {
			loc, found = placeIn(t, p, h)
			return !found
		})
	}
	return loc, found
}

// placeIn returns the block p names if t's entry still holds h there.
func placeIn(t pubTree, p blockPlace, h syncfs.Hash) (blockLoc, bool) {
	e, ok := t.get(p.name)
	if !ok || e.fi.Deleted || e.fi.Type != syncfs.TypeFile {
		return blockLoc{}, false
	}
	j, found := slices.BinarySearchFunc(e.fi.Blocks, p.offset, func(blk syncfs.Block, off int64) int { return cmp.Compare(blk.Offset, off) })
	if !found || e.fi.Blocks[j].Hash != h {
		return blockLoc{}, false
	}
	return blockLoc{name: p.name, offset: p.offset, size: e.fi.Blocks[j].Size}, true
}

// sameEntry reports whether a and b are the same entry at the same version.
func sameEntry(a, b syncfs.FileInfo) bool {
	return a.Name == b.Name && a.Type == b.Type && a.Deleted == b.Deleted && a.Size == b.Size &&
		a.Mode == b.Mode && a.ModTime == b.ModTime && a.FileHash == b.FileHash &&
		a.SymlinkTarget == b.SymlinkTarget && a.Version.Equal(b.Version)
}

// entrySize estimates an entry's encoded size, generously.
func entrySize(f syncfs.FileInfo) int {
	return 128 + len(f.Name) + len(f.SymlinkTarget) + 64*len(f.Blocks) + 80*len(f.Version.Counters)
}

// handleIndex serves ProtoIndex.
func (e *Engine) handleIndex(s Stream, p lpeer.ID) {
	_ = s.SetDeadline(time.Now().Add(ioTimeout))
	var req indexRequest
	if err := wire.ReadMsg(bufio.NewReader(s), maxRequest, &req); err != nil {
		_ = s.Reset()
		return
	}
	if e.peerRoleIn(req.Folder, p) == roleNone {
		e.log.Debug("index request refused", "peer", p.String(), "folder", req.Folder)
		_ = s.Reset()
		return
	}
	defer s.Close()
	fail := func(msg string) { _ = wire.WriteMsg(s, indexHeader{Status: statusError, Error: msg}) }
	f := e.folder(req.Folder)
	if f == nil {
		fail("folder not synced here")
		return
	}
	if !e.cfg.Access().Server(p) {
		f.noteRequest(p)
	}
	pub := f.pub.Load()
	if pub == nil {
		fail("folder not scanned yet")
		return
	}
	hdr := indexHeader{Status: statusFull, Session: pub.session, Sequence: pub.seq}
	a := e.access()
	if fo, ok := a.Folder(req.Folder); ok {
		if limit, ok := e.quotaOf(a, fo, p); ok {
			hdr.QuotaUsed, hdr.QuotaLimit, hdr.Refused = e.usage(a, fo.Owner), limit, f.refusal(p)
		}
	}
	since := uint64(0)
	if req.Session == pub.session {
		switch {
		case req.Have == pub.seq:
			hdr.Status = statusNotModified
			_ = wire.WriteMsg(s, hdr)
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
	defer pub.release(pages)
	hdr.Pages = uint32(pages.len())
	if err := wire.WriteMsg(s, hdr); err != nil {
		return
	}
	err = pages.send(s, func() { _ = s.SetDeadline(time.Now().Add(ioTimeout)) })
	if err != nil {
		e.log.Debug("index not sent", "peer", p.String(), "folder", req.Folder, "err", err)
	}
}

// remoteIndex is the latest verified index of another host. Its entries
// are in the Engine's PeerStore under key, each with its summary (a digest
// of its version), which tells the entries at the local version (nothing
// to plan) from those to load; in memory it keeps none of them.
type remoteIndex struct {
	session uint64
	seq     uint64
	key     string   // of its entries in Engine.peers
	delta   []string // the names that came in the delta that made it; nil if it came whole or as more than Config.scopeNames
	base    uint64   // the sequence the delta came over
}

// differing returns, in name order, those of names that ri holds at
// another version than local's entry, or that local lacks: the entries a
// plan may act on.
func (e *Engine) differing(ri *remoteIndex, local syncfs.Entries, names nameSet) ([]string, error) {
	var out []string
	err := e.peers.Summaries(ri.key, slices.Collect(maps.Keys(names)), func(n string, s syncfs.PeerSummary, ok bool) {
		if !ok {
			return
		}
		if l, okL := local.Get(n); !okL || syncfs.SummaryOf(l) != s {
			out = append(out, n)
		}
	})
	return out, err
}

// differingAfter is differing over every name of ri after the name after
// ("": from the first), returning at most limit names (0: all), and
// whether the walk stopped at the limit with names left to look at. A
// walk of a peer's whole index a window at a time holds a window of
// names, not every name of a large change.
func (e *Engine) differingAfter(ri *remoteIndex, local syncfs.Entries, after string, limit int) (names []string, more bool, err error) {
	err = e.peers.EachSummary(ri.key, after, func(n []byte, s syncfs.PeerSummary) bool {
		if l, ok := local.Get(string(n)); ok && syncfs.SummaryOf(l) == s {
			return true
		}
		if limit > 0 && len(names) == limit {
			more = true
			return false
		}
		names = append(names, string(n))
		return true
	})
	return names, more, err
}

// remoteVersion returns the version of ri's entry named n, loaded from the
// store.
func (e *Engine) remoteVersion(ri *remoteIndex, n string) (syncfs.Vector, bool) {
	got, err := e.loadRemote(ri, []string{n})
	if err != nil {
		e.log.Debug("peer index entry not loaded", "name", n, "err", err)
		return syncfs.Vector{}, false
	}
	fi, ok := got[n]
	return fi.Version, ok
}

// newPeerKey returns a new key for the entries of p's index of folder in
// e.peers.
func (e *Engine) newPeerKey(folder string, p lpeer.ID) string {
	return fmt.Sprintf("%s/%s/%d", folder, p, e.peerKey.Add(1))
}

// loadRemote returns ri's entries of names.
func (e *Engine) loadRemote(ri *remoteIndex, names []string) (syncfs.Snapshot, error) {
	return e.peers.Get(ri.key, names)
}

// loadRemoteAll returns every entry of ri.
func (e *Engine) loadRemoteAll(ri *remoteIndex) (syncfs.Snapshot, error) {
	return e.peers.All(ri.key)
}

var errRefused = errors.New("refused")

// requestIndex asks p for its index of folder, holding held (nil: none),
// verifies it and returns the new index (held itself if not modified). A
// delta is merged into held's snapshot, which the caller replaces by the
// result; on an error held is left as it was.
func (e *Engine) requestIndex(ctx context.Context, p lpeer.ID, folder string, held *remoteIndex) (*remoteIndex, error) {
	ri, _, err := e.requestIndexNote(ctx, p, folder, held)
	return ri, err
}

// indexNote is what a server hosting a folder says besides its index: the
// owner's quota, and why the requester's changes were not taken.
type indexNote struct {
	QuotaUsed, QuotaLimit int64
	Refused               string
}

// requestIndexNote is requestIndex, also returning the responder's note.
func (e *Engine) requestIndexNote(ctx context.Context, p lpeer.ID, folder string, held *remoteIndex) (*remoteIndex, indexNote, error) {
	var hdr indexHeader
	ri, err := e.readIndex(ctx, p, folder, held, &hdr)
	if err != nil {
		return nil, indexNote{}, err
	}
	return ri, indexNote{QuotaUsed: hdr.QuotaUsed, QuotaLimit: hdr.QuotaLimit, Refused: hdr.Refused}, nil
}

// readIndex does requestIndex's work, filling in *hdr as received.
func (e *Engine) readIndex(ctx context.Context, p lpeer.ID, folder string, held *remoteIndex, hdrOut *indexHeader) (*remoteIndex, error) {
	req := indexRequest{Folder: folder}
	if held != nil {
		req.Session, req.Have = held.session, held.seq
	}
	sctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	s, err := e.cfg.Transport.NewStream(sctx, p, ProtoIndex, true)
	if err != nil {
		return nil, fmt.Errorf("asking %s for its index: %w", p, err)
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(ioTimeout))
	if err := wire.WriteMsg(s, req); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("asking %s for its index: %w", p, err)
	}
	_ = s.CloseWrite()
	br := bufio.NewReaderSize(s, 64<<10)
	var hdr indexHeader
	if err := wire.ReadMsg(br, maxHeader, &hdr); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("index from %s: %w", p, err)
	}
	*hdrOut = hdr
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
	out := &remoteIndex{session: hdr.Session, seq: hdr.Sequence}
	// A full index goes into a new key of the store, page by page (it
	// is dropped on an error); so does a delta (staged), whose entries go
	// into held's once every page verified: only their names are held in
	// memory meanwhile. A delta of at most stagedInMemory entries is held
	// in memory instead, and written once, into held's.
	var (
		stage   string
		inMem   []syncfs.FileInfo // the delta's entries while it is small
		pending []string
		tooMany bool // pending would pass scopeNames: none are held
		last    string
	)
	if hdr.Status == statusFull {
		out.key = e.newPeerKey(folder, p)
	}
	fail := func(err error) (*remoteIndex, error) {
		for _, k := range []string{out.key, stage} {
			if k == "" {
				continue
			}
			if derr := e.peers.Drop(k); derr != nil {
				e.log.Debug("peer index not dropped", "err", derr)
			}
		}
		return nil, err
	}
	for i := range hdr.Pages {
		_ = s.SetDeadline(time.Now().Add(ioTimeout))
		b, err := wire.ReadFrame(br, syncfs.MaxIndexSize)
		if err != nil {
			_ = s.Reset()
			return fail(fmt.Errorf("index from %s: page %d: %w", p, i, err))
		}
		idx, _, err := syncfs.OpenIndex(b)
		if err != nil {
			return fail(fmt.Errorf("index from %s: page %d: %w", p, i, err))
		}
		switch {
		case idx.Device != p.String():
			return fail(fmt.Errorf("%w: index from %s is %s's", identity.ErrWrongSigner, p, idx.Device))
		case idx.Folder != folder:
			return fail(fmt.Errorf("index from %s: folder %s, asked for %s", p, idx.Folder, folder))
		case idx.Sequence != hdr.Sequence:
			return fail(fmt.Errorf("index from %s: page %d at sequence %d, header says %d", p, i, idx.Sequence, hdr.Sequence))
		}
		if len(idx.Files) > 0 {
			if i > 0 && strings.Compare(idx.Files[0].Name, last) <= 0 {
				return fail(fmt.Errorf("index from %s: page %d overlaps the previous one", p, i))
			}
			last = idx.Files[len(idx.Files)-1].Name
		}
		if hdr.Status == statusFull {
			if err := e.peers.Put(out.key, idx.Files); err != nil {
				return fail(fmt.Errorf("index from %s: page %d: %w", p, i, err))
			}
			continue
		}
		if stage == "" && len(inMem)+len(idx.Files) <= e.cfg.stagedWindow {
			inMem = append(inMem, idx.Files...)
		} else {
			if stage == "" {
				stage = e.newPeerKey(folder, p)
				if err := e.peers.Put(stage, inMem); err != nil {
					return fail(fmt.Errorf("index from %s: page %d: %w", p, i, err))
				}
				inMem = nil
			}
			if err := e.peers.Put(stage, idx.Files); err != nil {
				return fail(fmt.Errorf("index from %s: page %d: %w", p, i, err))
			}
		}
		if !tooMany && len(pending)+len(idx.Files) > e.cfg.scopeNames {
			// Taken as a whole index would be (every entry looked at),
			// rather than held name by name.
			tooMany, pending = true, nil
		}
		if !tooMany {
			for _, fi := range idx.Files {
				pending = append(pending, fi.Name)
			}
		}
	}
	if hdr.Status == statusFull {
		if held != nil && held.key != "" {
			// The caller replaces held by out.
			if err := e.peers.Drop(held.key); err != nil {
				e.log.Debug("peer index not dropped", "err", err)
			}
		}
		return out, nil
	}
	// Every page verified: the delta goes into held's entries, which the
	// new index replaces. Should the store fail midway, held's stored
	// entries may be newer than its sequence says, which the next delta
	// (asked from held's sequence) mends.
	if stage == "" {
		if len(inMem) > 0 {
			if err := e.peers.Put(held.key, inMem); err != nil {
				return fail(fmt.Errorf("index from %s: %w", p, err))
			}
		}
	} else if err := e.peers.Move(held.key, stage); err != nil {
		return fail(fmt.Errorf("index from %s: %w", p, err))
	}
	out.key, out.base, out.delta = held.key, held.seq, pending
	if out.delta == nil && !tooMany {
		out.delta = []string{}
	}
	return out, nil
}
