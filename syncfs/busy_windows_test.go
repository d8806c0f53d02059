package syncfs

import (
	"testing"

	"golang.org/x/sys/windows"
)

// The codes named in busy.go are Windows' own.
func TestWindowsBusyCodes(t *testing.T) {
	for _, c := range []struct{ ours, theirs error }{
		{winAccessDenied, windows.ERROR_ACCESS_DENIED},
		{winSharingViolation, windows.ERROR_SHARING_VIOLATION},
		{winLockViolation, windows.ERROR_LOCK_VIOLATION},
	} {
		if c.ours != c.theirs {
			t.Errorf("%v = %d; want %d", c.theirs, c.ours, c.theirs)
		}
	}
}
