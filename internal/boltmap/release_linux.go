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
		if size := tx.Size(); size > 0 {
			_, _, _ = unix.Syscall(unix.SYS_MADVISE, b.Info().Data, uintptr(size), unix.MADV_DONTNEED)
		}
		return nil
	})
}
