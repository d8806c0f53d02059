package durable

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Batched is true where SyncFS makes a batch of writes durable: a
// batch's barrier is one syncfs(2), which also makes directory entries
// durable.
const Batched = true

// SyncFS flushes the filesystem holding d to disk (syncfs(2)). It reports
// a write-back error on that filesystem since d was opened, so d is to be
// opened before the writes it makes durable.
func SyncFS(d *os.File) error {
	rc, err := d.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Syncfs(int(fd)) }); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("syncfs %s: %w", d.Name(), serr)
	}
	return nil
}
