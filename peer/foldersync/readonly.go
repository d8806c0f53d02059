package foldersync

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/syncfs"
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
func sameState(l, s syncfs.FileInfo) bool {
	if l.Deleted || s.Deleted {
		return l.Deleted == s.Deleted
	}
	return l.SameContent(s) && l.SameMetadata(s)
}

// isLocalChange reports whether the local entry l (s: the server's, if
// ok) is a change the server has not accepted.
func isLocalChange(l, s syncfs.FileInfo, ok bool) bool {
	if !ok {
		return !l.Deleted
	}
	if o := l.Version.Compare(s.Version); o == syncfs.Equal || o == syncfs.Lesser {
		return false
	}
	return !sameState(l, s)
}

// localChanges lists the entries of local that are changes the server
// (whose index is server) has not accepted. Conflict copies the server
// does not have, and the directories holding them, are not counted: they
// are kept for the user and never reverted.
func localChanges(local, server syncfs.Snapshot) []string {
	holders := map[string]bool{}
	for n, l := range local {
		if _, ok := server[n]; !ok && !l.Deleted && syncfs.IsConflictCopy(n) {
			for d := path.Dir(n); d != "."; d = path.Dir(d) {
				holders[d] = true
			}
		}
	}
	var out []string
	for n, l := range local {
		s, ok := server[n]
		if !ok && (syncfs.IsConflictCopy(n) || l.Type == syncfs.TypeDir && holders[n]) {
			continue
		}
		if isLocalChange(l, s, ok) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// changeCount keeps the number of localChanges up to date entry by entry,
// so that a change costs what it touches, not the folder.
type changeCount struct {
	changes map[string]bool // local changes, conflict copies the server lacks aside
	copies  map[string]bool // live local conflict copies the server lacks
}

// reset forgets everything counted.
func (c *changeCount) reset() {
	c.changes, c.copies = map[string]bool{}, map[string]bool{}
}

// update recounts the entry n, given the local one (l, if okL) and the
// server's (s, if okS).
func (c *changeCount) update(n string, l syncfs.FileInfo, okL bool, s syncfs.FileInfo, okS bool) {
	copyOnlyHere := okL && !okS && syncfs.IsConflictCopy(n)
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

// count returns len(localChanges(local, server)): the changes counted,
// less the directories the server lacks that hold conflict copies.
func (c *changeCount) count(local, server func(string) (syncfs.FileInfo, bool)) int {
	n := len(c.changes)
	holders := map[string]bool{}
	for cp := range c.copies {
		for d := path.Dir(cp); d != "." && !holders[d]; d = path.Dir(d) {
			holders[d] = true
			if !c.changes[d] {
				continue
			}
			if l, _ := local(d); l.Type == syncfs.TypeDir {
				if _, ok := server(d); !ok {
					n--
				}
			}
		}
	}
	return n
}

// withoutConcurrent returns remote without the entries whose versions are
// concurrent with the local ones: on a read-only device, those are left
// to overrides, never to Plan's winner rule.
func withoutConcurrent(local, remote syncfs.Snapshot) syncfs.Snapshot {
	out := make(syncfs.Snapshot, len(remote))
	for n, r := range remote {
		if l, ok := local[n]; ok && r.Version.Compare(l.Version) == syncfs.Concurrent && !sameState(l, r) {
			continue
		}
		out[n] = r
	}
	return out
}

// overrides returns the actions that give a read-only device's entries
// the server's versions (server: the server's index): for every local
// change if all (Revert), else only where the server changed the entry
// too. Entries whose state is already the server's just take its version.
// Local content is never lost: a file the server has differently, or does
// not have, is kept as a conflict copy. It also returns, with why, the
// local changes it cannot undo (a directory where the server has a file).
// Entries that are new on the server are left to Plan.
func overrides(local, server syncfs.Snapshot, self string, all bool, now time.Time) ([]syncfs.Action, []string) {
	var (
		acts, dels []syncfs.Action
		stuck      []string
		chosen     = map[string]bool{}
		have       = blockSources(local)
	)
	taken := func(n string) bool {
		l, okL := local[n]
		s, okS := server[n]
		return chosen[n] || okL && !l.Deleted || okS && !s.Deleted
	}
	conflictName := func(l syncfs.FileInfo) string {
		for _, t := range []time.Time{time.Unix(0, l.ModTime), now} {
			if cn := syncfs.ConflictName(l.Name, t, self); !taken(cn) {
				chosen[cn] = true
				return cn
			}
		}
		return ""
	}
	copyOf := func(l syncfs.FileInfo, name string) syncfs.FileInfo {
		l.Name = name
		l.Version = syncfs.Vector{}.Update(self)
		return l
	}
	gone := func(l, s syncfs.FileInfo, ok bool) syncfs.FileInfo {
		if ok {
			return s
		}
		return syncfs.FileInfo{Name: l.Name, Type: l.Type, Deleted: true, ModTime: l.ModTime, Version: l.Version.Update(self)}
	}
	names := make([]string, 0, len(local))
	for n := range local {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		l := local[n]
		s, okS := server[n]
		if okS {
			if o := l.Version.Compare(s.Version); o == syncfs.Equal || o == syncfs.Lesser {
				continue // Plan takes the server's version
			}
			if sameState(l, s) {
				acts = append(acts, syncfs.Action{Kind: syncfs.ActRecord, Name: n, File: s, Reason: "the server's version"})
				continue
			}
			if !all && l.Version.Compare(s.Version) != syncfs.Concurrent {
				continue // a local change the server did not supersede: kept
			}
		} else if !all || l.Deleted || syncfs.IsConflictCopy(n) {
			continue
		}
		lLive, sLive := !l.Deleted, okS && !s.Deleted
		switch {
		case !lLive && !sLive:
			acts = append(acts, syncfs.Action{Kind: syncfs.ActRecord, Name: n, File: s})
		case !lLive:
			acts = append(acts, createAction(s, have, "the server's version"))
		case sLive && l.SameContent(s):
			acts = append(acts, syncfs.Action{Kind: syncfs.ActMeta, Name: n, File: s, Reason: "the server's version"})
		case l.Type == syncfs.TypeDir && sLive:
			stuck = append(stuck, fmt.Sprintf("%s: a directory here, a %s on the server", n, s.Type))
		case l.Type == syncfs.TypeDir:
			dels = append(dels, syncfs.Action{Kind: syncfs.ActDelete, Name: n, File: gone(l, s, okS), Reason: "not on the server"})
		default:
			cn := conflictName(l)
			if cn == "" {
				stuck = append(stuck, n+": no free name for a conflict copy")
				continue
			}
			switch {
			case sLive:
				a := createAction(s, have, "the server's version wins")
				a.Kind, a.ConflictName, a.Also = syncfs.ActConflict, cn, copyOf(l, cn)
				acts = append(acts, a)
			case l.Type == syncfs.TypeFile:
				acts = append(acts, syncfs.Action{Kind: syncfs.ActRename, Name: cn, From: n, File: copyOf(l, cn), Also: gone(l, s, okS), Reason: "kept: not on the server"})
			default: // a symlink
				acts = append(acts, syncfs.Action{Kind: syncfs.ActSymlink, Name: cn, File: copyOf(l, cn), Reason: "kept: not on the server"})
				dels = append(dels, syncfs.Action{Kind: syncfs.ActDelete, Name: n, File: gone(l, s, okS), Reason: "not on the server"})
			}
		}
	}
	// A directory that will hold a conflict copy stays.
	dels = slices.DeleteFunc(dels, func(d syncfs.Action) bool {
		if d.File.Type != syncfs.TypeDir {
			return false
		}
		for n := range chosen {
			if strings.HasPrefix(n, d.Name+"/") {
				return true
			}
		}
		for n, l := range local {
			if !l.Deleted && syncfs.IsConflictCopy(n) && strings.HasPrefix(n, d.Name+"/") {
				return true
			}
		}
		return false
	})
	slices.SortStableFunc(acts, func(a, b syncfs.Action) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(dels, func(a, b syncfs.Action) int { return strings.Compare(b.Name, a.Name) })
	return append(acts, dels...), stuck
}

// blockLocal is where a local file holds a block.
type blockLocal struct {
	name   string
	offset int64
}

// blockSources maps the blocks of local's live files to where they are.
func blockSources(local syncfs.Snapshot) map[syncfs.Hash]blockLocal {
	have := map[syncfs.Hash]blockLocal{}
	for n, l := range local {
		if l.Deleted || l.Type != syncfs.TypeFile {
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
func createAction(f syncfs.FileInfo, have map[syncfs.Hash]blockLocal, reason string) syncfs.Action {
	a := syncfs.Action{Name: f.Name, File: f, Reason: reason}
	switch f.Type {
	case syncfs.TypeDir:
		a.Kind = syncfs.ActMkDir
	case syncfs.TypeSymlink:
		a.Kind = syncfs.ActSymlink
	default:
		a.Kind = syncfs.ActFetch
		for _, b := range f.Blocks {
			if h, ok := have[b.Hash]; ok {
				a.Copy = append(a.Copy, syncfs.BlockCopy{Block: b, From: h.name, FromOffset: h.offset})
			} else {
				a.Need = append(a.Need, b)
			}
		}
	}
	return a
}

// revert undoes this read-only device's local changes (Engine.Revert).
func (f *folder) revert(ctx context.Context) error {
	if !f.ready {
		return fmt.Errorf("folder %s: not scanned yet", f.id)
	}
	a := f.e.access()
	fo, ok := a.Folder(f.id)
	if !ok {
		return fmt.Errorf("%w: folder %s is not in the Catalog", ErrUnknownFolder, f.id)
	}
	self := f.e.self
	if fo.Server == self.String() || roleOf(a, fo, self) != roleReader {
		return fmt.Errorf("folder %s: %w", f.id, ErrNotReadOnly)
	}
	if err := f.scan(ctx, ""); err != nil {
		return err
	}
	hub, err := lpeer.Decode(fo.Server)
	if err != nil {
		return fmt.Errorf("folder %s: server %q: %w", f.id, fo.Server, err)
	}
	f.setState(StateSyncing)
	defer f.setState(StateIdle)
	ri, err := f.e.requestIndex(ctx, hub, f.id, f.remotes[hub])
	if err != nil {
		return fmt.Errorf("reverting folder %s needs the server's index: %w", f.id, err)
	}
	f.remotes[hub] = ri
	remote := f.visible(ri.snap)
	peers := f.sources(a, fo, hub)
	acts, stuck := overrides(f.local.Files, remote, self.String(), true, f.e.cfg.Now())
	res := f.applyTracked(ctx, peers, f.safeActions(acts))
	res.add(f.applyTracked(ctx, peers, syncfs.PlanWith(f.local.Files, withoutConcurrent(f.local.Files, remote), self.String(), f.planOptions())))
	f.noteFailures(hub, res)
	f.replanAll()
	f.refreshStatus(a, fo)
	if res.failed > 0 {
		return fmt.Errorf("reverting folder %s: %d changes failed, the first: %w", f.id, res.failed, res.first)
	}
	if len(stuck) > 0 {
		return fmt.Errorf("reverting folder %s: cannot undo %s", f.id, strings.Join(stuck, "; "))
	}
	return nil
}
