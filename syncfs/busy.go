package syncfs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"
)

// ErrBusy reports that another program holds a file open so that it
// cannot be replaced or removed (on Windows, a sharing or lock violation).
// The change is not applied and nothing is lost: the entry stays as it
// was, and the next attempt tries again. A WriteFS may report a busy file
// with an error wrapping it; the disk reports one with the system's own
// errors (on Windows ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION and
// ERROR_ACCESS_DENIED).
var ErrBusy = errors.New("in use by another program")

// Windows' system error codes for a file another program holds
// (winerror.h; golang.org/x/sys/windows has the same values), named here
// so that the classification is tested on every system.
const (
	winAccessDenied     syscall.Errno = 5  // ERROR_ACCESS_DENIED: open without FILE_SHARE_DELETE
	winSharingViolation syscall.Errno = 32 // ERROR_SHARING_VIOLATION
	winLockViolation    syscall.Errno = 33 // ERROR_LOCK_VIOLATION: a locked range
)

// windowsBusy are the errors Windows gives a rename over (or a removal
// of) a file another program holds open.
var windowsBusy = []syscall.Errno{winSharingViolation, winLockViolation, winAccessDenied}

// busyIn reports whether err is one of the errnos in busy.
func busyIn(err error, busy []syscall.Errno) bool {
	var e syscall.Errno
	return errors.As(err, &e) && slices.Contains(busy, e)
}

// busyWaits are the waits between the attempts at an operation that
// finds its file busy: about 1.5 s in all, long enough for a program that
// saves a file to close it, short enough that the folder goes on.
var busyWaits = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}

// busyWait returns the wait before attempt attempt+1 after attempt
// (from 0) found the file busy, and false once there is to be none.
func busyWait(attempt int) (time.Duration, bool) {
	if attempt >= len(busyWaits) {
		return 0, false
	}
	return busyWaits[attempt], true
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryBusy runs op on name, again after the busyWaits while it fails
// because another program holds the file, and then returns an error
// wrapping ErrBusy and op's.
func (ap *Applier) retryBusy(ctx context.Context, name string, op func() error) error {
	isBusy, sleep := ap.busy, ap.sleep
	if isBusy == nil {
		isBusy = func(err error) bool { return errors.Is(err, ErrBusy) || busyIn(err, busyErrnos) }
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil || !isBusy(err) {
			return err
		}
		d, ok := busyWait(attempt)
		if !ok {
			return fmt.Errorf("%w: %s, after %d attempts: %w", ErrBusy, name, attempt+1, err)
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}
