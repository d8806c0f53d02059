package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestFolderOptionsCLI: the administrator creates a folder with
// --allow-outside-symlinks and turns it off and on with 'folder set'; the
// option is in the folder's Catalog record.
func TestFolderOptionsCLI(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s2")
	serveFake(t, c.home, d)
	setupUsers(t, c, d)

	outside := func(name string) bool {
		t.Helper()
		st, _ := d.State(t.Context())
		for _, f := range st.Folders() {
			if f.Name == name {
				return f.OutsideSymlinks
			}
		}
		t.Fatalf("no folder %s", name)
		return false
	}
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
}
