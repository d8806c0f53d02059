//go:build !darwin

package syncfs

// dirsOnlyDefault: elsewhere than on macOS, fsnotify watches each
// directory without a descriptor per file (inotify on Linux,
// ReadDirectoryChangesW on Windows), so files are watched too.
const dirsOnlyDefault = false

// dirQueue is the kqueue of directories, which only macOS has.
type dirQueue struct {
	dirBackend
	changed <-chan string
	errs    <-chan error
}

// openDirQueue answers errNoDirQueue: Run uses fsnotify, whose events on
// files it drops with DirsOnly.
func openDirQueue(bool) (*dirQueue, error) { return nil, errNoDirQueue }
