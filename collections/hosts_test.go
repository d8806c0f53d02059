package collections_test

import (
	"slices"
	"testing"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
)

// TestFolderHosts: a folder is hosted by its home server and the next
// server of the chain after it, wrapping around; alone in a chain of one,
// or when its home server left the chain.
func TestFolderHosts(t *testing.T) {
	s1, s2, s3, s4 := ct.ID("s1"), ct.ID("s2"), ct.ID("s3"), ct.ID("s4")
	chain := func(ids ...lpeer.ID) collections.Chain {
		var c collections.Chain
		for _, id := range ids {
			c.Servers = append(c.Servers, id.String())
		}
		return c
	}
	on := func(home lpeer.ID) collections.Folder { return collections.Folder{ID: "f", Server: home.String()} }
	for _, tc := range []struct {
		name  string
		chain collections.Chain
		home  lpeer.ID
		want  []lpeer.ID
	}{
		{"alone", chain(s1), s1, []lpeer.ID{s1}},
		{"two", chain(s1, s2), s1, []lpeer.ID{s1, s2}},
		{"two, home last", chain(s1, s2), s2, []lpeer.ID{s2, s1}},
		{"three, middle", chain(s1, s2, s3), s2, []lpeer.ID{s2, s3}},
		{"three, wraps", chain(s1, s2, s3), s3, []lpeer.ID{s3, s1}},
		{"home left the chain", chain(s1, s2, s3), s4, []lpeer.ID{s4}},
	} {
		if got := collections.FolderHosts(tc.chain, on(tc.home)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: hosts %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := collections.FolderHosts(chain(s1, s2), collections.Folder{ID: "f", Server: "bad"}); got != nil {
		t.Errorf("folder with a malformed server: hosts %v, want none", got)
	}
}

// TestStateFolderHosts: the State answers from its chain.
func TestStateFolderHosts(t *testing.T) {
	d := ct.NewTestDomain(t, 3)
	st := d.State(t)
	c := st.Chain()
	if len(c.Servers) != 3 {
		t.Fatalf("chain %v, want 3 servers", c.Servers)
	}
	ids := c.IDs()
	f := collections.Folder{ID: "f", Server: ids[2].String()}
	if got, want := st.FolderHosts(f), []lpeer.ID{ids[2], ids[0]}; !slices.Equal(got, want) {
		t.Fatalf("hosts %v, want %v", got, want)
	}
	if !st.Hosting(f, ids[0]) || st.Hosting(f, ids[1]) {
		t.Fatalf("hosting: replica %v, other %v; want true, false", st.Hosting(f, ids[0]), st.Hosting(f, ids[1]))
	}
}
