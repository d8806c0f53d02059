package boltmap

import (
	"runtime"
	"strconv"

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

// releaseEvery is how many entries Touched counts between letting go of
// the mapped pages: the kernel maps 64 KiB around each page read, so 1,024
// entries of a store that was written in many transactions may take a
// mebibyte.
const releaseEvery = 1024

// Touched counts one more entry that tx read or wrote in *n, and lets go
// of the mapped pages touched so far (ReleaseIn) every releaseEvery
// entries: a walk of 100,000 entries otherwise makes the whole file
// resident for a moment, which counts in the process's peak.
func Touched(tx *bbolt.Tx, n *int) {
	if *n++; *n%releaseEvery == 0 {
		ReleaseIn(tx)
	}
}
