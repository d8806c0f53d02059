package peer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/syncfs"
)

// readFiles returns the regular files under dir (the folder marker and
// baton's own files aside), by slash path.
func readFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	// A folder not made yet holds nothing, and a file gone while the walk
	// ran is not there: callers wait until the files are what they want.
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() || filepath.Base(p)[0] == '.' {
			return err
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameFiles(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestFolderHistoryRestore: the hosting server keeps every version of a
// folder; a file deleted on the owner's laptop is listed in the history
// seen from a read-only member's desk, exported there as it was, not
// restored by it (refused), and restored by the owner's laptop: it
// arrives on every member's device.
func TestFolderHistoryRestore(t *testing.T) {
	c := loginCluster(t)
	ann := startDevice(t, c, "ann-laptop", 0, "ann", "ann's secret") // home s2
	bob := startDevice(t, c, "bob-desk", 2, "bob", "bob's secret")
	server := c.Node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	f, err := ann.CreateFolder(ctx, "Docs")
	if err != nil {
		t.Fatalf("CreateFolder: %v", err)
	}
	if err := ann.ShareFolder(ctx, f.ID, "bob", collections.RightReadOnly); err != nil {
		t.Fatalf("ShareFolder: %v", err)
	}
	// The folder's retention policy: set by its owner through the hosting
	// server, which refuses bad text and applies what it records.
	if got := peer.RetentionOf(server, f.ID); got != "all:1d,daily:30d,weekly:365d" {
		t.Errorf("retention of a new folder = %q; want the default", got)
	}
	if err := ann.SetFolderOptions(ctx, f.ID, keepOpt("weekly:forever,all:1d")); err == nil {
		t.Error("a retention policy out of order was accepted")
	}
	if err := ann.SetFolderOptions(ctx, f.ID, keepOpt("all:2d,daily:forever")); err != nil {
		t.Fatalf("setting the retention policy: %v", err)
	}
	c.WaitFor("the server to apply the policy", 20*time.Second, func() bool {
		return peer.RetentionOf(server, f.ID) == "all:2d,daily:forever"
	})
	if err := bob.SetFolderOptions(ctx, f.ID, keepOpt("all:1d")); err == nil {
		t.Error("a read-only member set the retention policy")
	}
	annDir, bobDir := t.TempDir(), t.TempDir()
	if err := ann.SetFolders(ctx, map[string]string{f.ID: annDir}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("bob's desk to see the folder", 20*time.Second, func() bool { _, ok := folderAt(t, bob, f.ID); return ok })
	if err := bob.SetFolders(ctx, map[string]string{f.ID: bobDir}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(annDir, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"a.txt": "version one", "dir/b.txt": "B"} {
		if err := os.WriteFile(filepath.Join(annDir, filepath.FromSlash(name)), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := map[string]string{"a.txt": "version one", "dir/b.txt": "B"}
	c.WaitFor("the files on bob's desk", 60*time.Second, func() bool { return sameFiles(readFiles(t, bobDir), before) })

	var (
		kept peer.FolderVersion
		last string // what the last look at a history found
	)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the last look at a history found: %s", last)
		}
	})
	c.WaitFor("a.txt in the server's history", 30*time.Second, func() bool {
		vs, err := server.FolderHistory(ctx, f.ID, "a.txt")
		last = fmt.Sprintf("%+v, %v", vs, err)
		if err != nil || len(vs) == 0 {
			return false
		}
		kept = vs[0]
		return true
	})
	if kept.Entry.Deleted || kept.Entry.Size != int64(len("version one")) || kept.Device != ann.ID().String() || kept.User != "ann" {
		t.Errorf("a.txt's first version = %+v; want a live file of 11 bytes by ann's laptop (user ann)", kept)
	}

	if err := os.Remove(filepath.Join(annDir, "a.txt")); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("a.txt gone on bob's desk", 60*time.Second, func() bool { _, ok := readFiles(t, bobDir)["a.txt"]; return !ok })
	var deleted uint64 // the snapshot of the deletion
	c.WaitFor("the deletion in the history, as bob's desk sees it", 30*time.Second, func() bool {
		vs, err := bob.FolderHistory(ctx, f.ID, "a.txt")
		last = fmt.Sprintf("%+v, %v", vs, err)
		if err != nil || len(vs) != 2 || !vs[1].Entry.Deleted {
			return false
		}
		deleted = vs[1].Seq
		return true
	})

	// Export, from the read-only member's desk, of the folder as it was
	// just before the deletion (every file of before had reached bob's
	// desk, so the server, by then).
	out := filepath.Join(t.TempDir(), "export")
	if _, err := bob.ExportFolder(ctx, f.ID, peer.HistoryPoint{Seq: deleted - 1}, out); err != nil {
		t.Fatalf("ExportFolder on bob's desk: %v", err)
	}
	if got := readFiles(t, out); !sameFiles(got, before) {
		t.Errorf("export of version %d, before the deletion = %v; want %v", deleted-1, got, before)
	}

	// A read-only member cannot restore.
	_, err = bob.RestoreFolder(ctx, f.ID, peer.RestoreRequest{Path: "a.txt", Point: peer.HistoryPoint{Seq: kept.Seq}})
	if !errors.Is(err, peer.ErrRestoreDenied) {
		t.Fatalf("restore by a read-only member = %v; want ErrRestoreDenied", err)
	}
	if _, ok := readFiles(t, annDir)["a.txt"]; ok {
		t.Fatal("a.txt came back after a refused restore")
	}

	// The owner restores it from her laptop (as it was before it was
	// deleted: no version named): it arrives everywhere.
	res, err := ann.RestoreFolder(ctx, f.ID, peer.RestoreRequest{Path: "a.txt"})
	if err != nil {
		t.Fatalf("restore by the owner: %v", err)
	}
	if res.Changed != 1 {
		t.Errorf("restore = %+v; want 1 change", res)
	}
	for name, dir := range map[string]string{"ann's laptop": annDir, "bob's desk": bobDir} {
		c.WaitFor("a.txt back on "+name, 60*time.Second, func() bool { return sameFiles(readFiles(t, dir), before) })
	}
	var vs []peer.FolderVersion
	c.WaitFor("the restore in the history", 30*time.Second, func() bool {
		vs, err = server.FolderHistory(ctx, f.ID, "a.txt")
		last = fmt.Sprintf("%+v, %v", vs, err)
		return err == nil && len(vs) >= 3 && !vs[len(vs)-1].Entry.Deleted
	})
	if vs[0].Seq != kept.Seq {
		t.Errorf("history after the restore = %+v; want the old versions kept and the restored one last", vs)
	}
	// The restore is kept as asked by ann's laptop, seen from bob's desk
	// too.
	bvs, err := bob.FolderHistory(ctx, f.ID, "a.txt")
	if err != nil || len(bvs) != len(vs) {
		t.Fatalf("history on bob's desk = %+v, %v; want the server's", bvs, err)
	}
	for _, v := range []peer.FolderVersion{vs[len(vs)-1], bvs[len(bvs)-1]} {
		if v.RestoredBy != "ann" || v.RestoredByDevice != ann.ID().String() {
			t.Errorf("the restored version = %+v; want it restored by ann on her laptop", v)
		}
	}
	if v := vs[0]; v.RestoredBy != "" || v.RestoredByDevice != "" {
		t.Errorf("the first version, no restore = %+v; want no requester", v)
	}
	// What the history holds, on the server and asked from bob's desk.
	for name, n := range map[string]*peer.Node{"server": server, "bob's desk": bob} {
		u, err := n.FolderHistoryUsage(ctx, f.ID)
		if err != nil || u.Versions < 3 || u.Blocks != 2 || u.Bytes != int64(len("version one")+len("B")) || u.Keep != "all:2d,daily:forever" || u.Oldest.After(vs[0].Time) {
			t.Errorf("history usage on %s = %+v, %v; want 3 versions or more, 2 blocks of 12 bytes, kept by all:2d,daily:forever", name, u, err)
		}
	}
	// Every snapshot is signed by the hosting server's key.
	signers, err := peer.HistorySigners(server, f.ID)
	if err != nil || len(signers) == 0 {
		t.Fatalf("HistorySigners = %v, %v", signers, err)
	}
	for i, k := range signers {
		if !bytes.Equal(k, c.Members[1].Key.Public().Raw()) {
			t.Errorf("snapshot %d of %d is signed by %x; want the server's key", i+1, len(signers), k)
		}
	}

	// The server answers only member devices, and gives only the blocks of
	// the folder's own history.
	private, err := ann.CreateFolder(ctx, "Private")
	if err != nil {
		t.Fatal(err)
	}
	c.WaitFor("the server to host Private", 10*time.Second, func() bool {
		_, err := server.FolderHistory(ctx, private.ID, "")
		return err == nil
	})
	for _, tc := range []struct {
		name, op, folder string
		as               lpeer.ID
		blocks           []syncfs.Hash
		code             string
	}{
		{"a member's device lists", "list", f.ID, bob.ID(), nil, ""},
		{"a non-member's device lists", "list", private.ID, bob.ID(), nil, "not-found"},
		{"a host that is no device lists", "list", f.ID, identitytest.Key("stranger").ID(), nil, "denied"},
		{"a read-only member restores", "restore", f.ID, bob.ID(), nil, "denied"},
		{"a member asks a block not in the folder", "blocks", f.ID, bob.ID(), []syncfs.Hash{syncfs.HashBytes([]byte("elsewhere"))}, "not-found"},
		{"a member asks a block of the folder", "blocks", f.ID, bob.ID(), []syncfs.Hash{kept.Entry.Blocks[0].Hash}, ""},
	} {
		code, msg, err := peer.ServeHistoryAs(ctx, server, tc.as, tc.op, tc.folder, tc.blocks...)
		if err != nil || code != tc.code {
			t.Errorf("%s: answered %q (%s), %v; want code %q", tc.name, code, msg, err, tc.code)
		}
	}

	// A block altered on the server's disk is never served or restored:
	// the export from bob's desk and ann's restore of the version that
	// holds it fail, and write none of it.
	h := kept.Entry.Blocks[0].Hash
	hx := fmt.Sprintf("%x", h[:])
	blockFile := filepath.Join(c.Members[1].DataDir, "store", "blocks", hx[:2], hx)
	if err := os.WriteFile(blockFile, []byte("version 1!!"), 0o600); err != nil {
		t.Fatalf("altering the block on the server's disk: %v", err)
	}
	out2 := filepath.Join(t.TempDir(), "export")
	if _, err := bob.ExportFolder(ctx, f.ID, peer.HistoryPoint{Seq: kept.Seq}, out2); err == nil {
		t.Error("export of a version whose block was altered succeeded")
	}
	if got := readFiles(t, out2); got["a.txt"] != "" {
		t.Errorf("export wrote a.txt = %q from an altered block", got["a.txt"])
	}
	if err := os.Remove(filepath.Join(annDir, "a.txt")); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("a.txt gone again on bob's desk", 60*time.Second, func() bool { _, ok := readFiles(t, bobDir)["a.txt"]; return !ok })
	if _, err := ann.RestoreFolder(ctx, f.ID, peer.RestoreRequest{Path: "a.txt", Point: peer.HistoryPoint{Seq: kept.Seq}}); err == nil {
		t.Error("restore of a version whose block was altered succeeded")
	}
	if got, ok := readFiles(t, annDir)["a.txt"]; ok {
		t.Errorf("a.txt = %q on ann's laptop after a restore from an altered block", got)
	}
}
