package foldersync

import (
	"os"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
)

// The hosting server's copy of the folder is lost, while it is stopped
// (its directory emptied, marker file included; its stored Local kept),
// then while it runs (its directory removed): each time it fills again
// from the devices, and nothing is deleted on them.
func TestHostingServerRebuildsLostCopy(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	alice.write(t, "a/one.txt", "1")
	bob.write(t, "two.txt", "2")
	n.waitEqual(alice, server, bob)
	want := readTree(t, alice.root)

	n.stop(server)
	moveEntries(t, server.root, t.TempDir())
	n.start(server)
	waitFor(t, 30*time.Second, "the server's copy rebuilt", func() bool { return treeDiff(want, readTree(t, server.root)) == "" })
	alice.write(t, "three.txt", "3")
	n.waitEqual(alice, server, bob)
	if got := bob.read(t, "a/one.txt"); got != "1" {
		t.Errorf("a/one.txt on bob after the server's rebuild = %q; want 1", got)
	}
	if st := n.status(server); st.Emptied || st.State == StateError {
		t.Errorf("the server's folder after its rebuild: emptied %v, state %s, last error %q; want it running", st.Emptied, st.State, st.LastError)
	}

	want = readTree(t, alice.root)
	if err := os.RemoveAll(server.root); err != nil {
		t.Fatal(err)
	}
	n.running(server).requestRescan()
	waitFor(t, 30*time.Second, "the server's removed copy made again", func() bool { return treeDiff(want, readTree(t, server.root)) == "" })
	bob.write(t, "four.txt", "4")
	n.waitEqual(alice, server, bob)
	if got := alice.read(t, "two.txt"); got != "2" {
		t.Errorf("two.txt on alice after the server's directory was removed = %q; want 2", got)
	}
}
