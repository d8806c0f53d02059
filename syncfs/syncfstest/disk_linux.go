package syncfstest

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

// SmallDisk mounts a tmpfs of size bytes on dir, an existing empty
// directory, so that writes under dir fail with ENOSPC (syscall.ENOSPC)
// once it is full, and unmounts it when the test ends: register the
// cleanups of what uses dir (processes, engines) after calling it, so
// that they run first. It skips the test where a filesystem cannot be
// mounted (not root, not Linux). resize changes the filesystem's size in
// place, keeping its files.
func SmallDisk(t testing.TB, dir string, size int64) (resize func(size int64)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small filesystem needs root")
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Skipf("cannot mount a small filesystem on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			// Still in use by something the test left: detach it now,
			// gone once that lets go.
			if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmounting the small filesystem on %s: %v", dir, err)
			}
		}
	})
	return func(size int64) {
		t.Helper()
		if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d", size)); err != nil {
			t.Fatalf("resizing the small filesystem on %s: %v", dir, err)
		}
	}
}
