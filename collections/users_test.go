package collections_test

import (
	"errors"
	"testing"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
)

func ptr[T any](v T) *T { return &v }

// TestUserSettingsRules: only the server's own operator (by "") or an
// admin may set a user's quota or admin flag; a quota is 0 or positive;
// the settings are kept in the record and survive verification.
func TestUserSettingsRules(t *testing.T) {
	d := ct.NewTestDomain(t, 3)
	st := d.State(t)
	s2 := ct.ID("s2")
	commit(t, d, st, "s1", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.AddUserWith("ann", s2, userID(1), "", collections.UserSettings{Admin: ptr(true), Quota: ptr(int64(10 << 30))})
		return u, err
	})
	commit(t, d, st, "s1", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.AddUser("bob", s2, userID(2))
		return u, err
	})
	if u, _ := st.User("ann"); !u.Admin || u.Quota != 10<<30 {
		t.Fatalf("ann = %+v; want an admin with a 10 GiB quota", u)
	}
	if u, _ := st.User("bob"); u.Admin || u.Quota != 0 {
		t.Fatalf("bob = %+v; want no admin, no quota", u)
	}

	refused := []struct {
		name  string
		build func() error
		want  error
	}{
		{"a non-admin sets a quota", func() error {
			_, _, err := st.SetUser("bob", "bob", collections.UserSettings{Quota: ptr(int64(1))})
			return err
		}, collections.ErrNotAllowed},
		{"a non-admin makes themselves admin", func() error {
			_, _, err := st.SetUser("bob", "bob", collections.UserSettings{Admin: ptr(true)})
			return err
		}, collections.ErrNotAllowed},
		{"an unknown user sets a quota", func() error {
			_, _, err := st.SetUser("bob", "zed", collections.UserSettings{Quota: ptr(int64(1))})
			return err
		}, collections.ErrNotAllowed},
		{"a non-admin adds an admin", func() error {
			_, _, err := st.AddUserWith("cy", s2, userID(3), "bob", collections.UserSettings{Admin: ptr(true)})
			return err
		}, collections.ErrNotAllowed},
		{"a negative quota", func() error {
			_, _, err := st.SetUser("bob", "", collections.UserSettings{Quota: ptr(int64(-1))})
			return err
		}, collections.ErrMalformed},
		{"a negative quota at add", func() error {
			_, _, err := st.AddUserWith("cy", s2, userID(3), "", collections.UserSettings{Quota: ptr(int64(-5))})
			return err
		}, collections.ErrMalformed},
		{"nothing to set", func() error {
			_, _, err := st.SetUser("bob", "", collections.UserSettings{})
			return err
		}, collections.ErrMalformed},
		{"no such user", func() error {
			_, _, err := st.SetUser("zed", "", collections.UserSettings{Admin: ptr(true)})
			return err
		}, collections.ErrNotFound},
	}
	for _, tc := range refused {
		if err := tc.build(); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v; want %v", tc.name, err, tc.want)
		}
	}

	// An admin sets bob's quota and makes him admin; the operator takes
	// ann's admin flag and quota away.
	commit(t, d, st, "s1", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.SetUser("bob", "ann", collections.UserSettings{Quota: ptr(int64(5 << 20)), Admin: ptr(true)})
		return u, err
	})
	commit(t, d, st, "s1", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.SetUser("ann", "", collections.UserSettings{Admin: ptr(false), Quota: ptr(int64(0))})
		return u, err
	})
	if u, _ := st.User("bob"); !u.Admin || u.Quota != 5<<20 {
		t.Errorf("bob = %+v; want an admin with a 5 MiB quota", u)
	}
	if u, _ := st.User("ann"); u.Admin || u.Quota != 0 {
		t.Errorf("ann = %+v; want no admin, no quota", u)
	}
	// ann is no admin any more: she may not change bob.
	if _, _, err := st.SetUser("bob", "ann", collections.UserSettings{Admin: ptr(false)}); !errors.Is(err, collections.ErrNotAllowed) {
		t.Errorf("a former admin's change: err = %v; want ErrNotAllowed", err)
	}

	// A record with a negative quota is refused by verification too.
	bad := collections.User{Name: "bob", HomeServer: s2.String(), ID: userID(2), Quota: -1}
	if err := bad.Validate(); !errors.Is(err, collections.ErrMalformed) {
		t.Errorf("Validate(quota -1) = %v; want ErrMalformed", err)
	}
	// A change built from a state another change moved on from conflicts.
	old := d.State(t)
	for _, c := range []struct {
		name string
		id   byte
	}{{"ann", 1}, {"bob", 2}} {
		commit(t, d, old, "s1", func(st *collections.State) (collections.Update, error) {
			u, _, err := st.AddUser(c.name, s2, userID(c.id))
			return u, err
		})
	}
	up, _, err := old.SetUser("bob", "", collections.UserSettings{Quota: ptr(int64(1))})
	if err != nil {
		t.Fatal(err)
	}
	if err := refusedInLog(t, d, st, "s1", up); !errors.Is(err, collections.ErrConflict) {
		t.Errorf("a stale quota change: err = %v; want ErrConflict", err)
	}
}
