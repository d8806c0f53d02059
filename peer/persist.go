package peer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/internal/atomicfile"
)

// epochFile persists the highest epoch this server has seen, granted or
// used, so fencing survives restarts. It is written (and fsynced) before the
// epoch is used.
type epochFile struct{ path string }

func (e epochFile) load() (uint64, error) {
	b, err := os.ReadFile(e.path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("loading epoch: %w", err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("loading epoch from %s: %w", e.path, err)
	}
	return v, nil
}

func (e epochFile) save(v uint64) error {
	if err := atomicfile.WriteFile(e.path, []byte(strconv.FormatUint(v, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("persisting epoch %d: %w", v, err)
	}
	return nil
}

// outbox keeps this host's signed updates until they are committed: one
// file per update once its submitter is told it is queued, so it survives
// restarts and failovers.
type outbox struct {
	dir     string
	entries map[[32]byte]outboxEntry
}

type outboxEntry struct {
	su   collections.SignedUpdate
	file string
}

func openOutbox(dir string) (*outbox, []string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("opening outbox %s: %w", dir, err)
	}
	ob := &outbox{dir: dir, entries: map[[32]byte]outboxEntry{}}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("opening outbox %s: %w", dir, err)
	}
	var bad []string
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), ".update") {
			continue
		}
		p := filepath.Join(dir, de.Name())
		b, err := os.ReadFile(p)
		if err == nil {
			var su collections.SignedUpdate
			if su, err = collections.UnmarshalSignedUpdate(b); err == nil {
				ob.entries[su.Hash()] = outboxEntry{su: su, file: p}
				continue
			}
		}
		// A file that does not decode cannot be sent; keep it aside for
		// the operator rather than deleting it.
		bad = append(bad, fmt.Sprintf("%s: %v", p, err))
		_ = os.Rename(p, p+".bad")
	}
	return ob, bad, nil
}

// add keeps su in the outbox, in memory until persist writes it: an update
// that is committed before its submitter is answered never needs the disk.
func (o *outbox) add(su collections.SignedUpdate) {
	o.entries[su.Hash()] = outboxEntry{su: su}
}

// persist writes the entry with hash h to disk, if it is only in memory.
func (o *outbox) persist(h [32]byte) error {
	e, ok := o.entries[h]
	if !ok || e.file != "" {
		return nil
	}
	u := e.su.Update()
	p := filepath.Join(o.dir, fmt.Sprintf("%s-%020d.update", u.Collection, u.Seq))
	if err := atomicfile.WriteFile(p, e.su.Marshal(), 0o600); err != nil {
		return fmt.Errorf("keeping update in the outbox: %w", err)
	}
	e.file = p
	o.entries[h] = e
	return nil
}

// persistAll writes every entry still only in memory.
func (o *outbox) persistAll() error {
	var first error
	for h := range o.entries {
		if err := o.persist(h); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (o *outbox) remove(h [32]byte) {
	e, ok := o.entries[h]
	if !ok {
		return
	}
	delete(o.entries, h)
	if e.file != "" {
		_ = os.Remove(e.file)
	}
}

// list returns the pending updates in send order (collection, then seq).
func (o *outbox) list() []collections.SignedUpdate {
	out := make([]collections.SignedUpdate, 0, len(o.entries))
	for _, e := range o.entries {
		out = append(out, e.su)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Update(), out[j].Update()
		if a.Collection != b.Collection {
			return a.Collection < b.Collection
		}
		return a.Seq < b.Seq
	})
	return out
}

// maxSeq and maxClock are the highest pending numbers, so new updates
// number after them.
func (o *outbox) maxSeq(k collections.Kind) (seq uint64) {
	for _, e := range o.entries {
		if u := e.su.Update(); u.Collection == k && u.Seq > seq {
			seq = u.Seq
		}
	}
	return seq
}

func (o *outbox) maxClock() (c uint64) {
	for _, e := range o.entries {
		if u := e.su.Update(); u.Clock > c {
			c = u.Clock
		}
	}
	return c
}

// memStorage is an in-memory collections.Storage used to check a data file
// against the in-memory state.
type memStorage map[collections.Kind][][]byte

func (m memStorage) Append(k collections.Kind, rec []byte) error {
	m[k] = append(m[k], rec)
	return nil
}

func (m memStorage) Replace(k collections.Kind, recs [][]byte) error {
	m[k] = recs
	return nil
}

func (m memStorage) Load(k collections.Kind) (collections.Loaded, error) {
	l := collections.Loaded{File: "memory:" + k.String(), TornAt: -1}
	for i, r := range m[k] {
		l.Entries = append(l.Entries, collections.Entry{Offset: int64(i), Data: r})
	}
	return l, nil
}
