package foldersync

import (
	"errors"
	"iter"

	"github.com/baton-sync/baton/syncfs"
)

// ErrIndexGone: a published index's entries could not be read because the
// engine that published it stopped (a large index keeps them in the
// engine's store, closed when Run returns).
var ErrIndexGone = errors.New("the published index is gone: its engine stopped")

// Requester is who asked for a change a host makes on their behalf (a
// restore): the engine passes it, as given to RestoreTree, to
// Config.Archive with the change.
type Requester struct {
	User, Device string
}

// Published is an index this host published for a folder, as
// Config.Archive is told of it. It is immutable and may be read from any
// goroutine; holding it holds only what the engine holds of it (the
// bounds of its chunks, once it is large), and its entries are read from
// the engine's store at each Since. Every later index of the same session
// holds its changes too: a reader that fell behind reads the latest one
// since the last sequence it read.
type Published struct{ p *published }

// Session is the random number drawn when the folder started: sequences
// of one session only compare with each other.
func (ix Published) Session() uint64 { return ix.p.session }

// Seq is the index's sequence: it grows with every index of a session.
func (ix Published) Seq() uint64 { return ix.p.seq }

// Since yields, in name order, the index's entries changed after seq (of
// the same session; every entry for 0), each as it is in this index. It
// yields ErrIndexGone, and stops, if the engine stopped before it read
// them all.
func (ix Published) Since(seq uint64) iter.Seq2[syncfs.FileInfo, error] {
	return func(yield func(syncfs.FileInfo, error) bool) {
		whole := ix.p.tree.eachSince(seq, func(e pubEntry) bool { return yield(e.fi, nil) })
		if !whole {
			yield(syncfs.FileInfo{}, ErrIndexGone)
		}
	}
}

// archive tells Config.Archive, if set, of p, just published, and of who
// asked for its change (f.archiveBy, set by a restore around its publish).
func (f *folder) archive(p *published) {
	if f.e.cfg.Archive == nil {
		return
	}
	f.e.cfg.Archive(f.id, f.root, Published{p}, f.archiveBy)
}
