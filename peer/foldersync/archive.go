package foldersync

import "github.com/baton-sync/baton/syncfs"

// archive tells Config.Archive, if set, of the entries of the Local named
// changed, just published (the whole index if whole).
func (f *folder) archive(changed []string, whole bool) {
	if f.e.cfg.Archive == nil || len(changed) == 0 {
		return
	}
	entries := make([]syncfs.FileInfo, 0, len(changed))
	for _, n := range changed {
		if fi, ok := f.local.Files[n]; ok {
			entries = append(entries, fi)
		}
	}
	f.e.cfg.Archive(f.id, f.root, entries, whole)
}
