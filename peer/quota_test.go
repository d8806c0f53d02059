package peer_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer/foldersync"
)

// TestQuotaFromDomain: a user's quota in the Domain is what the hosting
// servers of the user's folders enforce: a change past it stays on the
// device, which says why.
func TestQuotaFromDomain(t *testing.T) {
	c := loginCluster(t) // ann homed at s2
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := c.Node(0).State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	limit := int64(1000)
	u, _, err := st.SetUser("ann", "", collections.UserSettings{Quota: &limit})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.Submit(0, u); err != nil || r.Queued {
		t.Fatalf("setting ann's quota: %+v, %v", r, err)
	}
	ann := startDevice(t, c, "ann-laptop", 0, "ann", "ann's secret")
	f, err := ann.CreateFolder(ctx, "Docs")
	if err != nil {
		t.Fatalf("CreateFolder: %v", err)
	}
	dir := t.TempDir()
	if err := ann.SetFolders(ctx, map[string]string{f.ID: dir}); err != nil {
		t.Fatal(err)
	}
	status := func() foldersync.FolderStatus {
		st, _ := ann.FolderStatus(ctx, f.ID)
		return st
	}
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte(strings.Repeat("a", 600)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("a.txt within the quota at the home server", 60*time.Second, func() bool {
		st, err := c.Node(1).FolderStatus(ctx, f.ID)
		return err == nil && st.Quota != nil && st.Quota.Used == 600 && st.Quota.Limit == limit
	})
	if err := os.WriteFile(filepath.Join(dir, "b.txt"), []byte(strings.Repeat("b", 600)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("the refusal on ann's laptop", 60*time.Second, func() bool {
		st := status()
		return strings.Contains(st.QuotaRefused, foldersync.ErrQuota.Error()) && st.Quota != nil && st.Quota.Limit == limit
	})
	if st, _ := c.Node(1).FolderStatus(ctx, f.ID); st.Quota == nil || st.Quota.Used != 600 {
		t.Errorf("the home server's usage = %+v; want 600 bytes, b.txt not taken", st.Quota)
	}
}
