package peer_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// startLANless is startDevice for an agent that finds no other device:
// no mDNS, no Config.Peers. It syncs through the servers only.
func startLANless(t *testing.T, c *peertest.PublicCluster, name string, i int, user, password string) *peer.Node {
	t.Helper()
	a := peertest.NewAgent(t, name)
	a.Config = func(cfg *peer.Config) { cfg.NoLAN = true }
	res, err := login(a, c.PublicP2P(i), user, password)
	if err != nil {
		t.Fatalf("login %s as %s: %v", name, user, err)
	}
	n := a.Start(res.Genesis, res.Cert)
	c.WaitFor(name+" accepted as "+user+"'s device everywhere", 10*time.Second, func() bool {
		if !validEverywhere(t, c, user, a.ID(), true) {
			return false
		}
		st, _, _ := n.DeviceStatus(context.Background())
		return st.Accepted
	})
	return n
}

// memberIndex is the index of the cluster member whose ID is id.
func memberIndex(t *testing.T, c *peertest.PublicCluster, id lpeer.ID) int {
	t.Helper()
	for i, m := range c.Members {
		if m.Key.ID() == id {
			return i
		}
	}
	t.Fatalf("%s is no member of the cluster", id)
	return -1
}

// syncsWith reports whether n's status of folder id lists exactly the
// servers want as those it syncs with.
func syncsWith(n *peer.Node, id string, want ...lpeer.ID) bool {
	st, err := n.FolderStatus(context.Background(), id)
	if err != nil {
		return false
	}
	var ids []string
	for _, w := range want {
		ids = append(ids, w.String())
	}
	return slices.Equal(st.Servers, ids)
}

// TestReplicaWhileHomeIsDown: a folder is hosted by its owner's home server
// and by the next server of the chain, which keeps its own copy. With the
// home server stopped, a change on one member's device reaches the other
// member's through the replica (the devices do not reach each other), and
// the home server, restarted, catches up with it.
func TestReplicaWhileHomeIsDown(t *testing.T) {
	c := loginCluster(t)
	ann := startLANless(t, c, "ann-laptop", 1, "ann", "ann's secret") // home s2
	bob := startLANless(t, c, "bob-desk", 2, "bob", "bob's secret")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	f, err := ann.CreateFolder(ctx, "Shared")
	if err != nil {
		t.Fatalf("CreateFolder: %v", err)
	}
	if err := ann.ShareFolder(ctx, f.ID, "bob", collections.RightReadWrite); err != nil {
		t.Fatalf("ShareFolder: %v", err)
	}
	st, err := ann.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hosts := st.FolderHosts(f)
	if len(hosts) != 2 || hosts[0] != c.Members[1].Key.ID() {
		t.Fatalf("hosts of ann's folder %v; want s2 (ann's home server) and a replica", hosts)
	}
	home, replica := 1, memberIndex(t, c, hosts[1])
	homeDir := filepath.Join(c.Members[home].DataDir, "folders", f.ID)
	replicaDir := filepath.Join(c.Members[replica].DataDir, "folders", f.ID)

	annDir, bobDir := t.TempDir(), t.TempDir()
	if err := ann.SetFolders(ctx, map[string]string{f.ID: annDir}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("bob's desk to see the folder", 20*time.Second, func() bool { _, ok := folderAt(t, bob, f.ID); return ok })
	if err := bob.SetFolders(ctx, map[string]string{f.ID: bobDir}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(annDir, "a.txt"), []byte("from ann"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := map[string]string{"a.txt": "from ann"}
	for name, dir := range map[string]string{"bob's desk": bobDir, "the home server": homeDir, "the replica": replicaDir} {
		c.WaitFor("a.txt on "+name, 60*time.Second, func() bool { return sameFiles(readFiles(t, dir), first) })
	}
	if rst, err := c.Node(replica).FolderStatus(ctx, f.ID); err != nil || rst.Role != "server" {
		t.Errorf("the replica's status of the folder: %+v, %v; want role server", rst, err)
	}
	for name, n := range map[string]*peer.Node{"ann's laptop": ann, "bob's desk": bob} {
		c.WaitFor(name+" to sync with both servers", 30*time.Second, func() bool { return syncsWith(n, f.ID, hosts...) })
	}

	c.Stop(home)
	if connectedTo(ann, bob.ID()) || connectedTo(bob, ann.ID()) {
		t.Fatal("ann's laptop and bob's desk are connected: the change could go directly")
	}
	if err := os.WriteFile(filepath.Join(bobDir, "b.txt"), []byte("from bob, s2 down"), 0o644); err != nil {
		t.Fatal(err)
	}
	second := map[string]string{"a.txt": "from ann", "b.txt": "from bob, s2 down"}
	c.WaitFor("b.txt on ann's laptop through the replica", 60*time.Second, func() bool { return sameFiles(readFiles(t, annDir), second) })
	c.WaitFor("ann's laptop to sync with the replica only", 30*time.Second, func() bool { return syncsWith(ann, f.ID, hosts[1]) })
	if connectedTo(ann, bob.ID()) || connectedTo(bob, ann.ID()) {
		t.Error("ann's laptop and bob's desk connected while the home server was down")
	}
	// The history, asked of the home server until now, comes from the
	// replica's own store while the home server is down.
	var vs []peer.FolderVersion
	c.WaitFor("b.txt in the folder's history on ann's laptop, from the replica", 30*time.Second, func() bool {
		vs, err = ann.FolderHistory(ctx, f.ID, "b.txt")
		return err == nil && len(vs) > 0
	})
	if last := vs[len(vs)-1]; last.Entry.Name != "b.txt" || last.Entry.Deleted || last.Device != bob.ID().String() {
		t.Errorf("the last version of b.txt in the history from the replica: %+v; want b.txt by bob's desk", last)
	}
	exported := t.TempDir()
	if _, err := bob.ExportFolder(ctx, f.ID, peer.HistoryPoint{}, exported); err != nil {
		t.Errorf("ExportFolder on bob's desk with the home server down: %v", err)
	} else if got := readFiles(t, exported); !sameFiles(got, second) {
		t.Errorf("the export from the replica holds %v; want %v", got, second)
	}

	c.Start(home)
	c.WaitFor("b.txt on the restarted home server", 60*time.Second, func() bool { return sameFiles(readFiles(t, homeDir), second) })
	c.WaitFor("ann's laptop to sync with both servers again", 60*time.Second, func() bool { return syncsWith(ann, f.ID, hosts...) })
}

// keepOpt is the options change setting a folder's retention policy to
// text (checked by the home server).
func keepOpt(text string) collections.OptionsPatch { return collections.OptionsPatch{Keep: &text} }
