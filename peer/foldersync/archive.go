package foldersync

import "github.com/baton-sync/baton/syncfs"

// Requester is who asked for a change a host makes on their behalf (a
// restore): the engine passes it, as given to RestoreTree, to
// Config.Archive with the change.
type Requester struct {
	User, Device string
}

// archive tells Config.Archive, if set, of the entries of the Local named
// changed, just published (the whole index if whole), and of who asked
// for them (f.archiveBy, set by a restore around its publish).
func (f *folder) archive(changed []string, whole bool) {
	if f.e.cfg.Archive == nil || len(changed) == 0 {
		return
	}
	entries := make([]syncfs.FileInfo, 0, len(changed))
	for _, n := range changed {
		if fi, ok := f.local.Get(n); ok {
			entries = append(entries, fi)
		}
	}
	f.e.cfg.Archive(f.id, f.root, entries, whole, f.archiveBy)
}
