package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
)

var okLine = regexp.MustCompile(`^ok: .+ \(committed at term \d+, index \d+\)\n$`)

// okMutation runs a mutating command and checks its "ok: ..." line.
func (c *cli) okMutation(args ...string) string {
	c.t.Helper()
	out := c.ok(args...)
	if !okLine.MatchString(out) {
		c.t.Errorf("baton %s printed %q; want one line \"ok: ... (committed at term T, index N)\"", strings.Join(args, " "), out)
	}
	return out
}

func id(name string) string { return identitytest.Key(name).ID().String() }

// hostFile writes name's signed host record with role to a file.
func hostRecordFile(t *testing.T, name string, role identity.Role) string {
	t.Helper()
	data, err := armorEnvelope(identitytest.HostRecord(t, name, role, "/ip4/192.0.2.9/tcp/7400"))
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, filepath.Join(t.TempDir(), name+".host"), string(data))
}

func TestControlSocket(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := control.Listen(home)
	if err != nil {
		t.Fatal(err)
	}
	sock := control.SocketPath(home)
	if got := mode(t, sock); got != 0o600 {
		t.Errorf("control socket mode = %04o; want 0600", got)
	}
	if got := mode(t, home); got != 0o700 {
		t.Errorf("home mode after control.Listen = %04o; want 0700", got)
	}
	// A second daemon is refused while the first answers.
	if _, err := control.Listen(home); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("control.Listen with a live daemon = %v; want 'already running'", err)
	}
	// A daemon that died leaves a socket nobody answers: it is replaced.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("stale socket missing: %v", err)
	}
	ln, err = control.Listen(home)
	if err != nil {
		t.Fatalf("control.Listen over a stale socket: %v", err)
	}
	ln.Close()
	if _, err := os.Stat(sock); err == nil {
		t.Error("closing the control listener left the socket")
	}
	// Something that is not a socket is never removed.
	writeFile(t, sock, "precious")
	if _, err := control.Listen(home); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("control.Listen over a regular file = %v; want 'not a socket'", err)
	}
	if data, _ := os.ReadFile(sock); string(data) != "precious" {
		t.Error("control.Listen changed a regular file in the socket's place")
	}
	long := filepath.Join(t.TempDir(), strings.Repeat("x", 120))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := control.Listen(long); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("control.Listen with a long home = %v; want 'too long'", err)
	}
}

func TestNoDaemon(t *testing.T) {
	c := newCLI(t)
	want := "no daemon running in " + c.home + " (start it with 'baton run --home " + c.home + "')"
	for _, args := range [][]string{
		{"status"}, {"status", "--json"}, {"user", "add", "ann", "--home-server", "s1"}, {"user", "list"},
		{"server", "remove", "s2"}, {"folder", "list"}, {"report", "generate"},
	} {
		c.fail(1, args, want)
	}
	// A stale socket is no daemon either.
	if err := makeHome(c.home); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", control.SocketPath(c.home))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	c.fail(1, []string{"status"}, want)
}

