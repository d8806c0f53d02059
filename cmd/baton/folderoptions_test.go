package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/baton-sync/baton/collections"
)

// TestFolderOptionsCLI: the administrator creates a folder with
// --allow-outside-symlinks and turns it off and on with 'folder set'; the
// option is in the folder's Catalog record.
func TestFolderOptionsCLI(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s2")
	serveFake(t, c.home, d)
	setupUsers(t, c, d)

	folder := func(name string) collections.Folder {
		t.Helper()
		st, _ := d.State(t.Context())
		for _, f := range st.Folders() {
			if f.Name == name {
				return f
			}
		}
		t.Fatalf("no folder %s", name)
		return collections.Folder{}
	}
	outside := func(name string) bool { t.Helper(); return folder(name).OutsideSymlinks }
	c.okMutation("folder", "create", "Builds", "--owner", "ann", "--allow-outside-symlinks")
	c.okMutation("folder", "create", "Photos", "--owner", "ann")
	if !outside("Builds") || outside("Photos") {
		t.Errorf("outside symlinks: Builds %v, Photos %v; want true, false", outside("Builds"), outside("Photos"))
	}
	c.okMutation("folder", "set", "Builds", "--allow-outside-symlinks=false")
	c.okMutation("folder", "set", "Photos", "--allow-outside-symlinks")
	if outside("Builds") || !outside("Photos") {
		t.Errorf("after folder set: Builds %v, Photos %v; want false, true", outside("Builds"), outside("Photos"))
	}
	c.fail(1, []string{"folder", "set", "Photos", "--allow-outside-symlinks"}, "has these options exists already")
	c.fail(2, []string{"folder", "set", "Photos"}, "--allow-outside-symlinks")
	c.fail(1, []string{"folder", "set", "Nope", "--allow-outside-symlinks"}, "no folder Nope on this server")

	// The retention policy: set alone, the other option stays; bad text
	// is refused with the syntax; default sets it back.
	keep := func(name string) string { t.Helper(); return folder(name).Keep }
	c.okMutation("folder", "set", "Photos", "--keep", "all:2d, daily:90d")
	if got := keep("Photos"); got != "all:2d,daily:90d" || !outside("Photos") {
		t.Errorf("after --keep: Photos keeps %q, outside symlinks %v; want all:2d,daily:90d and still true", got, outside("Photos"))
	}
	c.fail(1, []string{"folder", "set", "Photos", "--keep", "daily:forever,all:1d"}, "invalid retention policy")
	c.fail(1, []string{"folder", "set", "Photos", "--keep", "monthly:1y"}, "EVERY:FOR")
	if got := keep("Photos"); got != "all:2d,daily:90d" {
		t.Errorf("after refused policies: Photos keeps %q; want all:2d,daily:90d", got)
	}
	c.okMutation("folder", "set", "Photos", "--keep", "default")
	if got := keep("Photos"); got != "" || !outside("Photos") {
		t.Errorf("after --keep default: Photos keeps %q, outside symlinks %v; want the default and still true", got, outside("Photos"))
	}
	c.okMutation("folder", "create", "Logs", "--owner", "ann", "--keep", "all:12h")
	if got := keep("Logs"); got != "all:12h" {
		t.Errorf("folder create --keep all:12h keeps %q", got)
	}
	c.fail(1, []string{"folder", "create", "Bad", "--owner", "ann", "--keep", "all"}, "invalid retention policy")
}

// TestAgentFolderOptionsCLI: on an agent, the owner creates a folder with
// the option and sets it; the folder list shows it.
func TestAgentFolderOptionsCLI(t *testing.T) {
	c, d := agentCLI(t, nil)
	dir := filepath.Join(t.TempDir(), "Builds")
	c.ok("folder", "create", "Builds", dir, "--allow-outside-symlinks")
	st, _ := d.State(t.Context())
	fs := st.Folders()
	if len(fs) != 1 || !fs[0].OutsideSymlinks {
		t.Fatalf("folders after create --allow-outside-symlinks: %+v", fs)
	}
	if out := c.ok("folder", "list", "--json"); !strings.Contains(out, `"outside_symlinks": true`) {
		t.Errorf("folder list --json = %s; want outside_symlinks true", out)
	}
	c.ok("folder", "set", "Builds", "--allow-outside-symlinks=false")
	st, _ = d.State(t.Context())
	if f, _ := st.Folder(fs[0].ID); f.OutsideSymlinks {
		t.Errorf("folder after set --allow-outside-symlinks=false: %+v", f)
	}
	c.ok("folder", "set", "Builds", "--allow-outside-symlinks")
	c.ok("folder", "set", "Builds", "--keep", "all:3d,weekly:forever")
	st, _ = d.State(t.Context())
	if f, _ := st.Folder(fs[0].ID); f.Keep != "all:3d,weekly:forever" || !f.OutsideSymlinks {
		t.Errorf("folder after set --keep: %+v; want the policy set and outside symlinks still on", f)
	}
	if out := c.ok("folder", "list", "--json"); !strings.Contains(out, `"keep": "all:3d,weekly:forever"`) {
		t.Errorf("folder list --json = %s; want the policy", out)
	}
	c.fail(1, []string{"folder", "set", "Builds", "--keep", "hourly"}, "invalid retention policy")
}

