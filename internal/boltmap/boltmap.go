package boltmap

import (
	"runtime"
	"strconv"
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
