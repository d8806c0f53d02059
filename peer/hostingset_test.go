package peer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
)

// listsDevice reports whether n's status of folder id lists the device
// with peer ID device, of user, among those syncing with it.
func listsDevice(n *peer.Node, id, device, user string) bool {
	st, err := n.FolderStatus(context.Background(), id)
	if err != nil {
		return false
	}
	for _, d := range st.Devices {
		if d.ID == device && d.User == user {
			return true
		}
	}
	return false
}

// TestReplicasSetChangesHosting: a folder made with two replicas on a
// three-server chain is synced by all three servers; set back to one
// replica, the server dropped from its hosting set stops syncing it and
// keeps its copy on disk, while the others go on.
func TestReplicasSetChangesHosting(t *testing.T) {
	c := loginCluster(t)
	ann := startLANless(t, c, "ann-laptop", 1, "ann", "ann's secret") // home s2
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	two, one := 2, 1
	f, err := ann.CreateFolderWith(ctx, "Wide", collections.OptionsPatch{Replicas: &two})
	if err != nil {
		t.Fatalf("CreateFolderWith(2 replicas): %v", err)
	}
	st, err := ann.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hosts := st.FolderHosts(f)
	if len(hosts) != 3 || hosts[0] != c.Members[1].Key.ID() || f.Replicas != 2 {
		t.Fatalf("ann's folder: %d replicas, hosts %v; want 2, s2 (ann's home server) and both others", f.Replicas, hosts)
	}
	dirs := make([]string, len(hosts))
	for i, h := range hosts {
		dirs[i] = filepath.Join(c.Members[memberIndex(t, c, h)].DataDir, "folders", f.ID)
	}

	annDir := t.TempDir()
	if err := ann.SetFolders(ctx, map[string]string{f.ID: annDir}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(annDir, "a.txt"), []byte("first"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := map[string]string{"a.txt": "first"}
	for i, dir := range dirs {
		c.WaitFor("a.txt on hosting server "+c.Members[memberIndex(t, c, hosts[i])].Name, 60*time.Second,
			func() bool { return sameFiles(readFiles(t, dir), first) })
	}
	c.WaitFor("ann's laptop to sync with the three servers", 30*time.Second, func() bool { return syncsWith(ann, f.ID, hosts...) })
	// Each hosting server's status lists ann's laptop among the devices
	// syncing through it.
	for _, h := range hosts {
		i := memberIndex(t, c, h)
		c.WaitFor(c.Members[i].Name+" to list ann's laptop among the folder's devices", 30*time.Second, func() bool {
			return listsDevice(c.Node(i), f.ID, ann.ID().String(), "ann")
		})
	}

	if err := ann.SetFolderOptions(ctx, f.ID, collections.OptionsPatch{Replicas: &one}); err != nil {
		t.Fatalf("SetFolderOptions(1 replica): %v", err)
	}
	if st, err = ann.State(ctx); err != nil {
		t.Fatal(err)
	}
	g, _ := st.Folder(f.ID)
	if kept := st.FolderHosts(g); len(kept) != 2 || kept[0] != hosts[0] || kept[1] != hosts[1] {
		t.Fatalf("hosts with 1 replica %v; want the first two of %v", kept, hosts)
	}
	dropped := c.Node(memberIndex(t, c, hosts[2]))
	c.WaitFor("the dropped server to stop syncing the folder", 30*time.Second, func() bool {
		_, err := dropped.FolderStatus(ctx, f.ID)
		return errors.Is(err, foldersync.ErrUnknownFolder)
	})
	c.WaitFor("ann's laptop to sync with the two servers left", 30*time.Second, func() bool { return syncsWith(ann, f.ID, hosts[:2]...) })
	if st, err := ann.FolderStatus(ctx, f.ID); err != nil || len(st.Devices) != 0 {
		t.Errorf("ann's laptop lists devices syncing with it: %+v, %v; want none (no other device)", st.Devices, err)
	}

	if err := os.WriteFile(filepath.Join(annDir, "b.txt"), []byte("second"), 0o644); err != nil {
		t.Fatal(err)
	}
	second := map[string]string{"a.txt": "first", "b.txt": "second"}
	for i, dir := range dirs[:2] {
		c.WaitFor("b.txt on hosting server "+c.Members[memberIndex(t, c, hosts[i])].Name, 60*time.Second,
			func() bool { return sameFiles(readFiles(t, dir), second) })
	}
	if got := readFiles(t, dirs[2]); !sameFiles(got, first) {
		t.Errorf("the dropped server's copy is %v; want it kept as it was, %v", got, first)
	}
}
