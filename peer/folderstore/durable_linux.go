package folderstore

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// batchDurable is true where one syncfs(2) makes a batch of block files
// durable (PutBatch); elsewhere each block is Put, fsynced on its own.
const batchDurable = true

// syncFS flushes the filesystem holding d (syncfs(2)). d is to be opened
// before the writes it makes durable: syncfs reports the write-back errors
// of that filesystem since d was opened.
func syncFS(d *os.File) error {
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
