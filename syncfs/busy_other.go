//go:build !windows

package syncfs

import "syscall"

// busyErrnos are the errors that say another program holds a file: none
// here, where a file open elsewhere can be renamed over and removed.
var busyErrnos []syscall.Errno
