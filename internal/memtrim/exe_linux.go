//go:build linux

package memtrim

import (
	"os"

	"golang.org/x/sys/unix"
)

// ReleaseExecutable lets go of the pages of the executable's read-only
// mappings (its code and constant data, ExecutableSpans) that the process
// touched: they count in its resident memory, though the page cache holds
// them, and most were touched only while the process started. What runs
// is mapped again from the page cache at once. It returns the bytes of
// the mappings let go of.
func ReleaseExecutable() int64 {
	exe, err := os.Executable()
	if err != nil {
		return 0
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0
	}
	var n int64
	for _, s := range ExecutableSpans(string(smaps), exe) {
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, s.Start, s.End-s.Start, unix.MADV_DONTNEED); e == 0 {
			n += int64(s.End - s.Start)
		}
	}
	return n
}
