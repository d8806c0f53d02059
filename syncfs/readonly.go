package syncfs

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// A read-only member's device scans its folder like any other, so its own
// changes get versions of its own, but nobody takes them: the server
// ignores its index. The device keeps following the server: where the
// server changes an entry the device changed too (concurrent versions),
// the server's version wins, whatever Plan's winner rule would say, and
// the device's content is kept beside it as a conflict copy; Revert does
// the same for every local change. Afterwards the device's entries carry
// the server's versions exactly, so later server changes apply plainly.

// sameState reports whether l and s hold the same thing with the same
// metadata (two tombstones are the same).
func sameState(l, s FileInfo) bool {
	if l.Deleted || s.Deleted {
		return l.Deleted == s.Deleted
	}
	return l.SameContent(s) && l.SameMetadata(s)
}

// isLocalChange reports whether the local entry l (s: the server's, if
// ok) is a change the server has not accepted.
func isLocalChange(l, s FileInfo, ok bool) bool {
	if !ok {
		return !l.Deleted
	}
	if o := l.Version.Compare(s.Version); o == Equal || o == Lesser {
		return false
	}
	return !sameState(l, s)
}

// LocalChanges lists the entries of local that are changes the server
// (whose index is server) has not accepted. Conflict copies the server
// does not have, and the directories holding them, are not counted: they
// are kept for the user and never reverted.
func LocalChanges(local Entries, server Snapshot) []string {
	holders := map[string]bool{}
	for n, l := range local.All() {
		if _, ok := server[n]; !ok && !l.Deleted && IsConflictCopy(n) {
			for d := path.Dir(n); d != "."; d = path.Dir(d) {
				holders[d] = true
			}
		}
	}
	var out []string
	for n, l := range local.All() {
		s, ok := server[n]
		if !ok && (IsConflictCopy(n) || l.Type == TypeDir && holders[n]) {
			continue
		}
		if isLocalChange(l, s, ok) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// ChangeCount keeps the number of LocalChanges up to date entry by entry,
// so that a change costs what it touches, not the folder.
type ChangeCount struct {
	changes map[string]bool // local changes, conflict copies the server lacks aside
	copies  map[string]bool // live local conflict copies the server lacks
}

// Reset forgets everything counted.
func (c *ChangeCount) Reset() {
	c.changes, c.copies = map[string]bool{}, map[string]bool{}
}

// Update recounts the entry n, given the local one (l, if okL) and the
// server's (s, if okS).
func (c *ChangeCount) Update(n string, l FileInfo, okL bool, s FileInfo, okS bool) {
	copyOnlyHere := okL && !okS && IsConflictCopy(n)
	if copyOnlyHere && !l.Deleted {
		c.copies[n] = true
	} else {
		delete(c.copies, n)
	}
	if okL && !copyOnlyHere && isLocalChange(l, s, okS) {
		c.changes[n] = true
	} else {
		delete(c.changes, n)
	}
}

// Count returns len(LocalChanges(local, server)): the changes counted,
// less the directories the server lacks that hold conflict copies.
func (c *ChangeCount) Count(local, server func(string) (FileInfo, bool)) int {
	n := len(c.changes)
	holders := map[string]bool{}
	for cp := range c.copies {
		for d := path.Dir(cp); d != "." && !holders[d]; d = path.Dir(d) {
			holders[d] = true
			if !c.changes[d] {
				continue
			}
			if l, _ := local(d); l.Type == TypeDir {
				if _, ok := server(d); !ok {
					n--
				}
			}
		}
	}
	return n
}

// WithoutConcurrent returns remote without the entries whose versions are
// concurrent with the local ones: on a read-only device, those are left
// to ReadOnlyOverrides, never to Plan's winner rule.
func WithoutConcurrent(local Entries, remote Snapshot) Snapshot {
	out := make(Snapshot, len(remote))
	for n, r := range remote {
		if l, ok := local.Get(n); ok && r.Version.Compare(l.Version) == Concurrent && !sameState(l, r) {
			continue
		}
		out[n] = r
	}
	return out
}

// ReadOnlyOverrides returns the actions that give a read-only device's entries
// the server's versions (server: the server's index): for every local
// change if all (Revert), else only where the server changed the entry
// too. Entries whose state is already the server's just take its version.
// Local content is never lost: a file the server has differently, or does
// not have, is kept as a conflict copy. It also returns, with why, the
// local changes it cannot undo (a directory where the server has a file).
// Entries that are new on the server are left to Plan.
func ReadOnlyOverrides(local Entries, server Snapshot, self string, all bool, now time.Time) ([]Action, []string) {
	o := &overrides{local: local, server: server, self: self, now: now, chosen: map[string]bool{}, have: blockSources(local)}
	names := make([]string, 0, local.Len())
	for n := range local.All() {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		l, _ := local.Get(n)
		s, okS := server[n]
		if okS {
			if c := l.Version.Compare(s.Version); c == Equal || c == Lesser {
				continue // Plan takes the server's version
			}
			if sameState(l, s) {
				o.acts = append(o.acts, Action{Kind: ActRecord, Name: n, File: s, Reason: "the server's version"})
				continue
			}
			if !all && l.Version.Compare(s.Version) != Concurrent {
				continue // a local change the server did not supersede: kept
			}
		} else if !all || l.Deleted || IsConflictCopy(n) {
			continue
		}
		o.override(n, l, s, okS)
	}
	dels := slices.DeleteFunc(o.dels, o.holdsConflictCopy)
	slices.SortStableFunc(o.acts, func(a, b Action) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(dels, func(a, b Action) int { return strings.Compare(b.Name, a.Name) })
	return append(o.acts, dels...), o.stuck
}

// overrides is one run of ReadOnlyOverrides: its inputs and what it has
// planned so far.
type overrides struct {
	local  Entries
	server Snapshot
	self   string
	now    time.Time
	have   map[Hash]blockLocal

	acts, dels []Action
	stuck      []string
	chosen     map[string]bool // the conflict copies' names
}

// override plans giving the local entry l at n the server's state s
// (okS: the server has the entry).
func (o *overrides) override(n string, l, s FileInfo, okS bool) {
	lLive, sLive := !l.Deleted, okS && !s.Deleted
	switch {
	case !lLive && !sLive:
		o.acts = append(o.acts, Action{Kind: ActRecord, Name: n, File: s})
	case !lLive:
		o.acts = append(o.acts, createAction(s, o.have, "the server's version"))
	case sLive && l.SameContent(s):
		o.acts = append(o.acts, Action{Kind: ActMeta, Name: n, File: s, Reason: "the server's version"})
	case l.Type == TypeDir && sLive:
		o.stuck = append(o.stuck, fmt.Sprintf("%s: a directory here, a %s on the server", n, s.Type))
	case l.Type == TypeDir:
		o.dels = append(o.dels, Action{Kind: ActDelete, Name: n, File: o.gone(l, s, okS), Reason: "not on the server"})
	default:
		cn := o.conflictName(l)
		if cn == "" {
			o.stuck = append(o.stuck, n+": no free name for a conflict copy")
			return
		}
		switch {
		case sLive:
			a := createAction(s, o.have, "the server's version wins")
			a.Kind, a.ConflictName, a.Also = ActConflict, cn, ptr(o.copyOf(l, cn))
			o.acts = append(o.acts, a)
		case l.Type == TypeFile:
			o.acts = append(o.acts, Action{Kind: ActRename, Name: cn, From: n, File: o.copyOf(l, cn), Also: ptr(o.gone(l, s, okS)), Reason: "kept: not on the server"})
		default: // a symlink
			o.acts = append(o.acts, Action{Kind: ActSymlink, Name: cn, File: o.copyOf(l, cn), Reason: "kept: not on the server"})
			o.dels = append(o.dels, Action{Kind: ActDelete, Name: n, File: o.gone(l, s, okS), Reason: "not on the server"})
		}
	}
}

// taken: the name n is in use, or chosen for a conflict copy.
func (o *overrides) taken(n string) bool {
	l, okL := o.local.Get(n)
	s, okS := o.server[n]
	return o.chosen[n] || okL && !l.Deleted || okS && !s.Deleted
}

// conflictName chooses a free name for a conflict copy of l ("" if none).
func (o *overrides) conflictName(l FileInfo) string {
	for _, t := range []time.Time{time.Unix(0, l.ModTime), o.now} {
		if cn := ConflictName(l.Name, t, o.self); !o.taken(cn) {
			o.chosen[cn] = true
			return cn
		}
	}
	return ""
}

// copyOf is l as a new entry named name.
func (o *overrides) copyOf(l FileInfo, name string) FileInfo {
	l.Name = name
	l.Version = Vector{}.Update(o.self)
	return l
}

// gone is the entry l once undone: the server's s if it has it (ok), else
// l deleted.
func (o *overrides) gone(l, s FileInfo, ok bool) FileInfo {
	if ok {
		return s
	}
	return FileInfo{Name: l.Name, Type: l.Type, Deleted: true, ModTime: l.ModTime, Version: l.Version.Update(o.self)}
}

// holdsConflictCopy: the deletion d is of a directory that will hold a
// conflict copy, so it stays.
func (o *overrides) holdsConflictCopy(d Action) bool {
	if d.File.Type != TypeDir {
		return false
	}
	for n := range o.chosen {
		if strings.HasPrefix(n, d.Name+"/") {
			return true
		}
	}
	for n, l := range o.local.All() {
		if !l.Deleted && IsConflictCopy(n) && strings.HasPrefix(n, d.Name+"/") {
			return true
		}
	}
	return false
}

// blockLocal is where a local file holds a block.
type blockLocal struct {
	name   string
	offset int64
}

// blockSources maps the blocks of local's live files to where they are.
func blockSources(local Entries) map[Hash]blockLocal {
	have := map[Hash]blockLocal{}
	for n, l := range local.All() {
		if l.Deleted || l.Type != TypeFile {
			continue
		}
		for _, b := range l.Blocks {
			if _, ok := have[b.Hash]; !ok {
				have[b.Hash] = blockLocal{n, b.Offset}
			}
		}
	}
	return have
}

// createAction returns the action that writes f where nothing live is,
// copying the blocks local files hold.
func createAction(f FileInfo, have map[Hash]blockLocal, reason string) Action {
	a := Action{Name: f.Name, File: f, Reason: reason}
	switch f.Type {
	case TypeDir:
		a.Kind = ActMkDir
	case TypeSymlink:
		a.Kind = ActSymlink
	default:
		a.Kind = ActFetch
		for _, b := range f.Blocks {
			if h, ok := have[b.Hash]; ok {
				a.Copy = append(a.Copy, BlockCopy{Block: b, From: h.name, FromOffset: h.offset})
			} else {
				a.Need = append(a.Need, b)
			}
		}
	}
	return a
}
