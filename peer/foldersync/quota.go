package foldersync

// Per-user quotas at the hosting servers: a device's change that would
// take the folder owner's bytes past their quota is not taken; changes
// that shrink always are.

import (
	"fmt"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/internal/bytesize"
	"github.com/baton-sync/baton/syncfs"
)

// QuotaStatus is a folder owner's quota at the folder's hosting servers.
type QuotaStatus struct {
	// User is the folder's owner, whose quota it is.
	User string `json:"user"`
	// Used is the bytes of the folders the user owns, as a server hosting
	// them holds them (the current files; their history does not count).
	Used int64 `json:"used"`
	// Limit is the user's quota, in bytes.
	Limit int64 `json:"limit"`
}

// liveSize is the bytes fi holds in the current tree.
func liveSize(fi syncfs.FileInfo) int64 {
	if fi.Deleted || fi.Type == syncfs.TypeDir {
		return 0
	}
	return fi.Size
}

// growth is how many bytes action a adds to a folder whose entries are
// local (negative: it frees some).
func growth(a syncfs.Action, local syncfs.Entries) int64 {
	switch a.Kind {
	case syncfs.ActSkip:
		return 0
	case syncfs.ActConflict:
		// The local entry stays, as the conflict copy.
		var kept syncfs.FileInfo
		if a.Also != nil {
			kept = *a.Also
		}
		return liveSize(a.File) - liveSize(entryOf(local, a.Name)) + liveSize(kept)
	case syncfs.ActRename:
		return liveSize(a.File) - liveSize(entryOf(local, a.Name)) - liveSize(entryOf(local, a.From))
	}
	return liveSize(a.File) - liveSize(entryOf(local, a.Name))
}

// entryOf returns the entry of name in local, the zero FileInfo (of no
// size) if there is none.
func entryOf(local syncfs.Entries, name string) syncfs.FileInfo {
	fi, _ := local.Get(name)
	return fi
}

// quotaRefusal is what quotaAdmit held back.
type quotaRefusal struct {
	changes int
	bytes   int64 // what they would have added
}

// quotaAdmit decides which of actions, planned to take a device's changes
// into a folder whose entries are local, the home server takes when the
// owner's folders hold used bytes and their quota is limit (> 0). Every
// action that adds nothing is taken, and frees room first; an action that
// adds bytes is taken, in plan order, while what it adds fits. The actions
// taken keep their order. It is pure.
func quotaAdmit(actions []syncfs.Action, local syncfs.Entries, used, limit int64) ([]syncfs.Action, quotaRefusal) {
	g := make([]int64, len(actions))
	room := limit - used
	for i, a := range actions {
		g[i] = growth(a, local)
		if g[i] < 0 {
			room -= g[i]
		}
	}
	var (
		out []syncfs.Action
		ref quotaRefusal
	)
	for i, a := range actions {
		if g[i] > 0 {
			if g[i] > room {
				ref.changes++
				ref.bytes += g[i]
				continue
			}
			room -= g[i]
		}
		out = append(out, a)
	}
	return out, ref
}

// quotaMessage says why a device's changes wait.
func quotaMessage(user string, used, limit int64, ref quotaRefusal) string {
	return fmt.Sprintf("%s: %s's quota is full (%s of %s used): %d change(s) adding %s wait here until there is room (delete files, or ask an admin for more); nothing is lost",
		ErrQuota, user, bytesize.Format(used), bytesize.Format(limit), ref.changes, bytesize.Format(ref.bytes))
}

// quotaOf returns the quota that applies to p's changes of fo on this
// host: a hosting server's (the home server's, and the replica's, so that
// a change refused by one does not reach it through the other) on member
// devices' changes, when the owner has one. The hosting servers take each
// other's changes as they are: each took only what fits.
func (e *Engine) quotaOf(a Access, fo collections.Folder, p lpeer.ID) (limit int64, ok bool) {
	if e.cfg.Quota == nil || fo.Owner == "" || a.Server(p) || !hosting(a, fo, e.self) {
		return 0, false
	}
	limit = e.cfg.Quota(fo.Owner)
	return limit, limit > 0
}

// usage is the bytes of the folders user owns that this host hosts, as it
// holds them now.
func (e *Engine) usage(a Access, user string) int64 {
	e.mu.Lock()
	fs := make([]*folder, 0, len(e.folders))
	for _, f := range e.folders {
		fs = append(fs, f)
	}
	e.mu.Unlock()
	var n int64
	for _, f := range fs {
		fo, ok := a.Folder(f.id)
		if !ok || fo.Owner != user || !hosting(a, fo, e.self) {
			continue
		}
		if pub := f.pub.Load(); pub != nil {
			n += pub.bytes
		}
	}
	return n
}
