package syncfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Resuming an interrupted fetch. Apply assembles a file in a temporary
// file named after the target and the version (partialName), so every
// attempt at the same version uses the same one. When an attempt fails,
// the temporary file is kept if it holds verified blocks. The next attempt
// (in this process or after a restart) reads and hashes each block of the
// file at its offset in the temporary file, keeps those that verify and
// writes only the others: nothing in a partial file is trusted unread.
// Resume does that check before a BlockSource is built, so that the
// source is not asked for blocks already in place.

// partial is what a check found in a temporary file.
type partial struct {
	st    DiskStat       // the file when its blocks were checked
	have  map[int64]bool // offsets of the blocks that verified
	bytes int64          // their bytes
}

// Resume looks, for each fetch of a regular file in actions, for the
// temporary file an interrupted attempt at the same version left (one
// Lstat each), checks the blocks it holds at their offsets, and removes
// the blocks found from the action's Need and Copy (giving it new slices:
// the caller's other copies of the action are not changed). It returns the
// bytes found. A later Apply of the action takes those blocks without
// reading them again if the temporary file's stat has not changed since
// (and was not changed just before: see racyWindow). Call it
// before making a BlockSource from the actions' Need, so that the source
// does not fetch blocks already here; Apply resumes the same without it,
// only later. It must not run at the same time as Apply on the folder.
func (ap *Applier) Resume(ctx context.Context, actions []Action) int64 {
	var root WriteFS
	var total int64
	for i := range actions {
		a := &actions[i]
		if ctx.Err() != nil {
			break
		}
		if !resumable(*a) {
			continue
		}
		if _, err := SafeJoin(ap.Root, a.Name); err != nil {
			continue
		}
		if root == nil {
			fsys, done, err := ap.open()
			if err != nil {
				return total
			}
			defer done()
			root = fsys
		}
		tp := filepath.FromSlash(partialName(a.Name, a.File.FileHash))
		fi, err := root.Lstat(tp)
		if err != nil || !usablePartial(fi, a.File) {
			continue // none, or one Apply removes
		}
		in, err := root.OpenFile(tp, os.O_RDONLY, 0)
		if err != nil {
			continue
		}
		p, err := checkPartial(ctx, root, in, fi, a.File)
		in.Close()
		if err != nil || p.bytes == 0 {
			continue
		}
		// Apply trusts this check if the file's stat is the same then,
		// unless the file changed so recently that another change within
		// the timestamps' granularity would leave the stat equal.
		if changed := max(p.st.ModTime, p.st.Ctime); time.Since(time.Unix(0, changed)) >= racyWindow {
			ap.mu.Lock()
			if ap.partials == nil {
				ap.partials = map[string]*partial{}
			}
			ap.partials[tp] = p
			ap.mu.Unlock()
		}
		a.Need = dropHave(a.Need, p.have)
		if len(a.Copy) > 0 {
			cp := make([]BlockCopy, 0, len(a.Copy))
			for _, c := range a.Copy {
				if !p.have[c.Block.Offset] {
					cp = append(cp, c)
				}
			}
			a.Copy = cp
		}
		total += p.bytes
	}
	return total
}

// resumable reports whether a assembles a regular file in a temporary
// file named by partialName.
func resumable(a Action) bool {
	return (a.Kind == ActFetch || a.Kind == ActConflict) && a.File.Type == TypeFile && !a.File.Deleted && len(a.File.Blocks) > 0
}

// usablePartial reports whether fi, what Lstat says of a temporary file
// for f, may hold f's blocks: a regular file no larger than f.
func usablePartial(fi fs.FileInfo, f FileInfo) bool {
	return fi.Mode().IsRegular() && fi.Size() <= f.Size
}

// dropHave returns the blocks not in have, in a new slice.
func dropHave(blocks []Block, have map[int64]bool) []Block {
	out := make([]Block, 0, len(blocks))
	for _, b := range blocks {
		if !have[b.Offset] {
			out = append(out, b)
		}
	}
	return out
}

