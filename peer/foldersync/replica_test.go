package foldersync

import (
	"slices"
	"testing"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer/foldersync/foldersynctest"
)

// TestReplicaRoles: the replica of a folder is a hosting server as its home
// server is (its changes are taken, it is announced to, it takes the home
// server's changes); a server of the domain that hosts neither is nobody
// to the folder; a read-only member's device announces to nobody.
func TestReplicaRoles(t *testing.T) {
	id := func(name string) lpeer.ID { return identitytest.Key("replica-" + name).ID() }
	home, replica, other := id("home"), id("replica"), id("other")
	ann, bob, cy := id("ann"), id("bob"), id("cy")
	a := &foldersynctest.Access{}
	for _, s := range []lpeer.ID{home, replica, other} {
		a.SetServer(s)
	}
	a.SetUser(ann, "ann")
	a.SetUser(bob, "bob")
	a.SetUser(cy, "cy")
	fo := collections.Folder{ID: "f", Name: "F", Owner: "ann", Server: home.String(),
		Members: map[string]collections.Right{"ann": collections.RightOwner, "bob": collections.RightReadWrite, "cy": collections.RightReadOnly}}
	a.SetFolder(fo)
	a.SetReplicas("f", replica)

	for _, tc := range []struct {
		p    lpeer.ID
		want peerRole
	}{{home, roleServer}, {replica, roleServer}, {other, roleNone}, {ann, roleWriter}, {cy, roleReader}} {
		if got := roleOf(a, fo, tc.p); got != tc.want {
			t.Errorf("role of %s: %v, want %v", tc.p, got, tc.want)
		}
	}
	if !takesFrom(a, fo, ann, replica) || !takesFrom(a, fo, home, replica) || !takesFrom(a, fo, replica, home) {
		t.Error("the replica's changes, or the home server's on the replica, are not taken")
	}
	if takesFrom(a, fo, ann, other) {
		t.Error("a server hosting neither is taken from")
	}
	connected := []lpeer.ID{home, replica, other, ann, bob, cy}
	for _, tc := range []struct {
		name string
		from lpeer.ID
		want []lpeer.ID
	}{
		{"ann's device", ann, []lpeer.ID{home, replica, bob, cy}},
		{"the home server", home, []lpeer.ID{replica, ann, bob, cy}},
		{"the replica", replica, []lpeer.ID{home, ann, bob, cy}},
		{"cy's read-only device", cy, nil},
	} {
		if got := announcesTo(a, fo, tc.from, connected); !slices.Equal(got, tc.want) {
			t.Errorf("%s announces to %v, want %v", tc.name, got, tc.want)
		}
	}
	notified := map[lpeer.ID]bool{bob: true, replica: true, home: true}
	if got, want := pullOrder(notified, []lpeer.ID{replica, home}), []lpeer.ID{replica, home, bob}; !slices.Equal(got, want) {
		t.Errorf("pull order %v, want %v (the hosting servers first, in the order given)", got, want)
	}
}
