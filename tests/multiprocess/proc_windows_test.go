package multiprocess

import (
	"errors"
	"io/fs"
	"os"
)

// The multi-process tests run on Linux (they cut servers off with
// iptables); these let the package build on Windows, so that it is
// type-checked there.

var errNotOnWindows = errors.New("not available on Windows")

func freezeProcess(*os.Process) error { return errNotOnWindows }

func thawProcess(*os.Process) error { return errNotOnWindows }

func processAlive(int) bool { return false }

// allocatedBytes is the file's size: Windows' FileInfo does not tell the
// space allocated.
func allocatedBytes(fi fs.FileInfo) int64 { return fi.Size() }
