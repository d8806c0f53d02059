package foldersync

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/syncfs/syncfstest"
)

// A device whose disk fills up while it takes the server's changes: the
// file that does not fit keeps its old content (nothing is renamed into
// place), the device still announces the old version, its status says
// why, and it tries again: once there is room, everything arrives and no
// temporary file is left.
func TestDiskFullWhileApplying(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	// Bob's folder on a small filesystem, mounted before his engine runs
	// (and unmounted after it stops).
	n.stop(bob)
	resize := syncfstest.SmallDisk(t, bob.root, 4<<20)
	n.start(bob)
	old := string(randomBytes(1 << 20))
	alice.write(t, "f.bin", old)
	n.waitEqual(alice, server, bob)
	before, _ := n.running(bob).pub.Load().get("f.bin")

	grown := string(randomBytes(8 << 20))
	alice.write(t, "f.bin", grown)
	alice.write(t, "small.txt", "small")
	waitFor(t, 60*time.Second, "the new f.bin on the server", func() bool { return server.read(t, "f.bin") == grown })
	waitFor(t, 60*time.Second, "bob's disk full", func() bool { return strings.Contains(n.status(bob).LastError, "no space left on device") })
	if got := bob.read(t, "f.bin"); got != old {
		t.Fatalf("bob's f.bin has %d bytes after a write that did not fit; want its old %d", len(got), len(old))
	}
	if e, _ := n.running(bob).pub.Load().get("f.bin"); !sameEntry(e.fi, before.fi) {
		t.Errorf("bob announces f.bin at %v; want the version he has, %v", e.fi.Version, before.fi.Version)
	}
	if got := server.read(t, "f.bin"); got != grown {
		t.Errorf("the server's f.bin changed (%d bytes) while bob's disk was full", len(got))
	}

	resize(64 << 20)
	n.waitEqual(alice, server, bob)
	if got := bob.read(t, "f.bin"); got != grown {
		t.Errorf("bob's f.bin has %d bytes once there is room; want the new %d", len(got), len(grown))
	}
	if tmp := tempNames(t, bob.root); len(tmp) > 0 {
		t.Errorf("temporary files left on bob: %v", tmp)
	}
}

// A change the watcher never sees is found by the periodic rescan and
// synced: a file written through a hard link from outside the folder
// (inotify reports a write to the directory of the name written through,
// not to the folder's).
func TestRescanFindsUnwatchedChange(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite},
		func(c *Config) { c.RescanInterval = 500 * time.Millisecond })
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	alice.write(t, "f.txt", "first")
	n.waitEqual(alice, server, bob)

	link := filepath.Join(t.TempDir(), "link")
	if err := os.Link(filepath.Join(alice.root, "f.txt"), link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(link, []byte("written through a hard link"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the change on the server", func() bool { return server.read(t, "f.txt") == "written through a hard link" })
	n.waitEqual(alice, server, bob)
}
