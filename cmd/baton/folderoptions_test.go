package main

import (
	"path/filepath"
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
