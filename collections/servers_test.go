package collections_test

import (
	"errors"
	"slices"
	"testing"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
)

// hostOf is the Host record of a new host name with role.
func hostOf(t *testing.T, name string, role identity.Role) collections.Host {
	t.Helper()
	b, err := identitytest.HostRecord(t, name, role).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return collections.Host{Record: b}
}

// commitAll commits the updates of a server change in order as s1.
func commitAll(t *testing.T, d *ct.Domain, st *collections.State, c collections.ServerChange) {
	t.Helper()
	for _, u := range c.Updates {
		d.Commit(t, st, "s1", u)
	}
}

// TestServerBuilders: adding and removing servers, with the rules the
// control socket used to check itself; a chain change built from an old
// state fails in the log rather than undoing a concurrent one.
func TestServerBuilders(t *testing.T) {
	d := ct.NewTestDomain(t, 2)
	st := d.State(t)
	s1, s2 := ct.ID("s1"), ct.ID("s2")

	for _, tc := range []struct {
		what string
		h    collections.Host
		pos  int
		is   error
	}{
		{"an agent", hostOf(t, "laptop", identity.RoleAgent), 0, collections.ErrMalformed},
		{"a server of the chain", hostOf(t, "s2", identity.RoleServer), 0, collections.ErrExists},
		{"a position past the end", hostOf(t, "s9", identity.RoleServer), 4, collections.ErrMalformed},
	} {
		if _, err := st.AddServer(tc.h, tc.pos); !errors.Is(err, tc.is) {
			t.Errorf("AddServer(%s) = %v; want %v", tc.what, err, tc.is)
		}
	}

	// s3 at the front: its host record, majority failover (three
	// servers), the chain.
	c, err := st.AddServer(hostOf(t, "s3", identity.RoleServer), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Updates) != 3 || !c.Majority || c.Position != 1 || c.Servers != 3 {
		t.Fatalf("AddServer(s3, 1) = %d updates, majority %v, position %d of %d; want 3, true, 1 of 3", len(c.Updates), c.Majority, c.Position, c.Servers)
	}
	// Built from the same state: s4, whose chain misses s3.
	stale, err := st.AddServer(hostOf(t, "s4", identity.RoleServer), 0)
	if err != nil {
		t.Fatal(err)
	}
	commitAll(t, d, st, c)
	s3 := ct.ID("s3")
	if got := st.Chain().IDs(); !slices.Equal(got, []lpeer.ID{s3, s1, s2}) || !st.DomainInfo().Settings.Majority {
		t.Errorf("chain after adding s3 first = %v, majority %v; want s3, s1, s2 and majority", got, st.DomainInfo().Settings.Majority)
	}
	d.Commit(t, st, "s1", stale.Updates[0]) // s4's host record
	for _, u := range stale.Updates[1:] {   // majority failover, the chain
		if err := refusedInLog(t, d, st, "s1", u); !errors.Is(err, collections.ErrConflict) {
			t.Fatalf("%s built before s3 was added = %v; want ErrConflict", u.Key, err)
		}
	}
	if _, err := st.AddServer(hostOf(t, "s3", identity.RoleServer), 0); !errors.Is(err, collections.ErrExists) {
		t.Errorf("adding s3 again: %v; want ErrExists", err)
	}

	// Removal: not the master, not a home server, not the last.
	if _, err := st.RemoveServer(s1, s1); !errors.Is(err, collections.ErrNotAllowed) {
		t.Errorf("the master removes itself: %v; want ErrNotAllowed", err)
	}
	commit(t, d, st, "s1", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.AddUser("ann", s2, userID(1))
		return u, err
	})
	if _, err := st.RemoveServer(s2, s1); !errors.Is(err, collections.ErrNotAllowed) {
		t.Errorf("removing ann's home server: %v; want ErrNotAllowed", err)
	}
	c, err = st.RemoveServer(s3, s1)
	if err != nil {
		t.Fatal(err)
	}
	commitAll(t, d, st, c)
	if _, ok := st.HostByID(s3); ok || st.Chain().Contains(s3) {
		t.Errorf("s3 still in the domain after its removal")
	}
	if _, err := st.RemoveServer(s3, s1); !errors.Is(err, collections.ErrNotFound) {
		t.Errorf("removing s3 again: %v; want ErrNotFound", err)
	}
	// s4's host record, left by the refused chain change, is removed alone.
	c, err = st.RemoveServer(ct.ID("s4"), s1)
	if err != nil || len(c.Updates) != 1 || c.Position != 0 {
		t.Fatalf("RemoveServer(s4, out of the chain) = %+v, %v; want its host record's deletion alone", c, err)
	}
	commitAll(t, d, st, c)
}
