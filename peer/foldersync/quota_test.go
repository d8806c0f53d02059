package foldersync

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/syncfs"
)

func TestQuotaAdmit(t *testing.T) {
	file := func(name string, size int64) syncfs.FileInfo {
		return syncfs.FileInfo{Name: name, Type: syncfs.TypeFile, Size: size}
	}
	gone := func(name string) syncfs.FileInfo {
		return syncfs.FileInfo{Name: name, Type: syncfs.TypeFile, Deleted: true}
	}
	local := syncfs.Snapshot{"old": file("old", 600), "small": file("small", 100), "mine": file("mine", 50)}
	fetch := func(fi syncfs.FileInfo) syncfs.Action {
		return syncfs.Action{Kind: syncfs.ActFetch, Name: fi.Name, File: fi}
	}
	del := func(name string) syncfs.Action {
		return syncfs.Action{Kind: syncfs.ActDelete, Name: name, File: gone(name)}
	}
	tests := []struct {
		name        string
		actions     []syncfs.Action
		used, limit int64
		want        []string // names admitted, in order
		refused     int
		bytes       int64
	}{
		{"under the quota", []syncfs.Action{fetch(file("a", 300))}, 700, 1000, []string{"a"}, 0, 0},
		{"exactly at the quota", []syncfs.Action{fetch(file("a", 300))}, 700, 1300 - 300, []string{"a"}, 0, 0},
		{"past the quota", []syncfs.Action{fetch(file("a", 301))}, 700, 1000, nil, 1, 301},
		{"over already: a deletion goes", []syncfs.Action{del("old")}, 2000, 1000, []string{"old"}, 0, 0},
		{"over already: a file shrinks", []syncfs.Action{fetch(file("old", 10))}, 2000, 1000, []string{"old"}, 0, 0},
		{"a deletion makes room for a later file", []syncfs.Action{fetch(file("a", 500)), del("old")}, 700, 1000, []string{"a", "old"}, 0, 0},
		{"in plan order while it fits", []syncfs.Action{fetch(file("a", 200)), fetch(file("b", 200)), fetch(file("c", 50))}, 700, 1000, []string{"a", "c"}, 1, 200},
		{"a directory adds nothing", []syncfs.Action{{Kind: syncfs.ActMkDir, Name: "d", File: syncfs.FileInfo{Name: "d", Type: syncfs.TypeDir}}}, 5000, 1000, []string{"d"}, 0, 0},
		{"a conflict keeps the local copy", []syncfs.Action{{Kind: syncfs.ActConflict, Name: "small", File: file("small", 100), Also: ptrTo(file("small.conflict", 100))}}, 950, 1000, nil, 1, 100},
		{"a rename adds nothing", []syncfs.Action{{Kind: syncfs.ActRename, Name: "moved", From: "mine", File: file("moved", 50)}}, 5000, 1000, []string{"moved"}, 0, 0},
		{"a skip adds nothing", []syncfs.Action{{Kind: syncfs.ActSkip, Name: "x", File: file("x", 1<<40)}}, 999, 1000, []string{"x"}, 0, 0},
	}
	for _, tc := range tests {
		got, ref := quotaAdmit(tc.actions, local, tc.used, tc.limit)
		var names []string
		for _, a := range got {
			names = append(names, a.Name)
		}
		if !slices.Equal(names, tc.want) || ref.changes != tc.refused || ref.bytes != tc.bytes {
			t.Errorf("%s: quotaAdmit = %v, %d refused (%d bytes); want %v, %d (%d bytes)", tc.name, names, ref.changes, ref.bytes, tc.want, tc.refused, tc.bytes)
		}
	}
}

// TestQuotaAtHomeServer: the home server and the replica take a device's
// change while the owner's bytes stay within the quota, refuse one that
// would go past it (the device keeps the file and shows why; the change
// does not reach the home server through the replica), and take a
// shrinking change at once, which makes room for the held one.
func TestQuotaAtHomeServer(t *testing.T) {
	var limit atomic.Int64
	limit.Store(10 << 10)
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner}, func(c *Config) {
		c.Quota = func(user string) int64 {
			if user != "alice" {
				return 0
			}
			return limit.Load()
		}
		c.PullInterval = 100 * time.Millisecond
	})
	alice, server := n.nodes["alice"], n.server
	// The folder's replica, which alice's laptop and the home server
	// reach.
	replica := n.newNode("replica")
	n.access.SetServer(replica.host.ID())
	n.access.SetReplicas(n.folder, replica.host.ID())
	for _, h := range []*testNode{alice, server} {
		if err := h.host.Connect(replica.host.ID()); err != nil {
			t.Fatal(err)
		}
	}
	n.start(replica)

	// Under the quota: taken.
	alice.write(t, "a.txt", strings.Repeat("a", 4<<10))
	n.waitEqual(alice, server, replica)
	waitFor(t, 30*time.Second, "the quota in alice's status", func() bool {
		q := n.status(alice).Quota
		return q != nil && q.Used == 4<<10 && q.Limit == 10<<10 && q.User == "alice"
	})

	// Past it: refused, kept on the device, and said.
	alice.write(t, "b.txt", strings.Repeat("b", 8<<10))
	waitFor(t, 30*time.Second, "the refusal in alice's status", func() bool {
		return strings.Contains(n.status(alice).QuotaRefused, ErrQuota.Error())
	})
	waitFor(t, 30*time.Second, "the replica's refusal", func() bool {
		return replica.eng.folder(n.folder).refusal(alice.host.ID()) != ""
	})
	for _, s := range []*testNode{server, replica} {
		if got := s.read(t, "b.txt"); got != "" {
			t.Fatalf("the %s took b.txt (%d bytes) past the quota", s.name, len(got))
		}
	}
	if st := n.status(server); st.Quota == nil || st.Quota.Used != 4<<10 || st.Quota.Limit != 10<<10 {
		t.Errorf("the server's status quota = %+v; want 4 KiB of 10 KiB", st.Quota)
	}
	if st := n.status(alice); st.InSync || st.LocalChanges == 0 {
		t.Errorf("alice's status = in sync %v, %d local changes; want not in sync, b.txt waiting", st.InSync, st.LocalChanges)
	}
	if got := alice.read(t, "b.txt"); len(got) != 8<<10 {
		t.Errorf("alice's b.txt is %d bytes; want kept, 8 KiB", len(got))
	}

	// A shrink is taken, and makes room for b.txt.
	alice.write(t, "a.txt", "a")
	n.waitEqual(alice, server, replica)
	waitFor(t, 30*time.Second, "the refusal to clear", func() bool {
		st := n.status(alice)
		return st.QuotaRefused == "" && st.Quota != nil && st.Quota.Used == 8<<10+1
	})

	// Over the quota already (lowered by an admin): deleting still goes.
	limit.Store(1 << 10)
	if err := os.Remove(filepath.Join(alice.root, "b.txt")); err != nil {
		t.Fatal(err)
	}
	n.waitEqual(alice, server, replica)
	if got := server.read(t, "b.txt"); got != "" {
		t.Errorf("the deletion of b.txt did not reach the server over the quota")
	}
}

// ptrTo returns a pointer to a copy of f.
func ptrTo(f syncfs.FileInfo) *syncfs.FileInfo { return &f }