func TestStatus(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s2")
	serveFake(t, c.home, d)

	out := c.ok("status")
	for _, want := range []string{
		"name:        s2", "id:          " + id("s2"), "role:        slave",
		"master:      s1 (" + id("s1") + ")", "epoch:       3", "domain:      test",
		"/ip4/10.0.0.3/tcp/7400", "private", "domain       6 records", "catalog      0 records",
		"outbox:      2", "quarantine:  none",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status printed\n%s\nwant it to contain %q", out, want)
		}
	}

	var raw map[string]any
	if err := json.Unmarshal([]byte(c.ok("status", "--json")), &raw); err != nil {
		t.Fatalf("status --json: %v", err)
	}
	for _, f := range []string{"id", "name", "role", "master", "master_name", "epoch", "domain", "listen", "peers", "collections", "outbox", "quarantined"} {
		if _, ok := raw[f]; !ok {
			t.Errorf("status --json lacks %q", f)
		}
	}
	if raw["id"] != id("s2") || raw["role"] != "slave" || raw["master"] != id("s1") || raw["epoch"] != 3.0 {
		t.Errorf("status --json = id %v, role %v, master %v, epoch %v; want s2, slave, s1, 3", raw["id"], raw["role"], raw["master"], raw["epoch"])
	}
	cols, _ := raw["collections"].(map[string]any)
	st, _ := d.State(t.Context())
	for _, k := range collections.Kinds {
		col, _ := cols[k.String()].(map[string]any)
		dg := st.Digest(k)
		if got, want := col["digest"], hex.EncodeToString(dg[:]); got != want {
			t.Errorf("status --json collections.%s.digest = %v; want %s", k, got, want)
		}
		for _, f := range []string{"records", "last_update"} {
			if _, ok := col[f]; !ok {
				t.Errorf("status --json collections.%s lacks %q", k, f)
			}
		}
	}
	peers, _ := raw["peers"].([]any)
	if len(peers) != 1 {
		t.Fatalf("status --json peers = %v; want one", raw["peers"])
	}
	for _, f := range []string{"id", "name", "addr", "network"} {
		if _, ok := peers[0].(map[string]any)[f]; !ok {
			t.Errorf("status --json peers[0] lacks %q", f)
		}
	}

	d.as("s1")
	if out := c.ok("status"); !strings.Contains(out, "role:        master") || !strings.Contains(out, "this host") {
		t.Errorf("status at the master printed\n%s\nwant role master, this host", out)
	}
}

func TestUsersAtMaster(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s1")
	serveFake(t, c.home, d)

	c.okMutation("user", "add", "ann", "--home-server", "s2")
	c.okMutation("user", "add", "bob", "--home-server", id("s1"))
	got := d.takeSubmits()
	if len(got) != 2 || got[0].Key != "user/ann" || got[1].Key != "user/bob" {
		t.Fatalf("submitted %+v; want user/ann, user/bob", got)
	}
	st, _ := d.State(t.Context())
	if u, _ := st.User("ann"); u.HomeServer != id("s2") {
		t.Errorf("ann's home server = %s; want s2 %s", u.HomeServer, id("s2"))
	}

	out := c.ok("user", "list")
	if !strings.Contains(out, "ann") || !strings.Contains(out, id("s2")) || !strings.Contains(out, "bob") {
		t.Errorf("user list printed\n%s\nwant ann and bob with their servers", out)
	}
	var users []control.User
	if err := json.Unmarshal([]byte(c.ok("user", "list", "--json")), &users); err != nil {
		t.Fatal(err)
	}
	if want := []control.User{{Name: "ann", HomeServer: id("s2"), HomeServerName: "s2"}, {Name: "bob", HomeServer: id("s1"), HomeServerName: "s1"}}; !slices.Equal(users, want) {
		t.Errorf("user list --json = %+v; want %+v", users, want)
	}

	c.fail(1, []string{"user", "add", "ann", "--home-server", "s3"}, "user ann already exists (home server s2)")
	c.fail(1, []string{"user", "add", "cat", "--home-server", "nosuch"}, "no host named nosuch in the domain")
	c.fail(1, []string{"user", "add", "cat", "--home-server", "lap"}, "lap", "is not a server in the chain")
	c.fail(2, []string{"user", "add", "cat"}, "--home-server")
	c.fail(2, []string{"user", "add", "bad name", "--home-server", "s1"}, "user name")
	c.fail(2, []string{"user", "add", "cat", "--home-server", "s1", "--wait", "0s"}, "--wait")

	c.okMutation("user", "remove", "bob")
	c.fail(1, []string{"user", "remove", "bob"}, "no user bob in the domain")
	got = d.takeSubmits()
	if len(got) != 1 || got[0].Delete || got[0].Key != "user/bob" || len(got[0].IfPrev) != 32 {
		t.Fatalf("submitted %+v; want the removal of user/bob only, conditional on its record", got)
	}
	if v, err := got[0].Decode(); err != nil || !v.(collections.User).Removed || v.(collections.User).ID == "" {
		t.Errorf("removal record %+v, %v; want bob marked removed, with his ID", v, err)
	}
	// The name given again is a new identity.
	c.okMutation("user", "add", "bob", "--home-server", "s1")
	st, _ = d.State(t.Context())
	if u, ok := st.User("bob"); !ok || len(u.Former) != 1 || u.Former[0].ID == u.ID {
		t.Errorf("bob added again: %+v, %v; want a new ID, remembering the removed one", u, ok)
	}
	c.fail(1, []string{"user", "remove", "bob", "--transfer-to", "zed"}, "successor zed")
}

