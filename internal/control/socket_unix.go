//go:build unix

package control

import (
	"errors"
	"os"
	"syscall"
)

// restrictSocket makes the control socket at path the user's alone (0600).
func restrictSocket(path string) error { return os.Chmod(path, 0o600) }

// refused reports whether err says nobody listens on the control socket.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
