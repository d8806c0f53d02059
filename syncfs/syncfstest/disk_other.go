//go:build !linux

package syncfstest

import "testing"

// SmallDisk skips the test: mounting a small filesystem is done on Linux
// only.
func SmallDisk(t testing.TB, dir string, size int64) (resize func(size int64)) {
	t.Helper()
	t.Skip("a small filesystem is mounted on Linux only")
	return nil
}
