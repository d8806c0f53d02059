package foldersync

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
)

// On the server, a change of one member that could not be applied stays
// in the folder's status while changes of another member go through: the
// folder is not in sync and says why until the failed change arrives.
func TestFailedChangeOutlivesOtherMembersChanges(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "carol": collections.RightReadWrite}, nil)
	alice, carol, server := n.nodes["alice"], n.nodes["carol"], n.server
	waitFor(t, 30*time.Second, "alice's engine", func() bool { return n.running(alice) != nil })
	// Alice announces a file but serves none of its blocks.
	var broken atomic.Bool
	broken.Store(true)
	alice.host.SetHandler(ProtoBlock, func(s Stream, p lpeer.ID) {
		if broken.Load() {
			_ = s.Reset()
			return
		}
		alice.eng.handleBlock(s, p)
	})
	big := string(randomBytes(1 << 20))
	alice.write(t, "alice.bin", big)
	waitFor(t, 30*time.Second, "alice's change to fail on the server", func() bool {
		return strings.Contains(n.status(server).LastError, "not applied")
	})

	before := n.status(server).LastSync
	carol.write(t, "carol.txt", "carol's")
	// Carol's index was applied in full; alice's change is still missing.
	waitFor(t, 30*time.Second, "carol's change on the server", func() bool {
		return server.read(t, "carol.txt") == "carol's" && n.status(server).LastSync.After(before)
	})
	if st := n.status(server); st.InSync || !strings.Contains(st.LastError, "not applied") {
		t.Errorf("server status after carol's change went through and alice's did not: in sync %v, last error %q; want not in sync, alice's failure", st.InSync, st.LastError)
	}

	broken.Store(false)
	waitFor(t, 60*time.Second, "alice's change on the server", func() bool { return server.read(t, "alice.bin") == big })
	waitFor(t, 30*time.Second, "the server in sync", func() bool {
		st := n.status(server)
		return st.InSync && st.LastError == ""
	})
}

// A member's failed change is forgotten once the folder is no longer
// shared with them: nothing of theirs is taken any more, so nothing of
// theirs keeps the folder out of sync.
func TestFailedChangeOfFormerMemberForgotten(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "carol": collections.RightReadWrite}, nil)
	alice, carol, server := n.nodes["alice"], n.nodes["carol"], n.server
	waitFor(t, 30*time.Second, "carol's engine", func() bool { return n.running(carol) != nil })
	carol.host.SetHandler(ProtoBlock, func(s Stream, _ lpeer.ID) { _ = s.Reset() })
	carol.write(t, "carol.bin", string(randomBytes(1<<20)))
	waitFor(t, 30*time.Second, "carol's change to fail on the server", func() bool {
		st := n.status(server)
		return !st.InSync && strings.Contains(st.LastError, "not applied")
	})

	fo, _ := n.access.Folder(n.folder)
	members := map[string]collections.Right{}
	for u, r := range fo.Members {
		if u != "carol" {
			members[u] = r
		}
	}
	fo.Members = members
	n.access.SetFolder(fo)
	// The next change of a member has the server look at its members.
	alice.write(t, "alice.txt", "alice's")
	waitFor(t, 30*time.Second, "the server in sync without carol", func() bool {
		st := n.status(server)
		return st.InSync && st.LastError == ""
	})
	if _, err := os.Stat(filepath.Join(server.root, "carol.bin")); err == nil {
		t.Error("carol.bin reached the server after carol left the folder")
	}
}

// A former member's failed change is forgotten, and the folder shown in
// sync, also when no member left can write it: the server then applies
// nobody's index that would have its status looked at again.
func TestFailedChangeOfLastWriterForgotten(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"carol": collections.RightReadWrite, "dave": collections.RightReadOnly}, nil)
	carol, server := n.nodes["carol"], n.server
	waitFor(t, 30*time.Second, "carol's engine", func() bool { return n.running(carol) != nil })
	carol.host.SetHandler(ProtoBlock, func(s Stream, _ lpeer.ID) { _ = s.Reset() })
	carol.write(t, "carol.bin", string(randomBytes(1<<20)))
	waitFor(t, 30*time.Second, "carol's change to fail on the server", func() bool {
		st := n.status(server)
		return !st.InSync && strings.Contains(st.LastError, "not applied")
	})

	fo, _ := n.access.Folder(n.folder)
	fo.Members = map[string]collections.Right{"dave": collections.RightReadOnly}
	n.access.SetFolder(fo)
	// The server's retry has it look at its members again.
	waitFor(t, 30*time.Second, "the server in sync without carol", func() bool {
		st := n.status(server)
		return st.InSync && st.LastError == ""
	})
}
