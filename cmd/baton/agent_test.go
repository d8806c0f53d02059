package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
)

// putUsers provisions ann and cy (home s2) and bob (home s1) directly, as
// the master.
func putUsers(t *testing.T, d *fakeDaemon) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range []struct{ name, home string }{{"ann", "s2"}, {"cy", "s2"}, {"bob", "s1"}} {
		up := mustPut(t, collections.User{Name: u.name, HomeServer: id(u.home)})
		if _, err := d.certifyAs(d.master, up); err != nil {
			t.Fatal(err)
		}
	}
}

// putFolder publishes a folder as its hosting server.
func putFolder(t *testing.T, d *fakeDaemon, f collections.Folder) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	srv := d.name(mustDecode(t, f.Server))
	if _, err := d.certifyAs(identitytest.Key(srv), mustPut(t, f)); err != nil {
		t.Fatal(err)
	}
}

func TestUserPasswd(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s2")
	serveFake(t, c.home, d)
	putUsers(t, d)
	pwFile := writeFile(t, filepath.Join(t.TempDir(), "pw"), "ann's secret\nignored\n")

	if out := c.ok("user", "passwd", "ann", "--password-file", pwFile); out != "ok: password of ann set\n" {
		t.Errorf("user passwd printed %q", out)
	}
	if got := d.passwords["ann"]; got != "ann's secret" {
		t.Errorf("password set to %q; want the file's first line", got)
	}
	c.fail(1, []string{"user", "passwd", "bob", "--password-file", pwFile}, "user bob's home server is s1 ("+id("s1")+"): set the password there")
	c.fail(1, []string{"user", "passwd", "zed", "--password-file", pwFile}, "no user zed in the domain")
	c.fail(1, []string{"user", "passwd", "ann"}, "no password: give --password-file FILE or set BATON_PASSWORD")
	c.fail(1, []string{"user", "passwd", "ann", "--password-file", filepath.Join(t.TempDir(), "none")}, "password file")
	c.fail(2, []string{"user", "passwd", "a b"}, "user name")

	c.vars["BATON_PASSWORD"] = "from env"
	c.ok("user", "passwd", "cy")
	if d.passwords["cy"] != "from env" {
		t.Errorf("cy's password = %q; want $BATON_PASSWORD's", d.passwords["cy"])
	}
	delete(c.vars, "BATON_PASSWORD")

	// At a terminal: asked twice, without echo.
	c.tty = true
	c.answers = []string{"typed", "typed"}
	c.ok("user", "passwd", "ann")
	if d.passwords["ann"] != "typed" || len(c.prompts) != 2 || c.prompts[0] != "New password for ann: " {
		t.Errorf("password %q after prompts %q", d.passwords["ann"], c.prompts)
	}
	c.answers = []string{"one", "two"}
	c.fail(1, []string{"user", "passwd", "ann"}, "the passwords do not match")
	if d.passwords["ann"] != "typed" {
		t.Error("a mismatched password was set")
	}
	// Nothing is asked when the server is the wrong one.
	c.answers = nil
	c.fail(1, []string{"user", "passwd", "bob"}, "home server is s1")
}

func TestDevices(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s2")
	serveFake(t, c.home, d)
	putUsers(t, d)
	d.addDevice(t, "ann", "lap", "ann's laptop")
	d.addDevice(t, "bob", "desk", "bob's desk")
	lap, desk := id("lap"), id("desk")

	out := c.ok("device", "list")
	for _, want := range []string{"ID", "USER", lap, "ann's laptop", desk, "bob's desk", "valid"} {
		if !strings.Contains(out, want) {
			t.Errorf("device list printed\n%s\nwant it to contain %q", out, want)
		}
	}
	var ds []peer.DeviceInfo
	if err := json.Unmarshal([]byte(c.ok("device", "list", "--user", "ann", "--json")), &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].ID != lap || ds[0].User != "ann" || ds[0].ServerName != "s2" || !ds[0].Valid || ds[0].Revoked {
		t.Errorf("device list --user ann --json = %+v; want ann's laptop, valid, issued by s2", ds)
	}
	if out := c.ok("device", "list", "--user", "cy"); out != "no devices\n" {
		t.Errorf("device list --user cy printed %q", out)
	}

	// With no master reachable, the revocation is only queued, and both
	// the command and the list say so.
	d.addDevice(t, "ann", "tab", "ann's tablet")
	tab := id("tab")
	d.set(func(f *fakeDaemon) { f.queue = true })
	if out := c.ok("device", "revoke", tab); !strings.HasPrefix(out, "queued: not committed yet") || !strings.Contains(out, "device "+tab+" revoked") {
		t.Errorf("device revoke with no master printed %q; want the queued line", out)
	}
	if out := c.ok("device", "list", "--user", "ann"); !strings.Contains(out, "revocation queued") {
		t.Errorf("device list after a queued revoke printed\n%s", out)
	}
	d.set(func(f *fakeDaemon) { f.queue = false })

	if out := c.ok("device", "revoke", lap); !strings.HasPrefix(out, "ok: device "+lap+" revoked (committed at term 3, index ") {
		t.Errorf("device revoke printed %q", out)
	}
	if out := c.ok("device", "list", "--user", "ann"); !strings.Contains(out, "revoked") {
		t.Errorf("device list after revoke printed\n%s", out)
	}
	c.fail(1, []string{"device", "revoke", desk}, "user bob's home server is s1", "do this there")
	c.fail(1, []string{"device", "revoke", id("stranger")}, "no such device: "+id("stranger"))
	c.fail(2, []string{"device", "revoke", "laptop"}, `"laptop" is not a device ID`)
	c.fail(2, []string{"device", "list", "--user", "a b"}, "--user")
	c.fail(2, []string{"device", "frobnicate"}, `unknown command "frobnicate"`)
}

