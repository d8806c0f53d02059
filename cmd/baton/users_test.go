package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

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

// TestUserChangesForAnAdmin: a change made for a user (control.WithUser,
// as the console's admin sessions make them) goes through the Domain's
// rule: an admin may add users and change their quota and admin flag, a
// user who is not an admin may not, and nothing of theirs is submitted.
func TestUserChangesForAnAdmin(t *testing.T) {
	d := newFakeDaemon(t, "s1")
	srv := control.NewServer(control.Config{Daemon: d, Now: func() time.Time { return testNow }, Rand: rand.Reader, Log: slog.New(slog.DiscardHandler)})
	c := control.NewHandlerClient("test", srv.Handler())
	ctx := t.Context()
	wait := control.DefaultWait
	yes := true
	if _, err := c.AddUser(ctx, wait, control.AddUserRequest{Name: "ann", HomeServer: "s2", Admin: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddUser(ctx, wait, control.AddUserRequest{Name: "bob", HomeServer: "s2"}); err != nil {
		t.Fatal(err)
	}
	d.takeSubmits()

	bob := control.WithUser(ctx, "bob")
	var re *control.RemoteError
	if _, err := c.SetUser(bob, wait, "bob", control.SetUserRequest{Admin: &yes}); !errors.As(err, &re) || re.Code != control.CodeDenied || !strings.Contains(err.Error(), "bob is not an admin") {
		t.Errorf("bob makes himself admin: %v; want denied, not an admin", err)
	}
	if _, err := c.AddUser(bob, wait, control.AddUserRequest{Name: "cy", HomeServer: "s2"}); err == nil || !strings.Contains(err.Error(), "bob is not an admin") {
		t.Errorf("bob adds a user: %v; want refused, not an admin", err)
	}
	if got := d.takeSubmits(); len(got) != 0 {
		t.Fatalf("a non-admin's changes were submitted: %+v", got)
	}

	ann := control.WithUser(ctx, "ann")
	q := int64(1 << 30)
	if _, err := c.SetUser(ann, wait, "bob", control.SetUserRequest{Quota: &q, Admin: &yes}); err != nil {
		t.Fatalf("ann, an admin, changes bob: %v", err)
	}
	if _, err := c.AddUser(ann, wait, control.AddUserRequest{Name: "cy", HomeServer: "s2", Quota: 5 << 20}); err != nil {
		t.Fatalf("ann, an admin, adds cy: %v", err)
	}
	st, _ := d.State(ctx)
	if u, _ := st.User("bob"); u.Quota != 1<<30 || !u.Admin {
		t.Errorf("bob after ann's change = %+v; want 1 GiB, admin", u)
	}
	if u, ok := st.User("cy"); !ok || u.Quota != 5<<20 {
		t.Errorf("cy after ann's add = %+v, %v; want a 5 MiB quota", u, ok)
	}
}
