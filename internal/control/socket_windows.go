package control

import (
	"errors"
	"syscall"
)

// restrictSocket does nothing on Windows, which has no mode bits: the
// socket (AF_UNIX, Windows 10 1803 and later) lies in the baton home under
// %AppData%, whose access list lets only the user (and administrators) in.
func restrictSocket(string) error { return nil }

// wsaeconnrefused is Winsock's "connection refused" (WSAECONNREFUSED).
const wsaeconnrefused = syscall.Errno(10061)

// refused reports whether err says nobody listens on the control socket.
func refused(err error) bool {
	return errors.Is(err, wsaeconnrefused) || errors.Is(err, syscall.ECONNREFUSED)
}
