//go:build !linux

package memtrim

// ReleaseExecutable does nothing here: see exe_linux.go.
func ReleaseExecutable() int64 { return 0 }
