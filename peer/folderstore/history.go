package folderstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
// deletions), author the device that made the change. read returns the
// content of a block the store does not hold yet (from the server's copy of
// the folder); a block it cannot give, or gives wrong (the file changed
// again since it was indexed), leaves its entry out of this snapshot, and
// Append returns the names left out: a later snapshot holds their newer
// version. Blocks are stored before the snapshot is committed (see Commit),
// and pinned (see Pin) until it is. A snapshot's time is never before its
// predecessor's: an earlier at is raised to it.
//
// When no entry is kept (changes is empty, or every one was left out),
// nothing is committed: Append returns the zero Snapshot (Seq 0) and the
// names left out.
func (s *Store) Append(folder string, at time.Time, changes []syncfs.FileInfo, author string, read func(name string, b syncfs.Block) ([]byte, error), opts ...AppendOption) (Snapshot, []string, error) {
	var o appendOptions
	for _, f := range opts {
		f(&o)
	}
	var all []syncfs.Hash
	for _, fi := range changes {
		for _, b := range liveBlocks(fi) {
			all = append(all, b.Hash)
		}
	}
	release := s.Pin(all...)
	defer release()
	kept := []syncfs.FileInfo{}
	var refs []syncfs.Hash
	var skipped []string
	for _, fi := range changes {
		ok, err := s.storeBlocks(fi, read)
		if err != nil {
			return Snapshot{}, nil, fmt.Errorf("writing a snapshot of %q: %w", folder, err)
		}
		if !ok {
			skipped = append(skipped, fi.Name)
			continue
		}
		kept = append(kept, fi)
		for _, b := range liveBlocks(fi) {
			refs = append(refs, b.Hash)
		}
	}
	if len(kept) == 0 {
		return Snapshot{}, skipped, nil
	}
	slices.SortStableFunc(kept, compareNames)
	for i := 1; i < len(kept); i++ {
		if kept[i].Name == kept[i-1].Name {
			return Snapshot{}, nil, fmt.Errorf("writing a snapshot of %q: %q changes twice", folder, kept[i].Name)
		}
	}
	snap := Snapshot{Folder: folder, Time: at.UnixNano(), Blocks: refs, Entries: kept, Author: author, Delta: true, Evidence: o.evidence,
		ReqUser: o.reqUser, ReqDevice: o.reqDevice}
	if len(o.evidence) > 0 {
		ev, err := openEvidence(snap)
		if err != nil {
			return Snapshot{}, nil, fmt.Errorf("writing a snapshot of %q: %v: %w", folder, err, ErrBadEvidence)
		}
		for _, fi := range kept {
			if err := ev.covers(fi); err != nil {
				return Snapshot{}, nil, fmt.Errorf("writing a snapshot of %q: %v: %w", folder, err, ErrBadEvidence)
			}
		}
	}
	snap, err := s.commit(snap)
	return snap, skipped, err
}

func liveBlocks(fi syncfs.FileInfo) []syncfs.Block {
	if fi.Deleted || fi.Type != syncfs.TypeFile {
		return nil
	}
	return fi.Blocks
}

// storeBlocks puts fi's blocks not yet held, read with read. It reports
// false if read could not give one right.
func (s *Store) storeBlocks(fi syncfs.FileInfo, read func(string, syncfs.Block) ([]byte, error)) (bool, error) {
	for _, b := range liveBlocks(fi) {
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
		if err := s.blocks.Put(b.Hash, data); err != nil {
			return false, err
		}
	}
	return true, nil
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
		c := fb.paths.Cursor()
		for k, _ := c.First(); k != nil; {
			name, _, ok := splitPathKey(k)
			if !ok {
				return fmt.Errorf("paths index key %x: %w", k, ErrTampered)
			}
			// The last key at or before name ‖ 0 ‖ seq.
			at := pathKey(name, seq)
			k2, _ := c.Seek(at)
			if k2 == nil || !bytes.Equal(k2, at) {
				if k2 == nil {
					k2, _ = c.Last()
				} else {
					k2, _ = c.Prev()
				}
			}
			if n2, s2, ok := splitPathKey(k2); ok && n2 == name && s2 <= seq {
				p.add(s2, name)
			}
			k, _ = c.Seek(append([]byte(name), 1))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the tree of %q at snapshot %d: %w", folder, seq, err)
	}
	slices.Sort(p.seqs)
	return p, nil
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

// SeqAt returns the last snapshot of folder committed at or before at, or
// an error wrapping ErrNoVersion. It is one seek in the times index.
func (s *Store) SeqAt(folder string, at time.Time) (uint64, error) {
	if s.db == nil {
		return 0, ErrClosed
	}
	var seq uint64
	err := s.db.View(func(tx *bbolt.Tx) error {
		fb, err := openFolder(tx, folder)
		if err != nil || fb == nil {
			return err
		}
		c := fb.times.Cursor()
		limit := timeKey(at.UnixNano(), math.MaxUint64)
		k, _ := c.Seek(limit)
		if k == nil || !bytes.Equal(k, limit) {
			if k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		}
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
	p = strings.Trim(path.Clean("/"+p), "/")
	pl := &plan{names: map[uint64][]string{}}
	err := s.db.View(func(tx *bbolt.Tx) error {
		fb, err := openFolder(tx, folder)
		if err != nil || fb == nil {
			return err
		}
		scan := func(prefix []byte) error {
			c := fb.paths.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				name, seq, ok := splitPathKey(k)
				if !ok {
					return fmt.Errorf("paths index key %x: %w", k, ErrTampered)
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
