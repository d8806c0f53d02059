package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer/foldersync"
)

// TestFolderOptionOutsideSymlinks: bob, a read-write member, makes
// symlinks pointing outside the folder (an absolute target, one that
// leaves it). The hosting server skips them while the folder does not
// allow them (status: skipped), so alice, the owner, who syncs through it,
// does not get them either; both create them once the
// owner sets the folder option (collections.FolderOptions), with nothing
// set on the hosts themselves.
func TestFolderOptionOutsideSymlinks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a domain of a server and two agents")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb := newSandbox(t, ctx, 1)
	for _, u := range []string{"alice", "bob"} {
		if _, err := sb.AddUser(ctx, u, 0, u+"'s password"); err != nil {
			t.Fatal(err)
		}
	}
	alice, err := sb.AddAgent(ctx, "alice-laptop", "alice", "alice's password")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := sb.AddAgent(ctx, "bob-laptop", "bob", "bob's password")
	if err != nil {
		t.Fatal(err)
	}
	server := sb.Server(0)
	id, aDir, err := alice.CreateFolder(ctx, "Builds")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Share(ctx, id, "bob", collections.RightReadWrite); err != nil {
		t.Fatal(err)
	}
	bDir, err := bob.Accept(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	sDir := filepath.Join(server.DataDir, "folders", id)
	links := map[string]string{"abs": "/etc", "up": "../../outside"}

	// Not allowed: bob's symlinks are skipped by the server and by alice.
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(bDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	skipped := func(st foldersync.FolderStatus) bool {
		found := 0
		for _, s := range st.Skipped {
			if _, ok := links[s.Path]; ok {
				found++
			}
		}
		return found == len(links)
	}
	if err := waitServer(ctx, server.Node().FolderStatus, id, skipped); err != nil {
		t.Fatalf("the server skipping bob's outside symlinks: %v", err)
	}
	// The server takes no outside symlinks, so alice, who syncs through
	// it, gets none either: her copy is in sync without them.
	if err := alice.WaitInSync(ctx, id); err != nil {
		t.Fatal(err)
	}
	for name := range links {
		for _, dir := range []string{aDir, sDir} {
			if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
				t.Errorf("%s created in %s while the folder does not allow outside symlinks", name, dir)
			}
		}
	}

	// A member may not set the option; the owner may.
	yes := true
	if err := bob.Node().SetFolderOptions(ctx, id, collections.OptionsPatch{OutsideSymlinks: &yes}); err == nil {
		t.Errorf("bob, a member, set the folder's options")
	}
	if err := alice.Node().SetFolderOptions(ctx, id, collections.OptionsPatch{OutsideSymlinks: &yes}); err != nil {
		t.Fatalf("alice sets the folder's options: %v", err)
	}
	// bob touches his links again so that the change is planned at once
	// rather than at the next periodic pull.
	for name, target := range links {
		p := filepath.Join(bDir, name)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target+"/.", p); err != nil {
			t.Fatal(err)
		}
		links[name] = target + "/."
	}
	for _, dir := range []string{sDir, aDir} {
		err := poll(ctx, func() bool {
			for name, target := range links {
				if got, err := os.Readlink(filepath.Join(dir, name)); err != nil || got != target {
					return false
				}
			}
			return true
		})
		if err != nil {
			t.Fatalf("bob's outside symlinks in %s once the folder allows them: %v", dir, err)
		}
	}
}

// waitServer waits until cond holds for the server's status of folder id.
func waitServer(ctx context.Context, status func(context.Context, string) (foldersync.FolderStatus, error), id string, cond func(foldersync.FolderStatus) bool) error {
	var last foldersync.FolderStatus
	err := poll(ctx, func() bool {
		st, err := status(ctx, id)
		last = st
		return err == nil && cond(st)
	})
	if err != nil {
		return fmt.Errorf("%w; last status %+v", err, last)
	}
	return nil
}

// poll checks cond every 50 ms for up to 30 s.
func poll(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}
