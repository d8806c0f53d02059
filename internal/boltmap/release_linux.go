//go:build linux

package boltmap

import (
	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Release lets go of the pages of b's memory map that reads touched:
// they stay in the kernel's page cache, as the file's, but no longer count
// in the process's resident memory (bbolt reads every page through its
// map, so a plan that read a peer's 100,000 entries, or a store that
// wrote as many, kept 50 MiB of each file resident). The next read of a
// page maps it again from the cache. The read transaction keeps the map
// in place meanwhile (bbolt remaps only once no read transaction is open).
func Release(b *bbolt.DB) {
	_ = b.View(func(tx *bbolt.Tx) error {
		ReleaseIn(tx)
		return nil
	})
}

// ReleaseIn is Release from inside a read transaction, tx, which keeps the
// map in place: for a long walk of a database to let go of what it read
// as it goes on (Release itself would open a second read transaction,
// which waits forever behind a write transaction waiting to grow the map).
func ReleaseIn(tx *bbolt.Tx) {
	if size := tx.Size(); size > 0 {
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, tx.DB().Info().Data, uintptr(size), unix.MADV_DONTNEED)
	}
}
