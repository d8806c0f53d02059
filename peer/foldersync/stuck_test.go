package foldersync

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/syncfs"
)

// tempFilesIn lists the applier's temporary files under root.
func tempFilesIn(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && syncfs.IsTemp(d.Name()) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// The server's fetch of a large file is cut off half way, its partial
// file kept to be resumed; then alice deletes the file (or the file and
// its directory) before it arrived, as a git checkout does. The server
// must take the deletions, keep no partial file, and be in sync: a
// partial file once made the directory's deletion fail for ever.
func TestPartialOfDeletedFileLeavesNoTrace(t *testing.T) {
	for _, tc := range []struct {
		name, remove string
	}{
		{"file", "proj/cmd/baton/big.bin"},
		{"directory", "proj/cmd/baton"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner}, func(c *Config) { c.Fetches = 2 })
			alice, server := n.nodes["alice"], n.server
			waitFor(t, 30*time.Second, "alice's engine", func() bool { return n.running(alice) != nil })
			alice.write(t, "proj/cmd/baton/keep.txt", "kept\n")
			n.waitEqual(alice, server)

			broken := breakBlocksAfter(alice, 2)
			alice.write(t, "proj/cmd/baton/big.bin", string(randomBytes(32<<20)))
			waitFor(t, 30*time.Second, "the transfer to fail, a partial file kept", func() bool {
				return broken.Load() && strings.Contains(n.status(server).LastError, "not applied") && len(tempFilesIn(t, server.root)) > 0
			})
			if err := os.RemoveAll(filepath.Join(alice.root, filepath.FromSlash(tc.remove))); err != nil {
				t.Fatal(err)
			}
			alice.host.SetHandler(ProtoBlock, alice.eng.handleBlock)
			n.waitEqual(alice, server)
			waitFor(t, 30*time.Second, "no temporary file on the server", func() bool { return len(tempFilesIn(t, server.root)) == 0 })
			if st := n.status(server); st.LastError != "" || st.Stuck || len(st.Failed) > 0 {
				t.Errorf("server status: %+v; want no error, nothing failed", st)
			}
		})
	}
}

// A change that keeps failing is named in the folder's status with why,
// and after StuckAfter attempts the folder says it is stuck; once the
// change goes through, both are gone.
func TestStuckChangeShown(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner}, func(c *Config) { c.StuckAfter = 3 })
	alice, server := n.nodes["alice"], n.server
	waitFor(t, 30*time.Second, "alice's engine", func() bool { return n.running(alice) != nil })
	alice.host.SetHandler(ProtoBlock, func(s Stream, _ lpeer.ID) { _ = s.Reset() })
	alice.write(t, "docs/alice.bin", string(randomBytes(1<<20)))
	waitFor(t, 30*time.Second, "the change to fail once, named in the status", func() bool {
		st := n.status(server)
		return len(st.Failed) == 1 && st.Failed[0].Path == "docs/alice.bin" && !st.Stuck
	})
	if st := n.status(server); st.InSync || !strings.Contains(st.Failed[0].Reason, "block unavailable") || strings.HasPrefix(st.LastError, "stuck") {
		t.Errorf("after one failure: %+v; want not in sync, docs/alice.bin failed for want of blocks, not stuck", st)
	}
	waitFor(t, 60*time.Second, "the folder stuck", func() bool { return n.status(server).Stuck })
	st := n.status(server)
	if f := st.Failed; len(f) != 1 || f[0].Path != "docs/alice.bin" || f[0].Attempts < 3 || !strings.Contains(f[0].Reason, "block unavailable") {
		t.Errorf("failed changes of the stuck folder: %+v; want docs/alice.bin, 3 attempts or more, block unavailable", f)
	}
	if !strings.HasPrefix(st.LastError, "stuck after ") || st.InSync {
		t.Errorf("stuck folder: last error %q, in sync %v; want \"stuck after ...\", not in sync", st.LastError, st.InSync)
	}

	alice.host.SetHandler(ProtoBlock, alice.eng.handleBlock)
	n.waitEqual(alice, server)
	if st := n.status(server); st.Stuck || len(st.Failed) > 0 || st.LastError != "" {
		t.Errorf("after the change went through: %+v; want not stuck, nothing failed, no error", st)
	}
}