func TestServersAtMaster(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s1")
	serveFake(t, c.home, d)

	chain := func() []string {
		st, _ := d.State(t.Context())
		return st.Chain().Servers
	}
	c.okMutation("server", "add", hostRecordFile(t, "s4", identity.RoleServer))
	if got, want := chain(), []string{id("s1"), id("s2"), id("s3"), id("s4")}; !slices.Equal(got, want) {
		t.Errorf("chain after server add = %v; want %v", got, want)
	}
	if got := d.takeSubmits(); len(got) != 2 || got[0].Key != "host/"+id("s4") || got[1].Key != "chain" {
		t.Errorf("server add submitted %+v; want host then chain", got)
	}
	out := c.okMutation("server", "add", hostRecordFile(t, "s5", identity.RoleServer), "--position", "2")
	if !strings.Contains(out, "position 2 of 5") {
		t.Errorf("server add --position 2 printed %q", out)
	}
	if got, want := chain(), []string{id("s1"), id("s5"), id("s2"), id("s3"), id("s4")}; !slices.Equal(got, want) {
		t.Errorf("chain after server add --position 2 = %v; want %v", got, want)
	}
	sl := c.ok("server", "list")
	if !strings.HasPrefix(sl, "1. s1") || !strings.Contains(sl, "2. s5") {
		t.Errorf("server list printed\n%s", sl)
	}

	c.fail(1, []string{"server", "add", hostRecordFile(t, "s2", identity.RoleServer)}, "s2", "already server 3 of the chain")
	c.fail(1, []string{"server", "add", hostRecordFile(t, "s6", identity.RoleServer), "--position", "9"}, "position 9", "1 to 6")
	c.fail(2, []string{"server", "add", hostRecordFile(t, "s6", identity.RoleServer), "--position", "0"}, "--position")
	c.fail(1, []string{"server", "add", hostRecordFile(t, "desk", identity.RoleAgent)}, "role agent")
	bad := writeFile(t, filepath.Join(t.TempDir(), "bad.host"), "hello")
	c.fail(1, []string{"server", "add", bad}, bad, "not a signed host record")
	c.fail(1, []string{"server", "add", filepath.Join(t.TempDir(), "missing.host")}, "missing.host")

	c.okMutation("server", "remove", "s5")
	if got, want := chain(), []string{id("s1"), id("s2"), id("s3"), id("s4")}; !slices.Equal(got, want) {
		t.Errorf("chain after server remove = %v; want %v", got, want)
	}
	if got := d.takeSubmits(); len(got) < 2 || got[len(got)-1].Key != "host/"+id("s5") || !got[len(got)-1].Delete {
		t.Errorf("server remove submitted %+v; want the chain, then the host's delete", got)
	}
	st, _ := d.State(t.Context())
	if _, ok := st.HostByID(identitytest.Key("s5").ID()); ok {
		t.Error("removed server's host record is still in the domain")
	}
	c.fail(1, []string{"server", "remove", "s1"}, "s1 is the master (this host)")
	c.fail(1, []string{"server", "remove", "nosuch"}, "no host named nosuch")
	c.fail(1, []string{"server", "remove", "lap"}, "lap", "is not a server in the chain")
	c.okMutation("user", "add", "ann", "--home-server", "s3")
	c.fail(1, []string{"server", "remove", "s3"}, "s3 is the home server of 1 users (ann)")

	// A chain change makes the servers elect again: the host record's
	// delete waits for this host to be master again.
	d.set(func(f *fakeDaemon) { f.reelect = true })
	c.okMutation("server", "remove", "s4")
	st, _ = d.State(t.Context())
	if _, ok := st.HostByID(identitytest.Key("s4").ID()); ok || slices.Contains(st.Chain().Servers, id("s4")) {
		t.Error("server remove during an election left s4 in the domain")
	}
	d.set(func(f *fakeDaemon) { f.reelect = false })

	// A remove interrupted after the chain change is finished by running it again.
	c.okMutation("server", "add", hostRecordFile(t, "s6", identity.RoleServer))
	if _, err := d.Submit(t.Context(), mustPut(t, collections.Chain{Servers: []string{id("s1"), id("s2"), id("s3")}})); err != nil {
		t.Fatal(err)
	}
	if out := c.okMutation("server", "remove", "s6"); !strings.Contains(out, "no longer in the chain") {
		t.Errorf("server remove of a host out of the chain printed %q", out)
	}
	st, _ = d.State(t.Context())
	if _, ok := st.HostByID(identitytest.Key("s6").ID()); ok {
		t.Error("server remove left s6's host record")
	}
}

