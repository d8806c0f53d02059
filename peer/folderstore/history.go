package folderstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"math"
	"path"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/baton-sync/baton/syncfs"
)

// ErrNoVersion is returned for a time before a folder's first snapshot, or
// a path no snapshot names.
var ErrNoVersion = errors.New("no version")

// Version is one version of one path in a folder's history: what a
// snapshot changed it to (a tombstone for a deletion).
type Version struct {
	Seq    uint64          // the snapshot that made it
	Time   time.Time       // when that snapshot was committed
	Device string          // the device that authored it (see Author)
	Entry  syncfs.FileInfo // the entry as it became
	// ReqUser and ReqDevice: who asked for the change, when its author
	// made it on their behalf (a restore; WithRequester).
	ReqUser, ReqDevice string
}

// Author returns the device that made fi's version: the one with the
// highest counter in its vector (syncfs.Vector.Update), or "" for an empty
// vector.
func Author(fi syncfs.FileInfo) string {
	var dev string
	var top uint64
	for _, c := range fi.Version.Counters {
		if c.Value > top {
			dev, top = c.Device, c.Value
		}
	}
	return dev
}

// AppendOption configures one Append.
type AppendOption func(*appendOptions)

type appendOptions struct {
	evidence           [][]byte
	reqUser, reqDevice string
	author             string
	authorSet          bool
}

// WithAuthor names the device that made the change (Snapshot.Author).
// AppendFrom without it records the device that authored most of the
// entries kept (Author of each; the first by ID among equals).
func WithAuthor(device string) AppendOption {
	return func(o *appendOptions) { o.author, o.authorSet = device, true }
}

// WithRequester records who asked for the change, when the author made it
// on their behalf: the user and device that asked the server to restore
// (Snapshot.ReqUser, ReqDevice; Version.ReqUser, ReqDevice).
func WithRequester(user, device string) AppendOption {
	return func(o *appendOptions) { o.reqUser, o.reqDevice = user, device }
}

// WithEvidence gives the authoring device's signed index pages (the
// envelopes syncfs.SignIndex returns, as received) that hold the change:
// Append checks that every entry it records is, exactly, in a page, that
// each page is a signed index of the folder, and that the author signed
// one (else ErrBadEvidence); the pages are kept in the snapshot and
// checked again by Verify and every read.
func WithEvidence(pages ...[]byte) AppendOption {
	return func(o *appendOptions) { o.evidence = append(o.evidence, pages...) }
}

// Append records a new snapshot of folder at time at: changes are the
// entries that changed since the folder's previous snapshot (tombstones for
// deletions), author the device that made the change. It is AppendFrom
// with the entries of a slice and WithAuthor(author).
func (s *Store) Append(folder string, at time.Time, changes []syncfs.FileInfo, author string, read func(name string, b syncfs.Block) ([]byte, error), opts ...AppendOption) (Snapshot, []string, error) {
	all := func(yield func(syncfs.FileInfo, error) bool) {
		for _, fi := range changes {
			if !yield(fi, nil) {
				return
			}
		}
	}
	return s.AppendFrom(folder, at, all, read, append(opts, WithAuthor(author))...)
}

