package collections_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
)

// disclosureWorld is a domain with users ann, bob, carol and dave, their
// folders and devices, a report and two extra hosts, as the master holds
// it. bob is a member of "shared" (ann's) and "carols" (carol's), not of
// "daves", and was a member of "gone" (ann's) until ann unshared it.
type disclosureWorld struct {
	d        *ct.Domain
	st       *collections.State
	goneOld  collections.Certified // "gone" while bob was a member
	daves    collections.Certified
	bobOwnFo collections.Certified // bob's own folder "bobs"
}

func newDisclosureWorld(t *testing.T) disclosureWorld {
	t.Helper()
	d := ct.NewDomain(t, ct.Spec{Servers: []string{"s1", "s2"}})
	st := d.State(t)
	m := d.Master()
	for _, u := range []struct{ name, home string }{{"ann", "s1"}, {"bob", "s1"}, {"carol", "s2"}, {"dave", "s1"}} {
		d.Commit(t, st, m, ct.MustPut(t, collections.User{Name: u.name, HomeServer: ct.ID(u.home).String()}))
	}
	host := func(name string, role identity.Role) collections.Value {
		h, err := collections.HostFromEnvelope(identitytest.HostRecord(t, name, role))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	d.Commit(t, st, m, ct.MustPut(t, host("s3", identity.RoleServer)))
	d.Commit(t, st, m, ct.MustPut(t, host("kiosk", identity.RoleAgent)))

	folder := func(server, id, owner string, members map[string]collections.Right) collections.Certified {
		ms := map[string]collections.Right{owner: collections.RightOwner}
		for u, r := range members {
			ms[u] = r
		}
		return d.Commit(t, st, server, ct.MustPut(t, collections.Folder{ID: id, Name: id + " files", Owner: owner, Server: ct.ID(server).String(), Members: ms}))
	}
	w := disclosureWorld{d: d, st: st}
	folder("s1", "shared", "ann", map[string]collections.Right{"bob": collections.RightReadWrite})
	folder("s2", "carols", "carol", map[string]collections.Right{"bob": collections.RightReadOnly})
	w.daves = folder("s1", "daves", "dave", map[string]collections.Right{"ann": collections.RightReadOnly})
	w.bobOwnFo = folder("s1", "bobs", "bob", nil)
	w.goneOld = folder("s1", "gone", "ann", map[string]collections.Right{"bob": collections.RightReadWrite})
	folder("s1", "gone", "ann", nil) // unshared from bob

	device := func(user, dev, server string) {
		d.Commit(t, st, server, ct.MustPut(t, deviceRecord(t, deviceCert(user, dev, server), server, false)))
	}
	device("bob", "bob-laptop", "s1")
	device("ann", "ann-laptop", "s1")
	device("carol", "carol-laptop", "s2")
	d.Commit(t, st, "s2", ct.MustPut(t, collections.ReportRecord{ID: "r1", Author: ct.ID("s2").String(), Kind: "usage", Content: []byte("2 users")}))
	return w
}

func keysOf(cs []collections.Certified) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Update().Key)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestViewForMissing(t *testing.T) {
	w := newDisclosureWorld(t)
	dev := func(name string) string { return collections.DevicePrefix + ct.ID(name).String() }
	host := func(name string) string { return collections.HostPrefix + ct.ID(name).String() }
	// A forged held record: a folder naming bob, certified by a key that
	// was never a server of the chain.
	forged := w.d.Certify(t, "kiosk", ct.Sign(t, "s1", ct.MustPut(t, collections.Folder{
		ID: "daves", Name: "x", Owner: "dave", Server: ct.ID("s1").String(),
		Members: map[string]collections.Right{"dave": collections.RightOwner, "bob": collections.RightReadOnly}}), 99, 999))

	tests := []struct {
		name string
		user string
		held []collections.Certified
		want []string
	}{
		{
			name: "bob sees the servers, himself, his folders, their owners and members, his devices and theirs",
			user: "bob",
			want: []string{dev("ann-laptop"), dev("bob-laptop"), dev("carol-laptop"), "folder/bobs", "folder/carols", "folder/shared", host("s3"), "user/ann", "user/bob", "user/carol"},
		},
		{
			name: "bob proving he held gone learns its current record",
			user: "bob", held: []collections.Certified{w.goneOld},
			want: []string{dev("ann-laptop"), dev("bob-laptop"), dev("carol-laptop"), "folder/bobs", "folder/carols", "folder/gone", "folder/shared", host("s3"), "user/ann", "user/bob", "user/carol"},
		},
		{
			name: "bob asking for a folder he is not in gets nothing more",
			user: "bob", held: []collections.Certified{w.daves},
			want: []string{dev("ann-laptop"), dev("bob-laptop"), dev("carol-laptop"), "folder/bobs", "folder/carols", "folder/shared", host("s3"), "user/ann", "user/bob", "user/carol"},
		},
		{
			name: "bob with a forged proof gets nothing more",
			user: "bob", held: []collections.Certified{forged},
			want: []string{dev("ann-laptop"), dev("bob-laptop"), dev("carol-laptop"), "folder/bobs", "folder/carols", "folder/shared", host("s3"), "user/ann", "user/bob", "user/carol"},
		},
		{
			name: "dave sees only his folder, its member ann and her device",
			user: "dave",
			want: []string{dev("ann-laptop"), "folder/daves", host("s3"), "user/ann", "user/dave"},
		},
		{
			name: "ann",
			user: "ann",
			want: []string{dev("ann-laptop"), dev("bob-laptop"), "folder/daves", "folder/gone", "folder/shared", host("s3"), "user/ann", "user/bob", "user/dave"},
		},
		{
			name: "an unknown user sees the servers only",
			user: "zoe",
			want: []string{host("s3")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := keysOf(w.st.ViewFor(tc.user, tc.held).Missing(nil))
			if diff := cmp.Diff(slices.Sorted(slices.Values(tc.want)), got); diff != "" {
				t.Errorf("ViewFor(%s).Missing keys (-want +got):\n%s", tc.user, diff)
			}
		})
	}
}

