package multiprocess

// Users are identities, not names, with real daemons: a removed user's
// device stays out when the name is given to someone else.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// oldDeviceWatch is how long the removed user's laptop is watched, after
// the new file reached the new user's desk, for the file to arrive there
// too (it would come from the same server at about the same time).
const oldDeviceWatch = 3 * time.Second

// bob logs in a laptop and syncs a folder alice shares with him. The
// administrator removes bob, and a different person is added as bob (a new
// password), logs in from a desk, and alice shares the folder with the new
// bob. bob's old laptop, which never logs in again and keeps running, is
// not accepted (device list at the home server) and does not receive the
// file alice adds after the removal, which the new bob's desk receives.
func TestRemovedUsersLaptopStaysOut(t *testing.T) {
	skipIfShort(t)
	d, alice, oldBob := newPairDomain(t)
	s1 := d.servers[0]
	p := d.sharePair(alice, oldBob, "Team", "rw", map[string]string{"before.txt": "written before bob left\n"})
	before := d.mustTree(p.bDir)

	r := d.cli(d.master(), "user", "remove", "bob")
	if m := okLine.FindStringSubmatch(r.stdout); r.code != 0 || m == nil || !strings.HasPrefix(m[1], "user bob removed") {
		t.Fatalf("user remove bob: %v; want ok: user bob removed ...", r)
	}
	t.Logf("on %s: %s", d.master().name, strings.TrimSpace(r.stdout))

	// Another person called bob, with a password of their own.
	d.write(d.master(), "user", "add", "bob", "--home-server", s1.name)
	pw := filepath.Join(d.dir, "new-bob.password")
	if err := os.WriteFile(pw, []byte("the new bob's own password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.waitFor(settleTimeout, "s1 to set the new bob's password", func() (bool, string) {
		r := d.cli(s1.node, "user", "passwd", "bob", "--password-file", pw)
		return r.code == 0 && strings.HasPrefix(r.stdout, "ok: "), r.String()
	})
	newBob := d.addAgent("bob-desk", "bob", pw, s1, s1)
	// Shared with the name bob again: a grant bound to the name would let
	// the old laptop in too.
	d.share(alice, p.name, p.id, "bob", "rw")
	deskDir := filepath.Join(d.dir, "new-bob-"+p.name)
	d.accept(newBob, p.name, p.id, alice.user, "rw", deskDir)

	// The home server accepts the desk and not the old laptop.
	d.waitFor(settleTimeout, "s1 to list bob's devices", func() (bool, string) {
		r := d.cli(s1.node, "device", "list", "--user", "bob", "--json")
		var ds []struct {
			ID    string `json:"id"`
			Valid bool   `json:"valid"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ds) != nil {
			return false, r.String()
		}
		valid := map[string]bool{}
		for _, dv := range ds {
			valid[dv.ID] = dv.Valid
		}
		if valid[oldBob.id] {
			t.Fatalf("s1 accepts the removed bob's laptop %s as a device of the new bob: %s", oldBob.id, r.stdout)
		}
		return valid[newBob.id], r.stdout
	})

	want := d.mustTree(p.aDir)
	want["after.txt"] = d.writeFile(p.aDir, "after.txt", []byte("written after bob was removed\n"))
	d.waitTree(arriveTimeout, "alice's new file on the new bob's desk", want, p.aDir, deskDir)
	end := time.Now().Add(oldDeviceWatch)
	for {
		got, err := readTree(p.bDir, true)
		if err != nil {
			t.Fatal(err)
		}
		if diff := before.diff(got); diff != "" {
			t.Fatalf("the removed bob's laptop's copy changed after the removal:\n%s", diff)
		}
		if time.Now().After(end) {
			break
		}
		time.Sleep(syncPoll)
	}
}
