package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/baton-sync/baton/internal/control"
)

// TestUserQuotaAndAdmin: user add --quota --admin and user set NAME
// --quota SIZE|none --admin[=false] reach the Domain record, user list
// shows them, and bad values are refused before anything is sent.
func TestUserQuotaAndAdmin(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s1")
	serveFake(t, c.home, d)

	c.okMutation("user", "add", "ann", "--home-server", "s2", "--quota", "10GiB", "--admin")
	c.okMutation("user", "add", "bob", "--home-server", "s2")
	st, _ := d.State(t.Context())
	if u, _ := st.User("ann"); u.Quota != 10<<30 || !u.Admin {
		t.Fatalf("ann = %+v; want quota 10 GiB, admin", u)
	}
	if u, _ := st.User("bob"); u.Quota != 0 || u.Admin {
		t.Fatalf("bob = %+v; want no quota, no admin", u)
	}

	c.okMutation("user", "set", "bob", "--quota", "500MiB")
	c.okMutation("user", "set", "ann", "--admin=false")
	st, _ = d.State(t.Context())
	if u, _ := st.User("bob"); u.Quota != 500<<20 || u.Admin {
		t.Errorf("bob after set --quota 500MiB = %+v; want quota 500 MiB, no admin", u)
	}
	if u, _ := st.User("ann"); u.Quota != 10<<30 || u.Admin {
		t.Errorf("ann after set --admin=false = %+v; want quota kept, no admin", u)
	}
	out := c.ok("user", "list")
	if !strings.Contains(out, "500MiB") || !strings.Contains(out, "10GiB") {
		t.Errorf("user list printed\n%s\nwant the quotas 500MiB and 10GiB", out)
	}
	c.okMutation("user", "set", "bob", "--quota", "none", "--admin")
	var users []control.User
	if err := json.Unmarshal([]byte(c.ok("user", "list", "--json")), &users); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Name == "bob" && (u.Quota != 0 || !u.Admin) {
			t.Errorf("bob in user list --json = %+v; want no quota, admin", u)
		}
	}

	d.takeSubmits()
	c.fail(2, []string{"user", "set", "bob"}, "nothing to change")
	c.fail(2, []string{"user", "set", "bob", "--quota", "lots"}, "--quota")
	c.fail(2, []string{"user", "set", "bob", "--quota", "-5GiB"}, "--quota")
	c.fail(2, []string{"user", "add", "cy", "--home-server", "s2", "--quota", "10 parsecs"}, "--quota")
	c.fail(1, []string{"user", "set", "zed", "--admin"}, "no user zed")
	if got := d.takeSubmits(); len(got) != 0 {
		t.Errorf("refused commands submitted %+v", got)
	}
}
