package syncfs

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// dirsOnlyDefault: on macOS, fsnotify (kqueue) would hold a descriptor
// open for every file watched; directories only are watched.
const dirsOnlyDefault = true

// dirQueue watches directories, and only directories, with a kqueue: one
// descriptor per directory, opened with O_EVTONLY (it does not keep the
// volume from being unmounted). A change of a directory's entries
// (NOTE_WRITE) sends the directory's path on changed; the directory
// removed, renamed or revoked sends its parent's, whose entries changed.
// Writes to the files in a directory are not seen.
type dirQueue struct {
	kq      int
	wake    [2]int // a pipe: closing its write end ends read
	changed chan string
	errs    chan error
	done    chan struct{} // closed when read has returned
	closing chan struct{}

	mu     sync.Mutex
	byFD   map[int]string
	byPath map[string]int
}

// openDirQueue opens a kqueue of directories and starts the goroutine
// that reads it (Close stops it); errNoDirQueue unless dirsOnly.
func openDirQueue(dirsOnly bool) (*dirQueue, error) {
	if !dirsOnly {
		return nil, errNoDirQueue
	}
	kq, err := unix.Kqueue()
	if err != nil {
		return nil, fmt.Errorf("kqueue: %w", err)
	}
	q := &dirQueue{kq: kq, changed: make(chan string, 256), errs: make(chan error, 1),
		done: make(chan struct{}), closing: make(chan struct{}), byFD: map[int]string{}, byPath: map[string]int{}}
	if err := unix.Pipe(q.wake[:]); err != nil {
		unix.Close(kq)
		return nil, fmt.Errorf("kqueue: %w", err)
	}
	unix.CloseOnExec(q.wake[0])
	unix.CloseOnExec(q.wake[1])
	ev := []unix.Kevent_t{{}}
	unix.SetKevent(&ev[0], q.wake[0], unix.EVFILT_READ, unix.EV_ADD)
	if _, err := unix.Kevent(kq, ev, nil, nil); err != nil {
		unix.Close(kq)
		unix.Close(q.wake[0])
		unix.Close(q.wake[1])
		return nil, fmt.Errorf("kqueue: %w", err)
	}
	go q.read()
	return q, nil
}

// Add watches the directory at path.
func (q *dirQueue) Add(path string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.byPath[path]; ok {
		return nil
	}
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, unix.O_EVTONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("watching %s: %w", path, err)
	}
	ev := []unix.Kevent_t{{}}
	unix.SetKevent(&ev[0], fd, unix.EVFILT_VNODE, unix.EV_ADD|unix.EV_CLEAR|unix.EV_ENABLE)
	ev[0].Fflags = unix.NOTE_WRITE | unix.NOTE_DELETE | unix.NOTE_RENAME | unix.NOTE_REVOKE
	if _, err := unix.Kevent(q.kq, ev, nil, nil); err != nil {
		unix.Close(fd)
		return fmt.Errorf("watching %s: %w", path, err)
	}
	q.byFD[fd], q.byPath[path] = path, fd
	return nil
}

// Remove stops watching the directory at path: closing its descriptor
// takes it out of the kqueue.
func (q *dirQueue) Remove(path string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	fd, ok := q.byPath[path]
	if !ok {
		return nil
	}
	delete(q.byPath, path)
	delete(q.byFD, fd)
	return unix.Close(fd)
}

// Close stops read, waits for it, and closes every descriptor.
func (q *dirQueue) Close() error {
	close(q.closing)
	unix.Close(q.wake[1])
	<-q.done
	q.mu.Lock()
	defer q.mu.Unlock()
	for fd := range q.byFD {
		unix.Close(fd)
	}
	clear(q.byFD)
	clear(q.byPath)
	unix.Close(q.wake[0])
	return unix.Close(q.kq)
}

// read turns kevents into directory paths on changed until Close.
func (q *dirQueue) read() {
	defer close(q.done)
	buf := make([]unix.Kevent_t, 64)
	for {
		n, err := unix.Kevent(q.kq, nil, buf, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			select {
			case q.errs <- fmt.Errorf("reading kqueue: %w", err):
			default:
			}
			return
		}
		for _, ev := range buf[:n] {
			fd := int(ev.Ident)
			if fd == q.wake[0] {
				return
			}
			q.mu.Lock()
			p, ok := q.byFD[fd]
			q.mu.Unlock()
			if !ok {
				continue // removed meanwhile
			}
			if ev.Fflags&(unix.NOTE_DELETE|unix.NOTE_RENAME|unix.NOTE_REVOKE) != 0 {
				p = filepath.Dir(p)
			}
			select {
			case q.changed <- p:
			case <-q.closing:
				return
			}
		}
	}
}
