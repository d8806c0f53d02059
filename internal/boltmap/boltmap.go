package boltmap

import (
	"runtime"
	"strconv"
	"sync/atomic"

	"go.etcd.io/bbolt"
)

// InitialMmap is the address space a database maps at first, for
// bbolt.Options.InitialMmapSize: a growth of the mapping inside a write
// transaction copies every key and value the transaction has touched onto
// the heap (bbolt dereferences its nodes before it remaps; 68 MB at the
// store of a 100,000-file scan). Only the pages read count in memory, so
// on 64-bit systems a gibibyte is mapped from the start. On Windows the
// file is made as large as its mapping: there it is windows bytes (0:
// bbolt's own growth).
func InitialMmap(windows int) int {
	switch {
	case runtime.GOOS == "windows":
		return windows
	case strconv.IntSize == 64:
		return 1 << 30
	}
	return 0
}

// releaseEvery is how many entries a Releaser counts between letting go
// of the mapped pages. The kernel maps 64 KiB around each page read, so
// entries read in no order may each cost 64 KiB: 64 of them, 4 MiB at
// most; in key order, a page or two.
const releaseEvery = 64

// Releaser lets go of a database's mapped pages (ReleaseIn) every
// releaseEvery entries its transactions touch, whichever transactions
// they are, and once a read or write is done with them (Settle): a walk
// or a bulk write of 100,000 entries would otherwise make the whole file
// resident for a moment, and many small reads or writes would make it
// resident for good, which counts in the process's resident memory. The
// zero value is ready; it is safe for concurrent use.
type Releaser struct{ n, settled atomic.Uint64 }

// Touched counts one more entry that tx read or wrote.
func (r *Releaser) Touched(tx *bbolt.Tx) {
	if r.n.Add(1)%releaseEvery == 0 {
		ReleaseIn(tx)
	}
}

// Settle lets go of b's pages if entries were touched since they were
// last let go of. It opens a read transaction: it is called after a
// read or write of b, never inside one.
func (r *Releaser) Settle(b *bbolt.DB) {
	if n := r.n.Load(); n%releaseEvery != 0 && r.settled.Swap(n) != n {
		Release(b)
	}
}