// TestFolderReplicasCLI: on a server, --replicas on folder create and
// folder set records the hosting set in the folder's Catalog record, capped
// by the chain (s1, s2, s3) with a message saying so.
func TestFolderReplicasCLI(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s2")
	serveFake(t, c.home, d)
	setupUsers(t, c, d)

	hosts := func(name string) (int, []string) {
		t.Helper()
		st, _ := d.State(t.Context())
		for _, f := range st.Folders() {
			if f.Name == name {
				var out []string
				for _, h := range st.FolderHosts(f) {
					r, _ := st.HostByID(h)
					out = append(out, r.Name)
				}
				return f.Replicas, out
			}
		}
		t.Fatalf("no folder %s", name)
		return 0, nil
	}
	check := func(what, name string, replicas int, want ...string) {
		t.Helper()
		if n, got := hosts(name); n != replicas || !slices.Equal(got, want) {
			t.Errorf("%s: folder %s has %d replicas, hosts %v; want %d, %v", what, name, n, got, replicas, want)
		}
	}

	if out := c.okMutation("folder", "create", "Photos", "--owner", "ann"); !strings.Contains(out, "on s2, replicas s3") {
		t.Errorf("folder create says %q; want the hosting servers", out)
	}
	check("created with the default", "Photos", 1, "s2", "s3")
	if out := c.okMutation("folder", "create", "Solo", "--owner", "ann", "--replicas", "0"); !strings.Contains(out, "no replica") {
		t.Errorf("folder create --replicas 0 says %q", out)
	}
	check("created with --replicas 0", "Solo", 0, "s2")
	out := c.okMutation("folder", "create", "Wide", "--owner", "ann", "--replicas", "5")
	if !strings.Contains(out, "5 replicas asked, but the chain has only 2 servers besides the home server") {
		t.Errorf("folder create --replicas 5 says %q; want the cap explained", out)
	}
	check("created with --replicas 5", "Wide", 2, "s2", "s3", "s1")

	c.okMutation("folder", "set", "Photos", "--replicas", "2")
	check("set --replicas 2", "Photos", 2, "s2", "s3", "s1")
	c.okMutation("folder", "set", "Photos", "--keep", "all:2d")
	check("set --keep", "Photos", 2, "s2", "s3", "s1")
	if out := c.okMutation("folder", "set", "Photos", "--replicas", "1"); !strings.Contains(out, "1 replica") {
		t.Errorf("folder set --replicas 1 says %q", out)
	}
	check("set --replicas 1", "Photos", 1, "s2", "s3")
	c.fail(2, []string{"folder", "set", "Photos", "--replicas", "-1"}, "give 0")
	c.fail(1, []string{"folder", "set", "Photos", "--replicas", "1"}, "has these options exists already")
	if out := c.ok("folder", "list", "--json"); !strings.Contains(out, `"replicas": 2`) {
		t.Errorf("folder list --json = %s; want Wide's 2 replicas", out)
	}
}

// TestAgentFolderReplicasCLI: on an agent, the owner chooses the replicas
// of a folder; the home server caps them.
func TestAgentFolderReplicasCLI(t *testing.T) {
	c, d := agentCLI(t, nil)
	c.ok("folder", "create", "Builds", filepath.Join(t.TempDir(), "Builds"), "--replicas", "0")
	st, _ := d.State(t.Context())
	fs := st.Folders()
	if len(fs) != 1 || fs[0].Replicas != 0 || len(st.FolderHosts(fs[0])) != 1 {
		t.Fatalf("folders after create --replicas 0: %+v", fs)
	}
	if out := c.ok("folder", "set", "Builds", "--replicas", "9"); !strings.Contains(out, "9 replicas asked, but the chain has only 2") {
		t.Errorf("folder set --replicas 9 says %q; want the cap explained", out)
	}
	st, _ = d.State(t.Context())
	if f, _ := st.Folder(fs[0].ID); f.Replicas != 2 || len(st.FolderHosts(f)) != 3 {
		t.Errorf("folder after set --replicas 9: %+v; want 2 replicas, 3 hosts", f)
	}
	if out := c.ok("folder", "list", "--json"); !strings.Contains(out, `"replicas": 2`) {
		t.Errorf("folder list --json = %s; want 2 replicas", out)
	}
	c.fail(2, []string{"folder", "create", "X", t.TempDir(), "--replicas", "-3"}, "give 0")
}