// agentCLI is an agent daemon (the host "lap" of the test genesis) logged
// in as ann, with users ann, cy (home s2) and bob (home s1).
func agentCLI(t *testing.T, change func(d *fakeDaemon)) (*cli, *fakeDaemon) {
	t.Helper()
	c := newCLI(t)
	d := newFakeDaemon(t, "lap")
	putUsers(t, d)
	d.agent, d.user = true, "ann"
	if change != nil {
		change(d)
	}
	serveFake(t, c.home, d)
	return c, d
}

func loadFolders(t *testing.T, home string) []control.LocalFolder {
	t.Helper()
	list, err := control.LoadFolders(home)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestAgentFolders(t *testing.T) {
	c, d := agentCLI(t, nil)
	dir := t.TempDir()
	photos := filepath.Join(dir, "Photos") // made by create

	out := c.ok("folder", "create", "Photos", photos)
	m := regexp.MustCompile(`^ok: folder Photos \(([0-9a-f]{16})\) created, synced at (.+)\n$`).FindStringSubmatch(out)
	if m == nil || m[2] != photos {
		t.Fatalf("folder create printed %q", out)
	}
	pid := m[1]
	st, _ := d.State(t.Context())
	if f, ok := st.Folder(pid); !ok || f.Owner != "ann" || f.Server != id("s2") {
		t.Errorf("created folder %+v; want ann's, hosted on s2", f)
	}
	if fi, err := os.Stat(photos); err != nil || !fi.IsDir() {
		t.Errorf("create did not make the folder directory: %v", err)
	}
	if got := loadFolders(t, c.home); len(got) != 1 || got[0] != (control.LocalFolder{ID: pid, Name: "Photos", Owner: "ann", Path: photos}) {
		t.Errorf("folders.toml = %+v", got)
	}
	if d.synced[pid] != photos || len(d.synced) != 1 {
		t.Errorf("engine syncs %v; want {%s: %s}", d.synced, pid, photos)
	}

	c.fail(1, []string{"folder", "create", "Photos", filepath.Join(dir, "P2")}, "ann already has a folder named Photos ("+pid+")")
	c.fail(1, []string{"folder", "create", "Inner", filepath.Join(photos, "inner")}, "overlaps "+photos)
	c.fail(1, []string{"folder", "create", "Home", filepath.Join(c.home, "x")}, "overlaps the baton home")
	file := writeFile(t, filepath.Join(dir, "file"), "x")
	c.fail(1, []string{"folder", "create", "F", file}, file+" is not a directory")
	c.fail(2, []string{"folder", "create", "Docs"}, "give the folder's NAME and the local PATH")
	c.fail(2, []string{"folder", "create", "Docs", dir, "--owner", "ann"}, "--owner is for servers")

	// Sharing.
	if out := c.ok("folder", "share", "Photos", "bob", "--rights", "ro"); out != "ok: folder Photos ("+pid+") shared with bob (ro)\n" {
		t.Errorf("folder share printed %q", out)
	}
	st, _ = d.State(t.Context())
	if f, _ := st.Folder(pid); f.Members["bob"] != collections.RightReadOnly {
		t.Errorf("members after share: %v", f.Members)
	}
	c.fail(2, []string{"folder", "share", "Photos", "bob", "--rights", "all"}, `--rights "all"`)
	c.fail(1, []string{"folder", "share", "Nope", "bob", "--rights", "ro"}, "no folder Nope shared with ann")

	// Bob's folder shared with ann, and one named like ann's.
	music := collections.Folder{ID: "00000000000000aa", Name: "Music", Owner: "bob", Server: id("s1"),
		Members: map[string]collections.Right{"bob": collections.RightOwner, "ann": collections.RightReadWrite}}
	putFolder(t, d, music)
	bobPhotos := collections.Folder{ID: "00000000000000bb", Name: "Photos", Owner: "bob", Server: id("s1"),
		Members: map[string]collections.Right{"bob": collections.RightOwner, "ann": collections.RightReadOnly}}
	putFolder(t, d, bobPhotos)
	putFolder(t, d, collections.Folder{ID: "00000000000000cc", Name: "Private", Owner: "bob", Server: id("s1"),
		Members: map[string]collections.Right{"bob": collections.RightOwner}})

	list := c.ok("folder", "list")
	for _, want := range []string{
		pid + " Photos", "ann          owner  s2           " + photos,
		"00000000000000aa Music", "bob          rw     s1           - (not synced here",
		"00000000000000bb Photos",
	} {
		if !strings.Contains(list, want) {
			t.Errorf("folder list printed\n%s\nwant it to contain %q", list, want)
		}
	}
	if strings.Contains(list, "Private") {
		t.Errorf("folder list shows a folder not shared with ann:\n%s", list)
	}

	musicDir := filepath.Join(dir, "Music")
	if out := c.ok("folder", "accept", "Music", musicDir); out != "ok: folder Music (00000000000000aa, bob's, rw) synced at "+musicDir+"\n" {
		t.Errorf("folder accept printed %q", out)
	}
	if len(loadFolders(t, c.home)) != 2 || d.synced["00000000000000aa"] != musicDir {
		t.Errorf("after accept: folders.toml %+v, engine %v", loadFolders(t, c.home), d.synced)
	}
	c.fail(1, []string{"folder", "accept", "Music", filepath.Join(dir, "M2")}, "already synced here, at "+musicDir)
	c.fail(1, []string{"folder", "accept", "Private", filepath.Join(dir, "P")}, "no folder Private shared with ann")
	c.fail(1, []string{"folder", "accept", "00000000000000cc", filepath.Join(dir, "P")}, "folder Private (00000000000000cc) is not shared with ann")
	// "Photos" is ann's own; bob's is bob/Photos.
	// Taking other members' symlinks that point outside the folder is
	// recorded per folder, off unless asked for.
	c.ok("folder", "accept", "bob/Photos", filepath.Join(dir, "BobPhotos"), "--allow-outside-symlinks", "--windows-names")
	var policy control.SymlinkPolicy
	policy.Set(loadFolders(t, c.home))
	for id, want := range map[string]bool{pid: false, music.ID: false, bobPhotos.ID: true} {
		if got := policy.Allows(id); got != want {
			t.Errorf("folder %s takes outside symlinks: %v; want %v (folders.toml %+v)", id, got, want, loadFolders(t, c.home))
		}
		if got := policy.KeepsWindowsNames(id); got != want {
			t.Errorf("folder %s keeps to Windows' names: %v; want %v (folders.toml %+v)", id, got, want, loadFolders(t, c.home))
		}
	}

	var folders []control.AgentFolder
	if err := json.Unmarshal([]byte(c.ok("folder", "list", "--json")), &folders); err != nil {
		t.Fatal(err)
	}
	if len(folders) != 3 || folders[0].ID != pid || folders[0].Right != "owner" || folders[0].Path != photos ||
		folders[0].ServerName != "s2" || len(folders[0].Members) != 2 {
		t.Errorf("folder list --json = %+v; want ann's Photos first, owner, synced at %s, 2 members", folders, photos)
	}

	// Only the owner shares; the owner cannot leave.
	c.fail(1, []string{"folder", "share", "Music", "cy", "--rights", "ro"}, "only the owner of folder Music, bob, shares it")
	c.fail(1, []string{"folder", "leave", "Photos"}, "ann owns folder Photos and cannot leave it")
	c.ok("folder", "unshare", "Photos", "bob")
	if out := c.ok("folder", "leave", "Music"); out != "ok: ann left folder Music (00000000000000aa); no longer synced at "+musicDir+" (the files stay)\n" {
		t.Errorf("folder leave printed %q", out)
	}
	if _, ok := d.synced["00000000000000aa"]; ok || len(loadFolders(t, c.home)) != 2 {
		t.Errorf("after leave: engine %v, folders.toml %+v", d.synced, loadFolders(t, c.home))
	}
	st, _ = d.State(t.Context())
	if f, _ := st.Folder(pid); len(f.Members) != 1 {
		t.Errorf("Photos members after unshare: %v", f.Members)
	}
	if f, _ := st.Folder(music.ID); f.Members["ann"] != "" {
		t.Errorf("Music members after leave: %v", f.Members)
	}

	// The hosting server queues the change when no master answers.
	d.set(func(f *fakeDaemon) { f.agentErr = peer.ErrQueued })
	if out := c.ok("folder", "share", "Photos", "cy", "--rights", "rw"); !strings.HasPrefix(out, "queued: folder Photos ("+pid+") shared with cy (rw)") {
		t.Errorf("queued share printed %q", out)
	}
	d.set(func(f *fakeDaemon) { f.agentErr = nil })

	// Revert.
	if out := c.ok("folder", "revert", "Photos"); !strings.HasPrefix(out, "ok: folder Photos ("+pid+") at "+photos+" reverted") {
		t.Errorf("folder revert printed %q", out)
	}
	if len(d.reverted) != 1 || d.reverted[0] != pid {
		t.Errorf("reverted %v", d.reverted)
	}
	c.fail(1, []string{"folder", "revert", "Music"}, "no folder Music shared with ann")
}

func TestAgentFolderStatus(t *testing.T) {
	c, d := agentCLI(t, nil)
	photos := filepath.Join(t.TempDir(), "Photos")
	c.ok("folder", "create", "Photos", photos)
	d.set(func(f *fakeDaemon) {
		f.statuses = []foldersync.FolderStatus{
			{Root: photos, Role: "rw", State: "syncing", LocalFiles: 1, LocalBytes: 1024, NeedFiles: 3, NeedBytes: 3072},
			{Root: photos, Role: "rw", State: "syncing", LocalFiles: 3, LocalBytes: 3072, NeedFiles: 1, NeedBytes: 1024},
			{Root: photos, Role: "rw", State: "idle", LocalFiles: 4, LocalBytes: 4096, InSync: true,
				Fetched: 12 << 20, Copied: 3 << 20, Resumed: 64 << 20, Served: 1 << 30, Servers: []string{id("s1"), id("s2")}},
		}
	})
	out := c.ok("folder", "status", "Photos")
	for _, want := range []string{"folder Photos (", "at " + photos + ": syncing", "role:          owner\n", "needed:        3 files, 3.0 KiB", "progress:      25%"} {
		if !strings.Contains(out, want) {
			t.Errorf("folder status printed\n%s\nwant it to contain %q", out, want)
		}
	}
	if strings.Contains(out, "transfer:") {
		t.Errorf("folder status printed\n%s\nwant no transfer line while nothing was transferred", out)
	}
	// --wait, not on a terminal: a line per change, then the status.
	out = c.ok("folder", "status", "Photos", "--wait")
	want := "Photos: syncing, 1 files, 1.0 KiB to go\nfolder Photos ("
	if !strings.HasPrefix(out, want) || !strings.Contains(out, ": in sync\n") {
		t.Errorf("folder status --wait printed\n%s\nwant it to start %q and end in sync", out, want)
	}
	var st control.FolderStatus
	if err := json.Unmarshal([]byte(c.ok("folder", "status", "Photos", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if !st.InSync || st.Progress != 1 || st.Name != "Photos" || st.LocalFiles != 4 || st.Role != "owner" {
		t.Errorf("folder status --json = %+v; want in sync, Photos, 4 files, role owner", st)
	}
	if st.Fetched != 12<<20 || st.Copied != 3<<20 || st.Resumed != 64<<20 || st.Served != 1<<30 {
		t.Errorf("folder status --json: fetched %d, copied %d, resumed %d, served %d; want the engine's %d, %d, %d, %d",
			st.Fetched, st.Copied, st.Resumed, st.Served, 12<<20, 3<<20, 64<<20, 1<<30)
	}
	if out := c.ok("folder", "status", "Photos"); !strings.Contains(out, "\n  transfer:      12.0 MiB fetched, 3.0 MiB reused, 64.0 MiB resumed, 1.0 GiB served") {
		t.Errorf("folder status printed\n%s\nwant the bytes fetched, reused, resumed and served", out)
	}
	// The hosting servers the device syncs with, by name.
	if want := []control.FolderServer{{ID: id("s1"), Name: "s1"}, {ID: id("s2"), Name: "s2"}}; !slices.Equal(st.Servers, want) {
		t.Errorf("folder status --json: servers %+v; want %+v", st.Servers, want)
	}
	if out := c.ok("folder", "status", "Photos"); !strings.Contains(out, "\n  syncing with:  s1, s2\n") {
		t.Errorf("folder status printed\n%s\nwant the servers the device syncs with", out)
	}
	if st.History != nil || strings.Contains(c.ok("folder", "status", "Photos"), "history:") {
		t.Errorf("folder status shows a history the server did not give: %+v", st.History)
	}
	// What the folder's history holds, as the hosting server tells it.
	oldest := time.Date(2026, 11, 2, 10, 0, 0, 0, time.Local)
	d.set(func(f *fakeDaemon) {
		f.usage = &peer.HistoryUsage{Versions: 12, Oldest: oldest, Latest: oldest.Add(time.Hour), Blocks: 40, Bytes: 5 << 20, Keep: "all:1d,daily:30d,weekly:365d"}
	})
	if out := c.ok("folder", "status", "Photos"); !strings.Contains(out, "\n  history:       12 versions since 2026-11-02 10:00, 5.0 MiB in 40 blocks, kept by all:1d,daily:30d,weekly:365d\n") {
		t.Errorf("folder status printed\n%s\nwant the history's versions, size and policy", out)
	}
	st = control.FolderStatus{}
	if err := json.Unmarshal([]byte(c.ok("folder", "status", "Photos", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if h := st.History; h == nil || h.Versions != 12 || h.Bytes != 5<<20 || h.Blocks != 40 || !h.Oldest.Equal(oldest) || h.Keep != "all:1d,daily:30d,weekly:365d" {
		t.Errorf("folder status --json history = %+v; want the server's usage", h)
	}
	// The role is the one 'folder list' says, though the engine does not
	// tell an owner from a read-write member.
	var list []control.AgentFolder
	if err := json.Unmarshal([]byte(c.ok("folder", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Right != st.Role {
		t.Errorf("folder list --json = %+v; want Photos with right %q, as folder status says", list, st.Role)
	}
	if out := c.ok("folder", "list"); !strings.Contains(out, "ROLE") || !strings.Contains(out, " owner ") {
		t.Errorf("folder list printed\n%s\nwant a ROLE column saying owner", out)
	}

	// On a terminal: a bar redrawn in place.
	d.set(func(f *fakeDaemon) {
		f.statuses = []foldersync.FolderStatus{{State: "syncing", LocalBytes: 1, NeedFiles: 1, NeedBytes: 1}, {State: "idle", InSync: true}}
	})
	c.ttyOut = true
	out = c.ok("folder", "status", "Photos", "--wait")
	if !strings.Contains(out, "\r\033[K[###############...............]  50% Photos: syncing") {
		t.Errorf("folder status --wait on a terminal printed %q", out)
	}
	c.ttyOut = false

	// Never in sync: --timeout gives up.
	d.set(func(f *fakeDaemon) {
		f.statuses = []foldersync.FolderStatus{{State: "error", NeedFiles: 2, NeedBytes: 10, LastError: "disk full"}}
	})
	c.fail(1, []string{"folder", "status", "Photos", "--wait", "--timeout", "300ms"}, "folder Photos is not in sync after 300ms: 2 files, 10 B still needed")
	c.fail(2, []string{"folder", "status", "Photos", "--timeout", "1s"}, "--timeout goes with --wait")

	// A folder shared with ann but not synced here.
	putFolder(t, d, collections.Folder{ID: "00000000000000aa", Name: "Music", Owner: "bob", Server: id("s1"),
		Members: map[string]collections.Right{"bob": collections.RightOwner, "ann": collections.RightReadOnly}})
	c.fail(1, []string{"folder", "status", "Music"}, "folder Music (00000000000000aa) is not synced on this device", "baton folder accept Music PATH")

	// Synced read-only: role ro, and local changes are undone by revert.
	c.ok("folder", "accept", "Music", filepath.Join(t.TempDir(), "Music"))
	d.set(func(f *fakeDaemon) {
		f.statuses = []foldersync.FolderStatus{{Role: "ro", State: "idle", InSync: true, LocalChanges: 2}}
	})
	out = c.ok("folder", "status", "Music")
	for _, want := range []string{"role:          ro\n", "local changes: 2, not accepted (read-only): 'baton folder revert Music' undoes them"} {
		if !strings.Contains(out, want) {
			t.Errorf("folder status of a read-only folder printed\n%s\nwant it to contain %q", out, want)
		}
	}
	if out := c.ok("folder", "list"); !regexp.MustCompile(`(?m)^00000000000000aa +Music +bob +ro `).MatchString(out) {
		t.Errorf("folder list printed\n%s\nwant Music with role ro", out)
	}
}

func TestFolderRescan(t *testing.T) {
	c, d := agentCLI(t, nil)
	photos := filepath.Join(t.TempDir(), "Photos")
	out := c.ok("folder", "create", "Photos", photos)
	pid := regexp.MustCompile(`\(([0-9a-f]{16})\)`).FindStringSubmatch(out)[1]

	if out := c.ok("folder", "rescan", "Photos"); out != "ok: rescan of folder Photos ("+pid+") at "+photos+" requested\n" {
		t.Errorf("folder rescan printed %q", out)
	}
	if len(d.rescanned) != 1 || d.rescanned[0] != pid {
		t.Errorf("rescanned %v; want [%s]", d.rescanned, pid)
	}

	// A folder found emptied: status says how to confirm, --wait does
	// not wait for what will not happen by itself.
	emptiedErr := foldersync.ErrEmptied.Error() + ": " + photos + " is empty and its .baton-folder file is gone, but 3 entries were synced there"
	t0 := testNow
	d.set(func(f *fakeDaemon) {
		f.statuses = []foldersync.FolderStatus{{Root: photos, Role: "rw", State: foldersync.StateError, LocalFiles: 3, LastError: emptiedErr, Emptied: true, LastScan: t0}}
	})
	out = c.ok("folder", "status", "Photos")
	for _, want := range []string{": error\n", "error:         " + emptiedErr, "hint:          if the files were deleted on purpose, confirm it with 'baton folder rescan Photos'"} {
		if !strings.Contains(out, want) {
			t.Errorf("folder status of an emptied folder printed\n%s\nwant it to contain %q", out, want)
		}
	}
	var st control.FolderStatus
	if err := json.Unmarshal([]byte(c.ok("folder", "status", "Photos", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Emptied || st.Hint == "" || !strings.Contains(st.Hint, "baton folder rescan Photos") || st.LastError != emptiedErr {
		t.Errorf("folder status --json of an emptied folder = %+v; want emptied, the error and a hint naming 'baton folder rescan Photos'", st)
	}
	c.fail(1, []string{"folder", "status", "Photos", "--wait", "--timeout", "5s"}, "folder Photos is stopped: "+emptiedErr, "baton folder rescan Photos")
	// The field says it, not the error's text.
	d.set(func(f *fakeDaemon) {
		f.statuses = []foldersync.FolderStatus{{Root: photos, Role: "rw", State: foldersync.StateError, LocalFiles: 3, LastError: "disk on fire", Emptied: true, LastScan: t0}}
	})
	c.fail(1, []string{"folder", "status", "Photos", "--wait", "--timeout", "5s"}, "folder Photos is stopped: disk on fire", "baton folder rescan Photos")
	d.set(func(f *fakeDaemon) {
		f.statuses = []foldersync.FolderStatus{{Root: photos, Role: "rw", State: foldersync.StateError, LocalFiles: 3, LastError: emptiedErr, LastScan: t0}}
	})
	if out := c.ok("folder", "status", "Photos"); strings.Contains(out, "hint:") {
		t.Errorf("folder status of a folder in error, not stopped as emptied, printed\n%s\nwant no hint", out)
	}

	// rescan --wait: until a later scan than the one before and in sync.
	t1 := t0.Add(time.Second)
	d.set(func(f *fakeDaemon) {
		f.statuses = []foldersync.FolderStatus{
			{Root: photos, Role: "rw", State: foldersync.StateError, LocalFiles: 3, LastError: emptiedErr, Emptied: true, LastScan: t0},
			{Root: photos, Role: "rw", State: foldersync.StateIdle, LocalFiles: 3, InSync: true, LastScan: t0}, // not rescanned yet
			{Root: photos, Role: "rw", State: foldersync.StateScanning, LastScan: t0},
			{Root: photos, Role: "rw", State: foldersync.StateIdle, LocalChanges: 3, LastScan: t1},
			{Root: photos, Role: "rw", State: foldersync.StateIdle, InSync: true, LastScan: t1},
		}
	})
	out = c.ok("folder", "rescan", "Photos", "--wait", "--timeout", "1m")
	if !strings.HasPrefix(out, "ok: rescan of folder Photos") || !strings.Contains(out, "Photos: scanning, 0 files") ||
		!strings.HasSuffix(out, "progress:      100%\n") || !strings.Contains(out, ": in sync\n") {
		t.Errorf("folder rescan --wait printed\n%s\nwant the request, the progress, then the folder in sync", out)
	}
	if len(d.rescanned) != 2 {
		t.Errorf("rescanned %v; want two rescans", d.rescanned)
	}
	d.set(func(f *fakeDaemon) {
		f.statuses = []foldersync.FolderStatus{{State: foldersync.StateIdle, InSync: true, LastScan: t1}}
	})
	c.fail(1, []string{"folder", "rescan", "Photos", "--wait", "--timeout", "300ms"}, "folder Photos is not in sync after 300ms")

	c.fail(2, []string{"folder", "rescan", "Photos", "--timeout", "1s"}, "folder rescan: --timeout goes with --wait")
	c.fail(2, []string{"folder", "rescan", "Photos", "--json"}, "--json goes with --wait")
	c.fail(2, []string{"folder", "rescan"}, "")
	c.fail(1, []string{"folder", "rescan", "Photos", "--owner", "ann"}, "--owner is for servers")
	c.fail(1, []string{"folder", "rescan", "Nope"}, "no folder Nope shared with ann")
	putFolder(t, d, collections.Folder{ID: "00000000000000aa", Name: "Music", Owner: "bob", Server: id("s1"),
		Members: map[string]collections.Right{"bob": collections.RightOwner, "ann": collections.RightReadOnly}})
	c.fail(1, []string{"folder", "rescan", "Music"}, "folder Music (00000000000000aa) is not synced on this device", "baton folder accept Music PATH")
	if len(d.rescanned) != 3 {
		t.Errorf("rescanned %v after refusals; want three rescans", d.rescanned)
	}

	// No daemon.
	idle := newCLI(t)
	idle.fail(1, []string{"folder", "rescan", "Photos"}, "no daemon running in "+idle.home)
}

func TestServerFolderRescan(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s2")
	serveFake(t, c.home, d)
	putUsers(t, d)
	d.mu.Lock()
	if _, err := d.certifyAs(d.master, mustPut(t, collections.User{Name: "dee", HomeServer: id("s3")})); err != nil {
		t.Fatal(err)
	}
	d.mu.Unlock()
	// The chain is s1, s2, s3: s2 hosts its own users' folders and, as
	// their replica, s1's; s3's folders are hosted by s3 and s1.
	for _, f := range []collections.Folder{
		{ID: "00000000000000a1", Name: "Photos", Owner: "ann", Server: id("s2"), Members: map[string]collections.Right{"ann": collections.RightOwner}},
		{ID: "00000000000000c1", Name: "Photos", Owner: "cy", Server: id("s2"), Members: map[string]collections.Right{"cy": collections.RightOwner}},
		{ID: "00000000000000b1", Name: "Music", Owner: "bob", Server: id("s1"), Members: map[string]collections.Right{"bob": collections.RightOwner}},
		{ID: "00000000000000d1", Name: "Films", Owner: "dee", Server: id("s3"), Members: map[string]collections.Right{"dee": collections.RightOwner}},
	} {
		putFolder(t, d, f)
	}
	root := filepath.Join(c.home, dataDirName, "folders", "00000000000000a1")
	if out := c.ok("folder", "rescan", "Photos", "--owner", "ann"); out != "ok: rescan of folder Photos (00000000000000a1) at "+root+" requested\n" {
		t.Errorf("folder rescan on a server printed %q", out)
	}
	c.ok("folder", "rescan", "00000000000000c1")
	c.ok("folder", "rescan", "Music") // s2 is its replica
	if strings.Join(d.rescanned, " ") != "00000000000000a1 00000000000000c1 00000000000000b1" {
		t.Errorf("rescanned %v", d.rescanned)
	}
	c.fail(1, []string{"folder", "rescan", "Photos"}, "2 folders named Photos on this server (owners ann, cy): give --owner")
	c.fail(1, []string{"folder", "rescan", "Films"}, "folder Films (00000000000000d1) is hosted on s3: this server does not sync it")
	c.fail(1, []string{"folder", "rescan", "Nope"}, "no folder Nope on this server (s2)")

	d.set(func(f *fakeDaemon) {
		f.statuses = []foldersync.FolderStatus{{Role: "server", State: foldersync.StateIdle, InSync: true, LocalFiles: 2}}
	})
	out := c.ok("folder", "status", "Photos", "--owner", "cy")
	for _, want := range []string{"folder Photos (00000000000000c1) at " + filepath.Join(c.home, dataDirName, "folders", "00000000000000c1") + ": in sync", "role:          server",
		"devices:       none connected\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("folder status on a server printed\n%s\nwant it to contain %q", out, want)
		}
	}

	// The member devices syncing through this server, named from their
	// certificates.
	d.addDevice(t, "ann", "ann-lap", "ann's laptop")
	lap := identitytest.Key("ann-lap").ID().String()
	d.set(func(f *fakeDaemon) {
		f.statuses = []foldersync.FolderStatus{{Role: "server", State: foldersync.StateIdle, InSync: true, LocalFiles: 2,
			Devices: []foldersync.DeviceSync{{ID: lap, User: "ann", LastRequest: testNow}}}}
	})
	if out := c.ok("folder", "status", "Photos", "--owner", "cy"); !strings.Contains(out, "\n  devices:       ann's laptop (ann)\n") {
		t.Errorf("folder status on a server printed\n%s\nwant ann's laptop among its devices", out)
	}
	var st control.FolderStatus
	if err := json.Unmarshal([]byte(c.ok("folder", "status", "Photos", "--owner", "cy", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Devices) != 1 || st.Devices[0].ID != lap || st.Devices[0].Name != "ann's laptop" || st.Devices[0].User != "ann" {
		t.Errorf("folder status --json: devices %+v; want ann's laptop", st.Devices)
	}
}

func TestAgentFoldersRefused(t *testing.T) {
	// Not logged in.
	c, _ := agentCLI(t, func(d *fakeDaemon) { d.user = "" })
	c.fail(1, []string{"folder", "list"}, "this agent is not logged in: run 'baton login USER@SERVER'")
	c.fail(1, []string{"folder", "create", "Photos", t.TempDir()}, "not logged in")

	// Agent commands at a server.
	s := newCLI(t)
	serveFake(t, s.home, newFakeDaemon(t, "s2"))
	for _, args := range [][]string{
		{"folder", "accept", "Photos", t.TempDir()}, {"folder", "leave", "Photos"},
		{"folder", "unshare", "Photos", "bob"}, {"folder", "revert", "Photos"},
	} {
		s.fail(1, args, "this host is a server: this command is for desktop agents")
	}
	s.fail(2, []string{"folder", "create", "Photos", t.TempDir()}, "on a server, give NAME and --owner USER")

	// The user's home server is gone from the agent's view: the hosting
	// server's refusal is passed on.
	c2, d2 := agentCLI(t, nil)
	d2.set(func(f *fakeDaemon) {
		f.agentErr = &peer.WrongServerError{Msg: "user ann's home server is s3 (" + id("s3") + "): folders are created there"}
	})
	c2.fail(1, []string{"folder", "create", "Photos", t.TempDir()}, "user ann's home server is s3")
}

func mustDecode(t *testing.T, s string) lpeer.ID {
	t.Helper()
	p, err := lpeer.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAgentDevice: GET /v1/agent/device gives the agent's login (user,
// home server by name, expiry) and whether it expired at the daemon's
// clock; without a login it says so, and a server has none.
func TestAgentDevice(t *testing.T) {
	c, d := agentCLI(t, func(d *fakeDaemon) { d.certExpires = testNow.Add(time.Hour) })
	cl := control.NewClient(c.home)
	got, err := cl.AgentDevice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !got.LoggedIn || got.User != "ann" || got.HomeServer != id("s2") || got.HomeServerName != "s2" || got.Device != id("lap") ||
		!got.Expires.Equal(testNow.Add(time.Hour)) || got.Expired || !got.Accepted {
		t.Errorf("AgentDevice = %+v; want ann's, at s2, expiring in an hour", got)
	}
	if out := c.ok("status"); !strings.Contains(out, "login:       ann at s2, certificate until "+testNow.Add(time.Hour).UTC().Format(time.RFC3339)+"\n") {
		t.Errorf("status printed\n%s\nwant the login", out)
	}
	d.mu.Lock()
	d.certExpires = testNow.Add(-time.Minute)
	d.mu.Unlock()
	if got, err := cl.AgentDevice(t.Context()); err != nil || !got.Expired {
		t.Errorf("AgentDevice after the expiry = %+v, %v; want expired", got, err)
	}
	if out := c.ok("status"); !strings.Contains(out, "expired at "+testNow.Add(-time.Minute).UTC().Format(time.RFC3339)+": log in again with 'baton login ann@ADDRESS'") {
		t.Errorf("status printed\n%s\nwant the expired login", out)
	}
	d.mu.Lock()
	d.user = ""
	d.mu.Unlock()
	if got, err := cl.AgentDevice(t.Context()); err != nil || got.LoggedIn || got.User != "" {
		t.Errorf("AgentDevice without a login = %+v, %v; want not logged in", got, err)
	}
	if out := c.ok("status"); !strings.Contains(out, "login:       none") {
		t.Errorf("status printed\n%s\nwant no login", out)
	}

	s := newCLI(t)
	serveFake(t, s.home, newFakeDaemon(t, "s1"))
	if _, err := control.NewClient(s.home).AgentDevice(t.Context()); err == nil || !strings.Contains(err.Error(), "is a server") {
		t.Errorf("AgentDevice on a server = %v; want refused", err)
	}
}
