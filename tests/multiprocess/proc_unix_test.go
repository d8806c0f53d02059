//go:build unix

package multiprocess

import (
	"io/fs"
	"os"
	"syscall"
)

// freezeProcess stops p (SIGSTOP).
func freezeProcess(p *os.Process) error { return p.Signal(syscall.SIGSTOP) }

// thawProcess lets a stopped p go on (SIGCONT).
func thawProcess(p *os.Process) error { return p.Signal(syscall.SIGCONT) }

// processAlive reports whether a process with that id exists.
func processAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// allocatedBytes is the space the file fi describes takes on disk.
func allocatedBytes(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return 0
}