// AppendFrom records a new snapshot of folder at time at: changes yields
// the entries that changed since the folder's previous snapshot
// (tombstones for deletions), each name once; an error it yields ends the
// Append with nothing committed. read returns the content of a block the
// store does not hold yet (from the server's copy of the folder); a block
// it cannot give, or gives wrong (the file changed again since it was
// indexed), leaves its entry out of this snapshot, and AppendFrom returns
// the names left out: a later snapshot holds their newer version. A
// snapshot's time is never before its predecessor's: an earlier at is
// raised to it.
//
// Changes are taken appendChunk at a time: their blocks are stored (and
// pinned, see Pin, until their entries are written), then their entries
// written in one transaction; once all are, the snapshot's header is
// committed in a last one (see pending.go), so that what AppendFrom holds
// does not grow with the change (changes is read as it goes, never
// whole), and a crash leaves the folder as it was or with the new
// snapshot, whole. Changes in name order are written fastest. It returns
// the snapshot's header: Entries and Blocks are not filled in (Snapshot
// reads them).
//
// When no entry is kept (changes yields none, or every one was left
// out), nothing is committed: AppendFrom returns the zero Snapshot (Seq 0)
// and the names left out.
func (s *Store) AppendFrom(folder string, at time.Time, changes iter.Seq2[syncfs.FileInfo, error], read func(name string, b syncfs.Block) ([]byte, error), opts ...AppendOption) (Snapshot, []string, error) {
	var o appendOptions
	for _, f := range opts {
		f(&o)
	}
	if s.db == nil {
		return Snapshot{}, nil, ErrClosed
	}
	if folder == "" {
		return Snapshot{}, nil, errors.New("writing a snapshot: no folder name")
	}
	if len(o.evidence) > 0 && !o.authorSet {
		return Snapshot{}, nil, fmt.Errorf("writing a snapshot of %q: evidence without its author: %w", folder, ErrBadEvidence)
	}
	defer s.settle()
	snap := Snapshot{Folder: folder, Time: at.UnixNano(), Author: o.author, Delta: true, Evidence: o.evidence,
		ReqUser: o.reqUser, ReqDevice: o.reqDevice}
	var ev *evidence
	if len(o.evidence) > 0 {
		var err error
		if ev, err = openEvidence(snap); err != nil {
			return Snapshot{}, nil, fmt.Errorf("writing a snapshot of %q: %v: %w", folder, err, ErrBadEvidence)
		}
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.dropPending(folder); err != nil {
		return Snapshot{}, nil, fmt.Errorf("writing a snapshot of %q: %w", folder, err)
	}
	var seq uint64
	err := s.db.View(func(tx *bbolt.Tx) error {
		fb, err := s.openFolder(tx, folder)
		if fb != nil {
			seq = fb.lastSeq()
		}
		return err
	})
	if err != nil {
		return Snapshot{}, nil, fmt.Errorf("writing a snapshot of %q: %w", folder, err)
	}
	seq++
	var (
		skipped []string
		count   uint64
		authors = authorCount{}
		window  []syncfs.FileInfo
	)
	next, stop := iter.Pull2(changes)
	defer stop()
	for more := true; more; {
		window, more, err = s.nextChunk(window[:0], next)
		if err == nil && len(window) > 0 {
			var kept []syncfs.FileInfo
			var sk []string
			kept, sk, err = s.appendChunk(folder, seq, window, read, ev)
			skipped = append(skipped, sk...)
			count += uint64(len(kept))
			authors.add(kept)
		}
		if err != nil {
			s.abandon(folder)
			return Snapshot{}, nil, fmt.Errorf("writing a snapshot of %q: %w", folder, err)
		}
	}
	if count == 0 {
		return Snapshot{}, skipped, nil
	}
	if !o.authorSet {
		snap.Author = authors.most()
	}
	err = s.update(func(tx *bbolt.Tx) error {
		fb, err := s.openFolder(tx, folder)
		if err != nil {
			return err
		}
		if fb == nil {
			return fmt.Errorf("the folder's entries are gone: %w", ErrSnapshotNotFound)
		}
		if k, v := fb.snaps.Cursor().Last(); k != nil {
			last, err := decodeHeader(folder, k, v)
			if err != nil {
				return err
			}
			snap.Prev = last.Root
			snap.Time = max(snap.Time, last.Time)
			if last.Seq+1 != seq {
				return fmt.Errorf("the last snapshot is %d, the entries were written as %d", last.Seq, seq)
			}
		}
		snap.Seq, snap.Count = seq, count
		var written uint64
		if err := s.seal(&snap, func(r *rooter) error {
			return fb.eachRaw(seq, func(e rawEntry) error {
				r.addRaw(e)
				written++
				return nil
			})
		}); err != nil {
			return err
		}
		if written != count {
			return fmt.Errorf("%d entries written for the snapshot, %d stored", count, written)
		}
		if err := s.step("put"); err != nil {
			return err
		}
		if err := fb.putHeader(snap); err != nil {
			return err
		}
		return s.step("tx")
	})
	if err != nil {
		s.abandon(folder)
		return Snapshot{}, nil, fmt.Errorf("writing a snapshot of %q: %w", folder, err)
	}
	return snap, skipped, nil
}

// nextChunk appends to window the next changes next yields, up to s.chunk
// of them or appendChunkBlocks of their blocks, and reports whether next
// may yield more.
func (s *Store) nextChunk(window []syncfs.FileInfo, next func() (syncfs.FileInfo, error, bool)) ([]syncfs.FileInfo, bool, error) {
	blocks := 0
	for len(window) < s.chunk && blocks < appendChunkBlocks {
		fi, err, ok := next()
		if !ok {
			return window, false, nil
		}
		if err != nil {
			return window, false, fmt.Errorf("reading the changes: %w", err)
		}
		window = append(window, fi)
		blocks += len(fi.Blocks)
	}
	return window, true, nil
}

// authorCount counts the entries each device authored (Author).
type authorCount map[string]int

func (a authorCount) add(entries []syncfs.FileInfo) {
	for _, fi := range entries {
		a[Author(fi)]++
	}
}

// most returns the device that authored most entries, the first by ID
// among equals.
func (a authorCount) most() string {
	best := ""
	for _, d := range slices.Sorted(maps.Keys(a)) {
		if a[d] > a[best] || best == "" {
			best = d
		}
	}
	return best
}

// appendChunk stores the blocks of changes and writes the entries kept
// as snapshot seq's, pending, in one transaction. It returns the entries
// it wrote and the names left out.
func (s *Store) appendChunk(folder string, seq uint64, changes []syncfs.FileInfo, read func(string, syncfs.Block) ([]byte, error), ev *evidence) ([]syncfs.FileInfo, []string, error) {
	var hs []syncfs.Hash
	for _, fi := range changes {
		for _, b := range liveBlocks(fi) {
			hs = append(hs, b.Hash)
		}
	}
	// Pinned until the entries that reference them are written and told
	// to a collection under way, which from then counts them.
	release := s.Pin(hs...)
	defer release()
	if err := s.step("check"); err != nil {
		return nil, nil, err
	}
	var skipped []string
	kept := make([]syncfs.FileInfo, 0, len(changes))
	raws := make([]rawEntry, 0, len(changes))
	bb := &blockBatch{queued: map[syncfs.Hash]bool{}}
	for _, fi := range changes {
		ok, err := s.storeBlocks(fi, read, bb)
		if err != nil {
			return nil, skipped, err
		}
		if !ok {
			skipped = append(skipped, fi.Name)
			continue
		}
		raw, err := encodeEntry(fi)
		if err != nil {
			return nil, skipped, err
		}
		if ev != nil {
			if err := ev.coversRaw(raw); err != nil {
				return nil, skipped, fmt.Errorf("%v: %w", err, ErrBadEvidence)
			}
		}
		raws = append(raws, raw)
		kept = append(kept, fi)
	}
	// Every block durable before an entry references it.
	if err := s.flushBlocks(bb); err != nil {
		return nil, skipped, err
	}
	if len(raws) == 0 {
		return nil, skipped, nil
	}
	err := s.update(func(tx *bbolt.Tx) error {
		if err := s.step("entries"); err != nil {
			return err
		}
		fb, err := s.createFolder(tx, folder)
		if err != nil {
			return err
		}
		for _, e := range raws {
			k := entryKey(seq, e.name)
			if fb.entries.Get(k) != nil {
				return fmt.Errorf("%q changes twice", e.name)
			}
			if err := fb.putEntry(seq, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, skipped, err
	}
	s.noteCommitted(hs)
	return kept, skipped, nil
}

// abandon removes the pending entries of an Append that failed; what it
// cannot remove the next Append, Commit or Open does.
func (s *Store) abandon(folder string) {
	if s.step("cleanup") != nil {
		return
	}
	_ = s.dropPending(folder)
}

func liveBlocks(fi syncfs.FileInfo) []syncfs.Block {
	if fi.Deleted || fi.Type != syncfs.TypeFile {
		return nil
	}
	return fi.Blocks
}

// blockBatchBytes bounds the blocks an Append reads before it stores
// them (BatchPutter).
const blockBatchBytes = 8 << 20

// blockBatch is blocks read and not stored yet.
type blockBatch struct {
	hs     []syncfs.Hash
	data   [][]byte
	size   int
	queued map[syncfs.Hash]bool // read, stored or not
}

// storeBlocks reads fi's blocks not yet held with read into bb, storing
// bb whenever it is full. It reports false if read could not give one
// right.
func (s *Store) storeBlocks(fi syncfs.FileInfo, read func(string, syncfs.Block) ([]byte, error), bb *blockBatch) (bool, error) {
	for _, b := range liveBlocks(fi) {
		if bb.queued[b.Hash] {
			continue
		}
		held, err := s.blocks.Has(b.Hash)
		if err != nil {
			return false, err
		}
		if held {
			continue
		}
		data, err := read(fi.Name, b)
		if err != nil || uint32(len(data)) != b.Size || syncfs.HashBytes(data) != b.Hash {
			return false, nil
		}
		bb.hs, bb.data, bb.size = append(bb.hs, b.Hash), append(bb.data, data), bb.size+len(data)
		bb.queued[b.Hash] = true
		if bb.size >= blockBatchBytes {
			if err := s.flushBlocks(bb); err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// flushBlocks stores the blocks of bb, at once if the block store is a
// BatchPutter.
func (s *Store) flushBlocks(bb *blockBatch) error {
	if len(bb.hs) == 0 {
		return nil
	}
	if d, ok := s.blocks.(*Disk); ok {
		// storeBlocks hashed each block as it read it.
		if err := d.putBatch(bb.hs, bb.data, true); err != nil {
			return err
		}
	} else if bp, ok := s.blocks.(BatchPutter); ok {
		if err := bp.PutBatch(bb.hs, bb.data); err != nil {
			return err
		}
	} else {
		for i, h := range bb.hs {
			if err := s.blocks.Put(h, bb.data[i]); err != nil {
				return err
			}
		}
	}
	clear(bb.data)
	bb.hs, bb.data, bb.size = bb.hs[:0], bb.data[:0], 0
	return nil
}

// plan is which entries make up a folder's tree at one snapshot: for each
// path, the snapshot that holds its last version by then, grouped by
// snapshot.
type plan struct {
	seqs  []uint64            // ascending
	names map[uint64][]string // each in name order
}

func (p *plan) add(seq uint64, name string) {
	if _, ok := p.names[seq]; !ok {
		p.seqs = append(p.seqs, seq)
	}
	p.names[seq] = append(p.names[seq], name)
}

// atOrBefore moves c to the last key at or before key and returns it (nil
// if there is none).
func atOrBefore(c *bbolt.Cursor, key []byte) []byte {
	k, _ := c.Seek(key)
	if k != nil && bytes.Equal(k, key) {
		return k
	}
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	return k
}

// treePlan finds, with one seek per path in the paths index (never a replay
// of the history), the version of each path in folder's tree at seq.
func (s *Store) treePlan(folder string, seq uint64) (*plan, error) {
	if s.db == nil {
		return nil, ErrClosed
	}
	p := &plan{names: map[uint64][]string{}}
	if seq == 0 {
		return p, nil
	}
	err := s.viewSnapshot(folder, seq, func(fb *folderTx, _ Snapshot) error {
		return fb.eachPathAt(seq, func(name string, at uint64) error {
			p.add(at, name)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading the tree of %q at snapshot %d: %w", folder, seq, err)
	}
	slices.Sort(p.seqs)
	return p, nil
}

// eachPathAt calls fn, in name order, with each path of the tree at
// snapshot seq (tombstones included) and the snapshot that holds its
// version there: a seek per path in the paths index.
func (f *folderTx) eachPathAt(seq uint64, fn func(name string, at uint64) error) error {
	c := f.paths.Cursor()
	for k, _ := c.First(); k != nil; {
		f.touched()
		name, _, ok := splitPathKey(k)
		if !ok {
			return fmt.Errorf("paths index key %x: %w", k, ErrTampered)
		}
		// The last key at or before name ‖ 0 ‖ seq.
		k2 := atOrBefore(c, pathKey(name, seq))
		if n2, s2, ok := splitPathKey(k2); ok && n2 == name && s2 <= seq {
			if err := fn(name, s2); err != nil {
				return err
			}
		}
		k, _ = c.Seek(append([]byte(name), 1))
	}
	return nil
}

// checkUsed checks each of the snapshots used (those a read took entries
// from) against its signed root. checked, if not nil, holds the roots of
// snapshots checked already (skipped while their header names the same
// root) and gets those checked now.
func (s *Store) checkUsed(fb *folderTx, used map[uint64]bool, checked map[uint64]syncfs.Hash) error {
	for _, seq := range slices.Sorted(maps.Keys(used)) {
		hdr, err := fb.header(seq)
		if err != nil {
			return err
		}
		if root, ok := checked[seq]; ok && root == hdr.Root {
			continue
		}
		if err := s.checkSnapshot(fb, hdr, nil); err != nil {
			return err
		}
		if checked != nil {
			checked[seq] = hdr.Root
		}
	}
	return nil
}

// pick reads, checked (checkSnapshot), snapshot seq's header and its
// entries named in names (sorted), in one read transaction.
func (s *Store) pick(folder string, seq uint64, names []string) (Snapshot, []syncfs.FileInfo, error) {
	var snap Snapshot
	out := make([]syncfs.FileInfo, 0, len(names))
	if s.onRead != nil {
		s.onRead(seq)
	}
	err := s.viewSnapshot(folder, seq, func(fb *folderTx, hdr Snapshot) error {
		snap = hdr
		i := 0
		err := s.checkSnapshot(fb, hdr, func(e rawEntry) error {
			for i < len(names) && names[i] < e.name {
				i++
			}
			if i < len(names) && names[i] == e.name {
				fi, err := e.decode(seq)
				if err != nil {
					return err
				}
				out = append(out, fi)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(out) != len(names) {
			return fmt.Errorf("the paths index names %d entries of snapshot %d, it holds %d of them: %w", len(names), seq, len(out), ErrTampered)
		}
		return nil
	})
	if err != nil {
		return Snapshot{}, nil, fmt.Errorf("reading snapshot %d of %q: %w", seq, folder, err)
	}
	return snap, out, nil
}

// eachTreeEntry calls fn with every entry (tombstones included) of folder's
// tree at seq, one snapshot's share at a time, each checked against its
// signed root before any of it is passed on. It holds the plan (the paths)
// and one snapshot's share, never the history.
func (s *Store) eachTreeEntry(folder string, seq uint64, fn func(syncfs.FileInfo) error) error {
	defer s.settle()
	p, err := s.treePlan(folder, seq)
	if err != nil {
		return err
	}
	for _, sq := range p.seqs {
		_, entries, err := s.pick(folder, sq, p.names[sq])
		if err != nil {
			return fmt.Errorf("reading the tree of %q at snapshot %d: %w", folder, seq, err)
		}
		for _, fi := range entries {
			if err := fn(fi); err != nil {
				return err
			}
		}
	}
	return nil
}

// Tree returns folder's entries as of snapshot seq (tombstones included),
// or an error wrapping ErrSnapshotNotFound if there is no such snapshot
// (seq 0 is the empty tree). Every entry is checked against its snapshot's
// signed root (ErrTampered). Its cost is a seek per path and reading the
// snapshots that hold the tree's entries, not the whole history.
func (s *Store) Tree(folder string, seq uint64) (syncfs.Snapshot, error) {
	tree := syncfs.Snapshot{}
	err := s.eachTreeEntry(folder, seq, func(fi syncfs.FileInfo) error {
		tree[fi.Name] = fi
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tree, nil
}

// Changed returns those of entries (names unique) whose path's version in
// folder's latest snapshot's tree is absent or not same as it, in the
// order given: all of them for a folder with no snapshot. It is
// Compare(folder, same).Changed(entries).
func (s *Store) Changed(folder string, entries []syncfs.FileInfo, same func(stored, entry syncfs.FileInfo) bool) ([]syncfs.FileInfo, error) {
	return s.Compare(folder, same).Changed(entries)
}

// Comparison compares entries with a folder's latest tree a window at a
// time (Changed), so that a comparison of a whole folder holds a window,
// never the folder: each snapshot it takes a stored entry from is checked
// against its signed root once, at the first window that reads one.
type Comparison struct {
	s       *Store
	folder  string
	same    func(stored, entry syncfs.FileInfo) bool
	checked map[uint64]syncfs.Hash // the snapshots checked, and their roots
}

// Compare returns a comparison of entries with folder's latest tree,
// where same says whether an entry is the version stored.
func (s *Store) Compare(folder string, same func(stored, entry syncfs.FileInfo) bool) *Comparison {
	return &Comparison{s: s, folder: folder, same: same, checked: map[uint64]syncfs.Hash{}}
}

// Changed returns those of entries (names unique) whose path's version in
// the folder's latest snapshot's tree (at the time of this call) is absent
// or not the same, in the order given: all of them for a folder with no
// snapshot. It reads, in one read transaction, each path's version with a
// seek in the paths index and a lookup of its entry, then checks every
// snapshot it took one from and that no earlier window of the comparison
// checked against its signed root (ErrTampered).
func (c *Comparison) Changed(entries []syncfs.FileInfo) ([]syncfs.FileInfo, error) {
	s := c.s
	if s.db == nil {
		return nil, ErrClosed
	}
	defer s.settle()
	var out []syncfs.FileInfo
	err := s.db.View(func(tx *bbolt.Tx) error {
		out = nil
		fb, err := s.openFolder(tx, c.folder)
		if err != nil {
			return err
		}
		if fb == nil {
			out = entries
			return nil
		}
		last := fb.lastSeq()
		used := map[uint64]bool{}
		cur := fb.paths.Cursor()
		for _, fi := range entries {
			at := pathKey(fi.Name, last)
			k := atOrBefore(cur, at)
			name, seq, ok := splitPathKey(k)
			if !ok || name != fi.Name || seq > last {
				out = append(out, fi)
				continue
			}
			v := fb.entries.Get(entryKey(seq, name))
			if v == nil {
				return fmt.Errorf("the paths index names %q in snapshot %d, which does not hold it: %w", name, seq, ErrTampered)
			}
			fb.touched()
			stored, err := rawEntry{name, v}.decode(seq)
			if err != nil {
				return err
			}
			used[seq] = true
			if !c.same(stored, fi) {
				out = append(out, fi)
			}
		}
		return s.checkUsed(fb, used, c.checked)
	})
	if err != nil {
		return nil, fmt.Errorf("comparing %d entries with the history of %q: %w", len(entries), c.folder, err)
	}
	return out, nil
}

// SeqAt returns the last snapshot of folder committed at or before at, or
// an error wrapping ErrNoVersion. It is one seek in the times index.
func (s *Store) SeqAt(folder string, at time.Time) (uint64, error) {
	if s.db == nil {
		return 0, ErrClosed
	}
	var seq uint64
	err := s.db.View(func(tx *bbolt.Tx) error {
		fb, err := s.openFolder(tx, folder)
		if err != nil || fb == nil {
			return err
		}
		c := fb.times.Cursor()
		limit := timeKey(at.UnixNano(), math.MaxUint64)
		k := atOrBefore(c, limit)
		if k == nil {
			return nil
		}
		if len(k) != 16 {
			return fmt.Errorf("times index key %x: %w", k, ErrTampered)
		}
		seq = binary.BigEndian.Uint64(k[8:])
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("finding the snapshot of %q at %s: %w", folder, at.Format(time.RFC3339), err)
	}
	if seq == 0 {
		return 0, fmt.Errorf("folder %q at %s: %w (its history starts later)", folder, at.Format(time.RFC3339), ErrNoVersion)
	}
	return seq, nil
}

// History returns the versions of p in folder, oldest first: of the file
// or symlink at p, or of every entry under the directory p ("" for the
// whole folder). It is a range scan of the paths index; each snapshot that
// holds a version is checked against its signed root (ErrTampered).
func (s *Store) History(folder, p string) ([]Version, error) {
	if s.db == nil {
		return nil, ErrClosed
	}
	defer s.settle()
	p = strings.Trim(path.Clean("/"+p), "/")
	pl := &plan{names: map[uint64][]string{}}
	err := s.db.View(func(tx *bbolt.Tx) error {
		fb, err := s.openFolder(tx, folder)
		if err != nil || fb == nil {
			return err
		}
		last := fb.lastSeq()
		scan := func(prefix []byte) error {
			c := fb.paths.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				fb.touched()
				name, seq, ok := splitPathKey(k)
				if !ok {
					return fmt.Errorf("paths index key %x: %w", k, ErrTampered)
				}
				if seq > last {
					continue // pending: an Append under way
				}
				pl.add(seq, name)
			}
			return nil
		}
		if p == "" {
			return scan(nil)
		}
		if err := scan(append([]byte(p), 0)); err != nil {
			return err
		}
		return scan([]byte(p + "/"))
	})
	if err != nil {
		return nil, fmt.Errorf("reading the history of %q in %q: %w", p, folder, err)
	}
	slices.Sort(pl.seqs)
	var out []Version
	for _, seq := range pl.seqs {
		names := pl.names[seq]
		slices.Sort(names)
		hdr, entries, err := s.pick(folder, seq, names)
		if err != nil {
			return nil, fmt.Errorf("reading the history of %q in %q: %w", p, folder, err)
		}
		for _, fi := range entries {
			out = append(out, Version{Seq: seq, Time: hdr.At(), Device: Author(fi), Entry: fi, ReqUser: hdr.ReqUser, ReqDevice: hdr.ReqDevice})
		}
	}
	return out, nil
}

// Under reports whether name is p or inside the directory p ("" holds
// everything).
func Under(name, p string) bool {
	p = strings.Trim(path.Clean("/"+p), "/")
	return p == "" || name == p || strings.HasPrefix(name, p+"/")
}

// ReadFile writes the content of the live file fi to w, block by block,
// each checked against its hash (Get) before it is written.
func (s *Store) ReadFile(fi syncfs.FileInfo, w io.Writer) error {
	for _, b := range liveBlocks(fi) {
		data, err := s.blocks.Get(b.Hash)
		if err != nil {
			return fmt.Errorf("reading %s: %w", fi.Name, err)
		}
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("reading %s: %w", fi.Name, err)
		}
	}
	return nil
}

// Export writes folder's tree as of snapshot seq into dir as plain files
// (WriteTree): directories, files (every block checked) and symlinks;
// tombstones are not written. dir must not exist yet or be empty. Entries
// are checked against their snapshot's signed root before any is written,
// and blocks against their hashes: a tampered snapshot or block stops the
// export with an error (ErrTampered, ErrCorruptBlock) and its data is not
// written. The tree is read one snapshot's share at a time, not held
// whole.
func (s *Store) Export(folder string, seq uint64, dir string) error {
	each := func(yield func(syncfs.FileInfo) error) error {
		return s.eachTreeEntry(folder, seq, func(fi syncfs.FileInfo) error {
			if fi.Deleted {
				return nil
			}
			return yield(fi)
		})
	}
	if err := WriteTree(dir, each, s.ReadBlocks); err != nil {
		return fmt.Errorf("exporting %q to %s: %w", folder, dir, err)
	}
	return nil
}

// ReadBlocks returns the contents of bs from the block store, each checked
// against its hash (a BlockReader).
func (s *Store) ReadBlocks(bs []syncfs.Block) ([][]byte, error) {
	out := make([][]byte, len(bs))
	for i, b := range bs {
		data, err := s.blocks.Get(b.Hash)
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}
