package folderstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash"
	"iter"

	"github.com/zeebo/blake3"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/syncfs"
)

// RootContext is the BLAKE3 key-derivation context of snapshot roots. It
// is fixed: changing it changes every root.
const RootContext = "baton 2026-12-05 folder snapshot root v1"

// rooter computes a snapshot's root: BLAKE3 in derive-key mode with
// RootContext over the canonical encoding of the snapshot's header (every
// field but Root, ServerKey and ServerSig, Prev included, Blocks left out
// for a Delta snapshot), then each entry in name order as a uvarint length
// and its canonical encoding. Entries are fed one by one, so a snapshot of
// any size is checked without holding it.
type rooter struct {
	h     hash.Hash
	count uint64
	last  string
	err   error
}

func newRooter(snap Snapshot) (*rooter, error) {
	snap.Root, snap.ServerKey, snap.ServerSig, snap.Entries = syncfs.Hash{}, nil, nil, nil
	if snap.Delta {
		snap.Blocks = nil
	}
	hdr, err := canon.Marshal(snap)
	if err != nil {
		return nil, fmt.Errorf("encoding the header of snapshot %d of %q: %w", snap.Seq, snap.Folder, err)
	}
	r := &rooter{h: blake3.NewDeriveKey(RootContext)}
	r.h.Write(binary.AppendUvarint(nil, uint64(len(hdr))))
	r.h.Write(hdr)
	return r, nil
}

func (r *rooter) add(fi syncfs.FileInfo) {
	e, err := encodeEntry(fi)
	if err != nil && r.err == nil {
		r.err = err
	}
	r.addRaw(e)
}

// addRaw hashes an entry's canonical encoding as stored: an encoding
// altered in any way changes the root.
func (r *rooter) addRaw(e rawEntry) {
	if r.err != nil {
		return
	}
	if r.count > 0 && e.name <= r.last {
		r.err = fmt.Errorf("entries out of order at %q", e.name)
		return
	}
	r.h.Write(binary.AppendUvarint(nil, uint64(len(e.enc))))
	r.h.Write(e.enc)
	r.count++
	r.last = e.name
}

func (r *rooter) sum() (syncfs.Hash, error) {
	var out syncfs.Hash
	if r.err != nil {
		return out, r.err
	}
	copy(out[:], r.h.Sum(nil))
	return out, nil
}

// RootOf returns the root of snap with entries (its Root, ServerKey and
// ServerSig fields are ignored); entries may be nil for none.
func RootOf(snap Snapshot, entries iter.Seq[syncfs.FileInfo]) (syncfs.Hash, error) {
	r, err := newRooter(snap)
	if err != nil {
		return syncfs.Hash{}, err
	}
	if entries != nil {
		for fi := range entries {
			r.add(fi)
		}
	}
	return r.sum()
}

// seal sets snap's Root over its header and the entries feed gives the
// rooter, and signs it with the server key if the store has one.
func (s *Store) seal(snap *Snapshot, feed func(*rooter) error) error {
	r, err := newRooter(*snap)
	if err != nil {
		return err
	}
	if err := feed(r); err != nil {
		return err
	}
	root, err := r.sum()
	if err != nil {
		return err
	}
	snap.Root, snap.ServerKey, snap.ServerSig = root, nil, nil
	if s.key == nil {
		return nil
	}
	sig, err := s.key.Sign(PurposeSnapshot, root[:])
	if err != nil {
		return fmt.Errorf("signing snapshot %d of %q: %w", snap.Seq, snap.Folder, err)
	}
	snap.ServerKey, snap.ServerSig = s.key.Public().Raw(), sig
	return nil
}