// checkPartial reads and hashes each block of f that lies within the
// temporary file in (of fsys), whose Lstat was fi, at its offset, and
// returns those that verify. It fails if in is not the file fi describes
// (it was replaced meanwhile) or on a read error other than a short file.
func checkPartial(ctx context.Context, fsys FS, in RWFile, fi fs.FileInfo, f FileInfo) (*partial, error) {
	ofi, err := in.Stat()
	if err != nil {
		return nil, err
	}
	if !fsys.SameFile(fi, ofi) || !ofi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: temporary file replaced while opening it", ErrChangedMeanwhile)
	}
	p := &partial{st: statOf(ofi), have: map[int64]bool{}}
	size := ofi.Size()
	for _, b := range f.Blocks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if b.Offset+int64(b.Size) > size {
			continue
		}
		buf := BlockBuffer(int(b.Size))
		_, err := in.ReadAt(buf, b.Offset)
		ok := err == nil && HashBytes(buf) == b.Hash
		FreeBlockBuffer(buf)
		if err != nil {
			return nil, fmt.Errorf("reading temporary file: %w", err)
		}
		if ok {
			p.have[b.Offset] = true
			p.bytes += int64(b.Size)
		}
	}
	return p, nil
}

// openTemp opens the temporary file tp for assembling a.File: the one an
// earlier attempt at the same version left, with the blocks it holds that
// verify (or that Resume found and that did not change since), or a new,
// empty one. A temporary file that is not a regular file or is larger
// than the file is removed. The file has a.File's size.
func (x *applyRun) openTemp(ctx context.Context, a Action, tp string) (RWFile, map[int64]bool, error) {
	f := a.File
	fi, err := x.root.Lstat(tp)
	if err == nil && !usablePartial(fi, f) {
		if err := x.root.RemoveAll(tp); err != nil {
			return nil, nil, fmt.Errorf("removing unusable temporary file: %w", err)
		}
		err = fs.ErrNotExist
	}
	if errors.Is(err, fs.ErrNotExist) {
		x.takePartial(tp)
		out, err := x.root.OpenFile(tp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("creating temporary file: %w", err)
		}
		x.tempState = tempNew
		if err := out.Truncate(f.Size); err != nil {
			out.Close()
			return nil, nil, err
		}
		return out, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	// A partial file: from now on it is kept on failure until its blocks
	// are known (tempUnchecked), then only if it holds any.
	x.tempState = tempUnchecked
	if fi.Mode().Perm()&0o200 == 0 {
		// An attempt that failed after setting the final mode.
		if err := x.root.Chmod(tp, 0o600); err != nil {
			return nil, nil, fmt.Errorf("making temporary file writable: %w", err)
		}
		if fi, err = x.root.Lstat(tp); err != nil {
			return nil, nil, err
		}
	}
	out, err := x.root.OpenFile(tp, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening temporary file: %w", err)
	}
	var p *partial
	if q := x.takePartial(tp); q != nil {
		if ofi, err := out.Stat(); err == nil && x.root.SameFile(fi, ofi) && ofi.Mode().IsRegular() && q.st.same(statOf(ofi)) {
			p = q // checked by Resume, unchanged since
		}
	}
	if p == nil {
		if p, err = checkPartial(ctx, x.root, out, fi, f); err != nil {
			out.Close()
			return nil, nil, err
		}
	}
	x.tempState = tempChecked
	x.inTemp.Add(int64(len(p.have)))
	x.resumed.Add(p.bytes)
	if fi.Size() != f.Size {
		if err := out.Truncate(f.Size); err != nil {
			out.Close()
			return nil, nil, err
		}
	}
	return out, p.have, nil
}

// What is known of a write's temporary file (applyRun.tempState).
const (
	tempNone      = iota // not created
	tempNew              // created empty by this attempt
	tempUnchecked        // left by an earlier attempt, blocks not yet checked
	tempChecked          // left by an earlier attempt, blocks checked
)

// keepTemp reports whether the temporary file of a failed write is worth
// keeping for the next attempt: it holds verified blocks, or blocks of an
// earlier attempt not yet checked.
func (x *applyRun) keepTemp() bool {
	return x.tempState == tempUnchecked || x.tempState != tempNone && x.inTemp.Load() > 0
}

// takePartial returns and forgets what Resume found in tp, or nil.
func (x *applyRun) takePartial(tp string) *partial {
	ap := x.ap
	ap.mu.Lock()
	defer ap.mu.Unlock()
	p := ap.partials[tp]
	delete(ap.partials, tp)
	return p
}

// keptPartial is the partial file of a failed attempt at a version of a
// name, kept to be resumed.
type keptPartial struct {
	path    string // the temporary file, native, relative to Root
	version Vector // the version it holds blocks of
}

// dropOtherPartial is called as an attempt at name begins to assemble it
// in tp ("" for none): a temporary file kept after an earlier attempt at
// another version of name is removed, since only the latest version is
// resumed. (One an earlier process left is removed by the scanner once
// stale, or with its directory: see Scanner.StaleTemp and removeDir.)
func (x *applyRun) dropOtherPartial(name, tp string) {
	ap := x.ap
	ap.mu.Lock()
	old, ok := ap.kept[name]
	delete(ap.kept, name)
	ap.mu.Unlock()
	if ok && old.path != tp {
		x.root.Remove(old.path)
	}
}

// keepPartial notes that tp, the temporary file of a failed attempt at
// version v of name, is kept.
func (x *applyRun) keepPartial(name string, v Vector, tp string) {
	ap := x.ap
	ap.mu.Lock()
	if ap.kept == nil {
		ap.kept = map[string]keptPartial{}
	}
	ap.kept[name] = keptPartial{path: tp, version: v}
	ap.mu.Unlock()
}

// recorded is called when the Local's entry for name becomes f: a partial
// file kept for a version of name that f supersedes (or is) is no longer
// wanted, and is removed.
func (x *applyRun) recorded(name string, f FileInfo) {
	ap := x.ap
	ap.mu.Lock()
	k, ok := ap.kept[name]
	drop := ok && supersedes(f, k.version, true)
	if drop {
		delete(ap.kept, name)
	}
	ap.mu.Unlock()
	if drop {
		x.root.Remove(k.path)
	}
}

// supersedes reports whether e, an entry for the name of a partial file
// kept for version v, makes the partial file useless: e is a later
// version (a newer content, a deletion, another type), or, if e is what
// the folder now holds (here), v itself, in place.
func supersedes(e FileInfo, v Vector, here bool) bool {
	switch e.Version.Compare(v) {
	case Greater:
		return true
	case Equal:
		return here
	}
	return false
}

// DropSuperseded removes the partial files kept after failed fetches
// (see Applier) whose target's entry in s, a snapshot of another device,
// is a later version than the one they hold: that version will not be
// fetched any more, as when a file is changed again or deleted before it
// arrived. Names s does not hold are left alone. It returns how many it
// removed. The caller calls it with each index it takes changes from, as
// the index arrives, so that no partial file outlives its version (and
// none is left in a directory to delete); it must not run at the same
// time as Apply on the folder.
func (ap *Applier) DropSuperseded(s Snapshot) int {
	return ap.DropSupersededBy(func(name string) (Vector, bool) {
		e, ok := s[name]
		return e.Version, ok
	})
}

// DropSupersededBy is DropSuperseded for a snapshot not held in memory:
// version returns the version of the entry it holds under a name.
func (ap *Applier) DropSupersededBy(version func(name string) (Vector, bool)) int {
	ap.mu.Lock()
	var drop []string
	for name, k := range ap.kept {
		if v, ok := version(name); ok && supersedes(FileInfo{Version: v}, k.version, false) {
			drop = append(drop, k.path)
			delete(ap.kept, name)
		}
	}
	ap.mu.Unlock()
	if len(drop) == 0 {
		return 0
	}
	root, done, err := ap.open()
	if err != nil {
		return 0
	}
	defer done()
	n := 0
	for _, p := range drop {
		if err := root.Remove(p); err == nil || errors.Is(err, fs.ErrNotExist) {
			n++
		}
	}
	return n
}

// forgetKeptIn forgets the kept partial files in the directory dir
// (native, relative to Root), which is being removed with them.
func (ap *Applier) forgetKeptIn(dir string) {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	for name, k := range ap.kept {
		if filepath.Dir(k.path) == dir {
			delete(ap.kept, name)
		}
	}
}