// A device's state made of its view verifies, and holds nothing else; a
// second request with its summary gets nothing again.
func TestViewForReplica(t *testing.T) {
	w := newDisclosureWorld(t)
	agent := w.d.State(t)
	view := w.st.ViewFor("bob", nil)
	for _, c := range view.Missing(agent.Summary()) {
		v, err := agent.Verify(c, collections.VerifyOptions{History: true})
		if err != nil {
			t.Fatalf("Verify(%s): %v", c.Update().Key, err)
		}
		agent.Apply(v)
	}
	if got := view.Missing(agent.Summary()); len(got) != 0 {
		t.Errorf("second Missing = %v; want nothing", keysOf(got))
	}
	if _, ok := agent.Folder("daves"); ok {
		t.Errorf("bob's replica holds folder daves")
	}
	if _, ok := agent.User("dave"); ok {
		t.Errorf("bob's replica holds user dave")
	}
	if n := agent.Count(collections.Report); n != 0 {
		t.Errorf("bob's replica holds %d reports", n)
	}
	if got, want := keysOf(agent.Held("bob")), []string{collections.DevicePrefix + ct.ID("bob-laptop").String(), "folder/bobs", "folder/carols", "folder/shared"}; !slices.Equal(got, want) {
		t.Errorf("Held(bob) = %v; want %v", got, want)
	}

	// Live: dave shares his folder with bob. The feed brings the user
	// records of its owner and its other member first, so the folder
	// verifies against the full rules, and their devices after it.
	c := w.d.Commit(t, w.st, "s1", ct.MustPut(t, collections.Folder{ID: "daves", Name: "daves files", Owner: "dave", Server: ct.ID("s1").String(),
		Members: map[string]collections.Right{"dave": collections.RightOwner, "ann": collections.RightReadOnly, "bob": collections.RightReadOnly}}))
	feed := w.st.ViewFor("bob", nil).Feed(c, map[string]bool{"dave": true, "ann": true})
	if got, want := keysOf(feed), []string{collections.DevicePrefix + ct.ID("ann-laptop").String(), "folder/daves", "user/ann", "user/dave"}; !slices.Equal(got, want) {
		t.Fatalf("Feed(daves shared with bob) = %v; want %v", got, want)
	}
	for _, c := range feed {
		if v := ct.Deliver(t, agent, c); v.Outcome != collections.Accepted && !(v.Outcome == collections.Duplicate && c.Update().Key != "folder/daves") {
			t.Fatalf("Deliver(%s) = %v", c.Update().Key, v.Outcome)
		}
	}
	// dave unshares it: bob, a member before, is sent the change; carol,
	// never a member, is not.
	c = w.d.Commit(t, w.st, "s1", ct.MustPut(t, collections.Folder{ID: "daves", Name: "daves files", Owner: "dave", Server: ct.ID("s1").String(),
		Members: map[string]collections.Right{"dave": collections.RightOwner}}))
	was := map[string]bool{"dave": true, "ann": true, "bob": true}
	if got := keysOf(w.st.ViewFor("bob", nil).Feed(c, was)); !slices.Equal(got, []string{"folder/daves"}) {
		t.Errorf("Feed(daves unshared) for bob = %v; want [folder/daves]", got)
	}
	if got := w.st.ViewFor("carol", nil).Feed(c, was); len(got) != 0 {
		t.Errorf("Feed(daves unshared) for carol = %v; want nothing", keysOf(got))
	}
	// Reports and other users' records are never fed.
	r := w.d.Commit(t, w.st, "s2", ct.MustPut(t, collections.ReportRecord{ID: "r2", Author: ct.ID("s2").String(), Kind: "usage"}))
	if got := w.st.ViewFor("bob", nil).Feed(r, nil); len(got) != 0 {
		t.Errorf("Feed(report) = %v; want nothing", keysOf(got))
	}
	u := w.d.Commit(t, w.st, w.d.Master(), ct.MustPut(t, collections.User{Name: "eve", HomeServer: ct.ID("s2").String()}))
	if got := w.st.ViewFor("bob", nil).Feed(u, nil); len(got) != 0 {
		t.Errorf("Feed(user eve) = %v; want nothing", keysOf(got))
	}
}