// checkSignature checks snap's server signature of its root. A store with
// trusted keys requires one of them to have signed it; a store without
// only checks a signature that is there.
func (s *Store) checkSignature(snap Snapshot) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("snapshot %d of %q: %s: %w", snap.Seq, snap.Folder, fmt.Sprintf(format, args...), ErrTampered)
	}
	if snap.ServerSig == nil {
		if len(s.trusted) > 0 {
			return bad("not signed by the server")
		}
		return nil
	}
	pub, err := identity.ParsePublicKey(snap.ServerKey)
	if err != nil {
		return bad("signer key: %v", err)
	}
	if len(s.trusted) > 0 {
		ok := false
		for _, t := range s.trusted {
			ok = ok || t.Equal(pub)
		}
		if !ok {
			return bad("signed by %s, not a trusted server key", pub.ID())
		}
	}
	if err := pub.Verify(PurposeSnapshot, snap.Root[:], snap.ServerSig); err != nil {
		return bad("%v", err)
	}
	return nil
}

// checkSnapshot checks snap's signature, and its entries as stored in fb
// against its root and count (and its evidence, if it has some), passing
// each entry to fn as it is read; fn's error stops the check. What fn was
// given is to be trusted only if checkSnapshot returns nil.
func (s *Store) checkSnapshot(fb *folderTx, snap Snapshot, fn func(rawEntry) error) error {
	if err := s.checkSignature(snap); err != nil {
		return err
	}
	r, err := newRooter(snap)
	if err != nil {
		return err
	}
	var ev *evidence
	if len(snap.Evidence) > 0 {
		if ev, err = openEvidence(snap); err != nil {
			return fmt.Errorf("snapshot %d of %q: %v: %w", snap.Seq, snap.Folder, err, ErrTampered)
		}
	}
	err = fb.eachRaw(snap.Seq, func(e rawEntry) error {
		r.addRaw(e)
		if ev != nil {
			if err := ev.coversRaw(e); err != nil {
				return fmt.Errorf("snapshot %d of %q: %v: %w", snap.Seq, snap.Folder, err, ErrTampered)
			}
		}
		if fn != nil {
			return fn(e)
		}
		return nil
	})
	if err != nil {
		return err
	}
	root, err := r.sum()
	if err != nil {
		return fmt.Errorf("snapshot %d of %q: %v: %w", snap.Seq, snap.Folder, err, ErrTampered)
	}
	if r.count != snap.Count {
		return fmt.Errorf("snapshot %d of %q holds %d entries, its header says %d: %w", snap.Seq, snap.Folder, r.count, snap.Count, ErrTampered)
	}
	if root != snap.Root {
		return fmt.Errorf("snapshot %d of %q hashes to %x, its root is %x: %w", snap.Seq, snap.Folder, root[:8], snap.Root[:8], ErrTampered)
	}
	return nil
}

// evidence is a snapshot's evidence opened: each page's signature checked
// (syncfs.OpenIndex), and the entries they sign by name.
type evidence struct {
	entries map[string][][]byte // canonical encodings
}

// openEvidence opens snap's evidence pages: each must be a valid signed
// index of snap's folder, and snap's author must have signed one.
func openEvidence(snap Snapshot) (*evidence, error) {
	ev := &evidence{entries: map[string][][]byte{}}
	byAuthor := false
	for i, page := range snap.Evidence {
		idx, _, err := syncfs.OpenIndex(page)
		if err != nil {
			return nil, fmt.Errorf("evidence page %d: %w", i, err)
		}
		if idx.Folder != snap.Folder {
			return nil, fmt.Errorf("evidence page %d is an index of folder %q", i, idx.Folder)
		}
		byAuthor = byAuthor || idx.Device == snap.Author
		for _, fi := range idx.Files {
			b, err := canon.Marshal(fi)
			if err != nil {
				return nil, err
			}
			ev.entries[fi.Name] = append(ev.entries[fi.Name], b)
		}
	}
	if !byAuthor {
		return nil, fmt.Errorf("no evidence page is signed by the author %s", snap.Author)
	}
	return ev, nil
}

// covers reports an error unless fi, exactly, is in a page.
func (ev *evidence) covers(fi syncfs.FileInfo) error {
	e, err := encodeEntry(fi)
	if err != nil {
		return err
	}
	return ev.coversRaw(e)
}

func (ev *evidence) coversRaw(e rawEntry) error {
	for _, p := range ev.entries[e.name] {
		if bytes.Equal(p, e.enc) {
			return nil
		}
	}
	return fmt.Errorf("entry %q is in no evidence page as stored", e.name)
}
