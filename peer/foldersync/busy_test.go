package foldersync

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/syncfs"
)

// heldFS is a folder's disk where a program holds doc.txt open while held
// is set: it can be neither renamed over nor removed.
type heldFS struct {
	syncfs.WriteFS
	held *atomic.Bool
}

func (h heldFS) Rename(from, to string) error {
	if to == "doc.txt" && h.held.Load() {
		return fmt.Errorf("rename %s %s: %w", from, to, syncfs.ErrBusy)
	}
	return h.WriteFS.Rename(from, to)
}

// A change whose file another program holds open is shown as busy, not
// as failed, and is applied once the program lets go; the file is never
// lost meanwhile.
func TestBusyFileShownAndRetried(t *testing.T) {
	var held atomic.Bool
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner}, func(c *Config) {
		c.wrapFS = func(fsys syncfs.WriteFS) syncfs.WriteFS { return heldFS{fsys, &held} }
	})
	alice, server := n.nodes["alice"], n.server
	server.write(t, "doc.txt", "first")
	n.running(server).requestRescan()
	waitFor(t, 60*time.Second, "alice to take doc.txt", func() bool { return alice.read(t, "doc.txt") == "first" })

	held.Store(true)
	server.write(t, "doc.txt", "second, longer")
	n.running(server).requestRescan()
	waitFor(t, 60*time.Second, "alice to show doc.txt busy", func() bool {
		st := n.status(alice)
		return len(st.Busy) == 1 && st.Busy[0].Path == "doc.txt"
	})
	st := n.status(alice)
	if len(st.Failed) != 0 || st.Stuck || st.InSync || st.NeedFiles != 1 {
		t.Errorf("alice: failed %v, stuck %v, in sync %v, need %d; want no failure, not in sync, one file needed", st.Failed, st.Stuck, st.InSync, st.NeedFiles)
	}
	if got := alice.read(t, "doc.txt"); got != "first" {
		t.Errorf("alice: doc.txt = %q while held; want it as it was", got)
	}

	held.Store(false)
	waitFor(t, 60*time.Second, "alice to take doc.txt once let go", func() bool {
		st := n.status(alice)
		return alice.read(t, "doc.txt") == "second, longer" && len(st.Busy) == 0 && st.InSync
	})
}