func mustPut(t *testing.T, v collections.Value) collections.Update {
	t.Helper()
	u, err := collections.Put(v)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestServerAddTurnsOnMajority: a two-server domain on the plain chain rule
// gets majority failover with its third server.
func TestServerAddTurnsOnMajority(t *testing.T) {
	c := newCLI(t)
	var hosts [][]byte
	for _, n := range []string{"s1", "s2"} {
		hosts = append(hosts, marshalEnv(t, identitytest.HostRecord(t, n, identity.RoleServer)))
	}
	raw, err := collections.NewGenesis(identitytest.Key("s1"),
		collections.DomainInfo{Name: "two", Settings: collections.DefaultFailover(2)},
		collections.Chain{Servers: []string{id("s1"), id("s2")}}, hosts, testNow)
	if err != nil {
		t.Fatal(err)
	}
	g, err := collections.OpenGenesis(raw)
	if err != nil {
		t.Fatal(err)
	}
	d := newFakeDaemon(t, "s1")
	if d.state, err = collections.NewState(g); err != nil {
		t.Fatal(err)
	}
	serveFake(t, c.home, d)
	out := c.okMutation("server", "add", hostRecordFile(t, "s3", identity.RoleServer))
	if !strings.Contains(out, "majority failover is now on") {
		t.Errorf("server add printed %q; want it to say majority failover is on", out)
	}
	st, _ := d.State(t.Context())
	if !st.DomainInfo().Settings.Majority || len(st.Chain().Servers) != 3 {
		t.Errorf("after server add: majority %v, chain %v; want majority and 3 servers", st.DomainInfo().Settings.Majority, st.Chain().Servers)
	}
}

func TestDomainChangesAtSlave(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s2")
	serveFake(t, c.home, d)
	want := "baton: domain changes are made at the master: run this on s1 (" + id("s1") + ")\n"
	s4 := hostRecordFile(t, "s4", identity.RoleServer)
	for _, args := range [][]string{
		{"user", "add", "ann", "--home-server", "s2"},
		{"user", "add", "ann", "--home-server", "nosuch"}, // the master decides, not this replica
		{"user", "remove", "ann"},
		{"server", "add", s4},
		{"server", "remove", "s3"},
	} {
		if got := c.fail(1, args); got != want {
			t.Errorf("baton %s at a slave: stderr %q; want %q", strings.Join(args, " "), got, want)
		}
	}
	if got := d.takeSubmits(); len(got) != 0 {
		t.Errorf("refused commands submitted %+v", got)
	}
	// During an election the change waits for the role to settle.
	d.as("s1")
	d.set(func(f *fakeDaemon) { f.elect = 3 })
	c.okMutation("user", "add", "ann", "--home-server", "s2")
	d.set(func(f *fakeDaemon) { f.elect = 1000 })
	c.fail(1, []string{"user", "remove", "ann", "--wait", "300ms"}, "no master is reachable now")
	d.set(func(f *fakeDaemon) { f.elect = 0 })
	d.as("s2")
	d.takeSubmits()

	// With no master reachable, the line says so.
	d.set(func(f *fakeDaemon) { f.master = nil })
	c.fail(1, []string{"user", "remove", "ann", "--wait", "300ms"}, "domain changes are made at the master, and no master is reachable now")
}

// setupUsers provisions ann and cy at s2 and bob at s1, through the master.
func setupUsers(t *testing.T, c *cli, d *fakeDaemon) {
	t.Helper()
	d.as("s1")
	c.okMutation("user", "add", "ann", "--home-server", "s2")
	c.okMutation("user", "add", "cy", "--home-server", "s2")
	c.okMutation("user", "add", "bob", "--home-server", "s1")
	d.as("s2")
	d.takeSubmits()
}

func TestFolders(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s2")
	serveFake(t, c.home, d)
	setupUsers(t, c, d)

	out := c.okMutation("folder", "create", "Photos", "--owner", "ann")
	st, _ := d.State(t.Context())
	fs := st.Folders()
	if len(fs) != 1 {
		t.Fatalf("folders after create: %+v", fs)
	}
	f := fs[0]
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(f.ID) || f.Name != "Photos" || f.Owner != "ann" || f.Server != id("s2") ||
		len(f.Members) != 1 || f.Members["ann"] != collections.RightOwner {
		t.Errorf("created folder = %+v; want a 16-hex ID, Photos, owner ann, server s2, members {ann: owner}", f)
	}
	if !strings.Contains(out, f.ID) {
		t.Errorf("folder create printed %q; want the ID %s", out, f.ID)
	}

	c.fail(1, []string{"folder", "create", "Photos", "--owner", "ann"}, "user ann already has a folder named Photos ("+f.ID+")")
	c.fail(1, []string{"folder", "create", "Docs", "--owner", "bob"}, "user bob's home server is s1: create the folder there")
	c.fail(1, []string{"folder", "create", "Docs", "--owner", "zed"}, "no user zed in the domain")
	c.fail(2, []string{"folder", "create", "Docs"}, "--owner")
	c.okMutation("folder", "create", "Photos", "--owner", "cy") // another owner may use the name

	c.okMutation("folder", "share", "Photos", "bob", "--rights", "ro", "--owner", "ann")
	c.okMutation("folder", "share", f.ID, "cy", "--rights", "rw")
	st, _ = d.State(t.Context())
	f, _ = st.Folder(f.ID)
	if f.Members["bob"] != collections.RightReadOnly || f.Members["cy"] != collections.RightReadWrite {
		t.Errorf("members after share = %v; want bob ro, cy rw", f.Members)
	}
	c.fail(1, []string{"folder", "share", "Photos", "bob", "--rights", "ro"}, "2 folders named Photos", "--owner")
	c.fail(2, []string{"folder", "share", "Photos", "bob", "--rights", "admin"}, `--rights "admin"`, "ro", "rw")
	c.fail(2, []string{"folder", "share", "Photos", "bob"}, "--rights")
	c.fail(1, []string{"folder", "share", f.ID, "zed", "--rights", "ro"}, "no user zed in the domain")
	c.fail(1, []string{"folder", "share", "Nope", "bob", "--rights", "ro"}, "no folder Nope on this server (s2)")
	c.fail(1, []string{"folder", "share", f.ID, "ann", "--rights", "ro"}, "ann owns folder Photos")

	// A folder hosted elsewhere is shared there.
	d.as("s1")
	c.okMutation("folder", "create", "Music", "--owner", "bob")
	d.as("s2")
	c.fail(1, []string{"folder", "share", "Music", "ann", "--rights", "ro"}, "hosted on s1: share it there")

	list := c.ok("folder", "list")
	for _, want := range []string{"Photos", "Music", "ann:owner,bob:ro,cy:rw", "s2", "s1"} {
		if !strings.Contains(list, want) {
			t.Errorf("folder list printed\n%s\nwant it to contain %q", list, want)
		}
	}
	var folders []control.Folder
	if err := json.Unmarshal([]byte(c.ok("folder", "list", "--json")), &folders); err != nil {
		t.Fatal(err)
	}
	var photos control.Folder
	for _, fj := range folders {
		if fj.ID == f.ID {
			photos = fj
		}
	}
	want := []control.Member{{User: "ann", Right: "owner"}, {User: "bob", Right: "ro"}, {User: "cy", Right: "rw"}}
	if photos.ServerName != "s2" || photos.Server != id("s2") || !slices.Equal(photos.Members, want) {
		t.Errorf("folder list --json entry = %+v; want server s2 and members %v", photos, want)
	}
}

func TestReports(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s2")
	serveFake(t, c.home, d)
	setupUsers(t, c, d)
	c.okMutation("folder", "create", "Photos", "--owner", "ann")
	c.okMutation("folder", "share", "Photos", "bob", "--rights", "ro")
	if err := os.MkdirAll(filepath.Join(c.home, dataDirName, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(c.home, dataDirName, "data", "domain.dat"), strings.Repeat("x", 1000))

	c.okMutation("report", "generate")
	st, _ := d.State(t.Context())
	reps := st.Reports()
	if len(reps) != 1 {
		t.Fatalf("reports: %+v", reps)
	}
	r := reps[0]
	if r.Kind != "usage" || r.Author != id("s2") || r.Created != testNow.UnixNano() {
		t.Errorf("report = %+v; want kind usage by s2 at %v", r, testNow)
	}
	var u control.UsageReport
	if err := json.Unmarshal(r.Content, &u); err != nil {
		t.Fatal(err)
	}
	if u.Host != "s2" || !slices.Equal(u.Users, []string{"ann", "cy"}) || len(u.Folders) != 1 || u.Folders[0].Members != 2 ||
		u.DataBytes != 1000 || u.DataFiles["data/domain.dat"] != 1000 {
		t.Errorf("usage report = %+v; want s2, users ann and cy, one folder with 2 members, 1000 data bytes", u)
	}

	list := c.ok("report", "list")
	if !strings.Contains(list, r.ID) || !strings.Contains(list, "s2") || !strings.Contains(list, "usage") {
		t.Errorf("report list printed\n%s\nwant the report's ID, author s2, kind usage", list)
	}
	show := c.ok("report", "show", r.ID)
	if !strings.Contains(show, `"users": [`) || !strings.Contains(show, `"ann"`) {
		t.Errorf("report show printed\n%s\nwant the indented JSON content", show)
	}
	c.fail(1, []string{"report", "show", "0000000000000000"}, "no report 0000000000000000")
}

func TestQueued(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s2")
	serveFake(t, c.home, d)
	setupUsers(t, c, d)
	d.set(func(f *fakeDaemon) { f.queue = true })
	out := c.ok("folder", "create", "Photos", "--owner", "ann", "--wait", "1s")
	if !strings.HasPrefix(out, "queued: not committed yet: no master, or no majority of the chain reachable; it waits in the outbox") {
		t.Errorf("folder create with no master printed %q; want the queued line", out)
	}
}

// TestRejected: an update the master refuses prints its reason; a report
// at a host that is not a server is refused before it is sent.
func TestRejected(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s2")
	serveFake(t, c.home, d)
	setupUsers(t, c, d)
	d.set(func(f *fakeDaemon) {
		f.reject = fmt.Errorf("%w: folder update by s2: unauthorized: owner ann's home server is s3", peer.ErrRejected)
	})
	c.fail(1, []string{"folder", "create", "Photos", "--owner", "ann"}, "update rejected", "owner ann's home server is s3")
	d.set(func(f *fakeDaemon) { f.reject = nil })
	d.as("lap")
	c.fail(1, []string{"report", "generate"}, "this host is not a server in the chain")
	if got := d.takeSubmits(); len(got) != 1 {
		t.Errorf("submitted %d updates; want only the rejected folder", len(got))
	}
}
