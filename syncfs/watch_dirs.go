package syncfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// DefaultDirsRescan is how often a Watcher that watches directories only
// (Watcher.DirsOnly) asks for a full rescan, when NewWatcher sets it: what
// a directory watch misses (a write to a file already there) is seen at
// the latest then. The README gives what a rescan costs, measured.
const DefaultDirsRescan = time.Minute

// dirEntry is what a directory's listing says of an entry, enough to see
// it appear, go, or be replaced (a new file renamed over it, as editors
// save), but not written to in place.
type dirEntry struct {
	isDir bool
	id    uint64 // the inode number; zero where unknown
}

// listing is a directory's entries by name.
type listing map[string]dirEntry

// listChange is an entry that appeared, went, or was replaced between two
// listings of its directory.
type listChange struct {
	name       string // the entry's name in the directory
	gone, came bool   // both: replaced
	isDir      bool   // what came is a directory
}

// diffListing returns what changed from old to cur, by name.
func diffListing(old, cur listing) []listChange {
	var out []listChange
	for n, o := range old {
		c, ok := cur[n]
		switch {
		case !ok:
			out = append(out, listChange{name: n, gone: true, isDir: false})
		case c.isDir != o.isDir || c.id != o.id:
			out = append(out, listChange{name: n, gone: true, came: true, isDir: c.isDir})
		}
	}
	for n, c := range cur {
		if _, ok := old[n]; !ok {
			out = append(out, listChange{name: n, came: true, isDir: c.isDir})
		}
	}
	slices.SortFunc(out, func(a, b listChange) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return out
}

// listDir lists the directory at the native path p: a stat of each entry
// (as fsnotify's kqueue backend does on each directory change).
func listDir(p string) (listing, error) {
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	l := make(listing, len(ents))
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue // gone meanwhile: the next change of the directory says so
		}
		ino, _ := sysStat(fi)
		l[e.Name()] = dirEntry{isDir: fi.IsDir(), id: ino}
	}
	return l, nil
}

// dirChanged handles a change of the entries of the watched directory
// dir, with DirsOnly: it lists dir again and reports what appeared, went
// or was replaced, watching the directories that came and unwatching
// those that went. Writes to files in place are not seen here; the
// periodic rescan sees them.
func (st *watchState) dirChanged(dir string, now time.Time) {
	if !st.watched[dir] {
		return // unwatched since; its parent reports it
	}
	cur, err := listDir(filepath.Join(st.w.root, filepath.FromSlash(dir)))
	if err != nil {
		if dir == "" {
			st.w.log.Warn("folder root was removed or moved; rescanning", "err", err)
			st.agg.Overflow(now)
			return
		}
		if !errors.Is(err, fs.ErrNotExist) {
			st.w.log.Warn("cannot list directory; rescanning it", "dir", dir, "err", err)
			st.agg.Event(dir, OpCreate, now)
		}
		return // gone: its parent's change reports it
	}
	changes := diffListing(st.listings[dir], cur)
	// The watches of what went go first: a directory renamed within dir
	// is the same directory under its new name, and inotify gives it the
	// same watch, which removing the old name's after watching the new
	// name would remove (files then made in it went unseen).
	for _, c := range changes {
		if c.gone && dir != "" {
			st.unwatch(dir + "/" + c.name)
		} else if c.gone {
			st.unwatch(c.name)
		}
	}
	for _, c := range changes {
		name := c.name
		if dir != "" {
			name = dir + "/" + c.name
		}
		if IsTemp(name) {
			continue
		}
		if c.gone {
			st.unwatch(name)
		}
		if st.w.ignore.Match(name, c.came && c.isDir) {
			continue
		}
		op := OpRemove
		if c.came {
			op = OpCreate
			if c.isDir {
				st.addTree(name, now)
			} else if st.w.own(name, now) {
				continue
			}
		} else if st.w.own(name, now) {
			continue
		}
		st.agg.Event(name, op, now)
	}
	st.listings[dir] = cur
}

// errNoDirQueue is what openDirQueue answers where Run uses fsnotify.
var errNoDirQueue = errors.New("no kqueue of directories here")
