package collections_test

import (
	"errors"
	"slices"
	"testing"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
)

// names turns the peer IDs of ct hosts back into their names.
func names(ids []lpeer.ID) []string {
	out := []string{}
	for _, id := range ids {
		name := id.String()
		for _, n := range []string{"s1", "s2", "s3", "s4", "s5"} {
			if ct.ID(n) == id {
				name = n
			}
		}
		out = append(out, name)
	}
	return out
}

func chainOf(servers ...string) collections.Chain {
	var c collections.Chain
	for _, s := range servers {
		c.Servers = append(c.Servers, ct.ID(s).String())
	}
	return c
}

func idsOf(servers ...string) []string {
	if servers == nil {
		return nil
	}
	return chainOf(servers...).Servers
}

// TestFolderHostsRule: who hosts a folder, from its recorded hosting set
// and the chain as it is now.
func TestFolderHostsRule(t *testing.T) {
	for _, tc := range []struct {
		what     string
		chain    []string
		home     string
		hosts    []string // recorded; nil: a record from before hosting sets
		replicas int
		want     []string
	}{
		{"old record: the next server", []string{"s1", "s2", "s3"}, "s2", nil, 0, []string{"s2", "s3"}},
		{"old record: wrapping around", []string{"s1", "s2", "s3"}, "s3", nil, 0, []string{"s3", "s1"}},
		{"old record: one server", []string{"s1"}, "s1", nil, 0, []string{"s1"}},
		{"old record: home out of the chain", []string{"s1", "s3"}, "s2", nil, 0, []string{"s2"}},
		{"recorded, all in the chain", []string{"s1", "s2", "s3"}, "s2", []string{"s2", "s3"}, 1, []string{"s2", "s3"}},
		{"recorded out of chain order", []string{"s1", "s2", "s3"}, "s2", []string{"s2", "s1"}, 1, []string{"s2", "s1"}},
		{"home only", []string{"s1", "s2", "s3"}, "s2", []string{"s2"}, 0, []string{"s2"}},
		{"two replicas", []string{"s1", "s2", "s3"}, "s2", []string{"s2", "s3", "s1"}, 2, []string{"s2", "s3", "s1"}},
		{"a replica left: chain order fills", []string{"s1", "s2", "s4"}, "s2", []string{"s2", "s3"}, 1, []string{"s2", "s4"}},
		{"a replica left, the other stays first", []string{"s1", "s2", "s4"}, "s2", []string{"s2", "s3", "s1"}, 2, []string{"s2", "s1", "s4"}},
		{"a left replica came back", []string{"s1", "s2", "s3"}, "s2", []string{"s2", "s3"}, 1, []string{"s2", "s3"}},
		{"a server joined a one-server chain", []string{"s1", "s2"}, "s1", []string{"s1"}, 1, []string{"s1", "s2"}},
		{"more replicas than servers", []string{"s1", "s2"}, "s1", []string{"s1", "s2"}, 3, []string{"s1", "s2"}},
		{"home out of the chain keeps its replicas", []string{"s1", "s3"}, "s2", []string{"s2", "s3"}, 2, []string{"s2", "s3"}},
	} {
		f := collections.Folder{ID: "f1", Server: ct.ID(tc.home).String(), Hosts: idsOf(tc.hosts...)}
		f.Replicas = tc.replicas
		if got := names(collections.FolderHosts(chainOf(tc.chain...), f)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: FolderHosts(chain %v, home %s, hosts %v, %d replicas) = %v; want %v", tc.what, tc.chain, tc.home, tc.hosts, tc.replicas, got, tc.want)
		}
	}
}

// TestReplicasBuilders: the hosting set the builders record on create and
// on a change of Replicas, capped by the chain.
func TestReplicasBuilders(t *testing.T) {
	d, st := annAtS2(t)
	s2 := ct.ID("s2")
	n := func(i int) *int { return &i }
	create := func(id string, p collections.OptionsPatch) collections.Folder {
		t.Helper()
		var f collections.Folder
		commit(t, d, st, "s2", func(st *collections.State) (collections.Update, error) {
			u, got, err := st.CreateFolderWith(id, id, "ann", s2, p)
			f = got
			return u, err
		})
		return f
	}
	set := func(id string, p collections.OptionsPatch) collections.Folder {
		t.Helper()
		var f collections.Folder
		commit(t, d, st, "s2", func(st *collections.State) (collections.Update, error) {
			u, got, err := st.SetFolderOptions(id, "ann", p)
			f = got
			return u, err
		})
		return f
	}
	check := func(what, id string, replicas int, want ...string) {
		t.Helper()
		f, ok := st.Folder(id)
		if !ok {
			t.Fatalf("%s: no folder %s", what, id)
		}
		if f.Replicas != replicas || !slices.Equal(f.Hosts, idsOf(want...)) {
			t.Errorf("%s: folder %s records %d replicas, hosts %v; want %d, %v", what, id, f.Replicas, names(hostIDs(t, f.Hosts)), replicas, want)
		}
		if got := names(st.FolderHosts(f)); !slices.Equal(got, want) {
			t.Errorf("%s: FolderHosts = %v; want %v", what, got, want)
		}
	}

	create("dflt", collections.OptionsPatch{})
	check("created with the default", "dflt", 1, "s2", "s3")
	create("alone", collections.OptionsPatch{Replicas: n(0)})
	check("created with 0 replicas", "alone", 0, "s2")
	p := collections.OptionsPatch{Replicas: n(5)}
	f := create("many", p)
	check("created with 5 replicas", "many", 2, "s2", "s3", "s1")
	if note := p.CappedNote(f); note == "" {
		t.Errorf("CappedNote(5 replicas asked, %d got) is empty", f.Replicas)
	}
	if note := (collections.OptionsPatch{Replicas: n(2)}).CappedNote(f); note != "" {
		t.Errorf("CappedNote(2 asked, 2 got) = %q; want none", note)
	}

	set("dflt", collections.OptionsPatch{Replicas: n(2)})
	check("set to 2", "dflt", 2, "s2", "s3", "s1")
	set("dflt", collections.OptionsPatch{Replicas: n(1)})
	check("set back to 1", "dflt", 1, "s2", "s3")
	keep := "all:2d"
	set("dflt", collections.OptionsPatch{Keep: &keep})
	check("another option set", "dflt", 1, "s2", "s3")
	if f, _ := st.Folder("dflt"); f.Keep != keep {
		t.Errorf("Keep = %q; want %q", f.Keep, keep)
	}
	set("dflt", collections.OptionsPatch{Replicas: n(0)})
	check("set to 0", "dflt", 0, "s2")
	if f, _ := st.Folder("dflt"); f.Keep != keep {
		t.Errorf("Keep after setting replicas = %q; want %q (left as it was)", f.Keep, keep)
	}

	for _, tc := range []struct {
		what string
		p    collections.OptionsPatch
		is   error
	}{
		{"negative", collections.OptionsPatch{Replicas: n(-1)}, collections.ErrMalformed},
		{"nothing", collections.OptionsPatch{}, collections.ErrMalformed},
		{"the same", collections.OptionsPatch{Replicas: n(0)}, collections.ErrExists},
	} {
		if _, _, err := st.SetFolderOptions("dflt", "ann", tc.p); !errors.Is(err, tc.is) {
			t.Errorf("SetFolderOptions(%s) = %v; want %v", tc.what, err, tc.is)
		}
	}
}

// TestFolderRecordWithoutHosts: a record from before hosting sets keeps
// being hosted as before, and records its set the first time its options
// are set.
func TestFolderRecordWithoutHosts(t *testing.T) {
	f := goldenFolder(t, "update")
	if f.Hosts != nil || f.Replicas != 0 {
		t.Fatalf("the stored record decodes with hosts %v, %d replicas; want none", f.Hosts, f.Replicas)
	}
	if got := names(collections.FolderHosts(chainOf("s1", "s2", "s3"), f)); !slices.Equal(got, []string{"s2", "s3"}) {
		t.Errorf("FolderHosts(old record) = %v; want [s2 s3]", got)
	}

	d, st := annAtS2(t)
	s2 := ct.ID("s2")
	d.Commit(t, st, "s2", mustPut(collections.Folder{ID: "f1", Name: "Photos", Owner: "ann", Server: s2.String(),
		Members: map[string]collections.Right{"ann": collections.RightOwner}, IDs: map[string]string{"ann": userID(1)}}))
	yes := true
	commit(t, d, st, "s2", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.SetFolderOptions("f1", "ann", collections.OptionsPatch{OutsideSymlinks: &yes})
		return u, err
	})
	got, _ := st.Folder("f1")
	if got.Replicas != collections.DefaultReplicas || !slices.Equal(got.Hosts, idsOf("s2", "s3")) || !got.OutsideSymlinks {
		t.Errorf("old record after an option set: %d replicas, hosts %v, outside symlinks %v; want %d, [s2 s3], true",
			got.Replicas, names(hostIDs(t, got.Hosts)), got.OutsideSymlinks, collections.DefaultReplicas)
	}
}

// TestFolderHostsValidate: a hosting set must start with the home server,
// name each server once and fit Replicas.
func TestFolderHostsValidate(t *testing.T) {
	base := collections.Folder{ID: "f1", Name: "Photos", Owner: "ann", Server: ct.ID("s2").String(),
		Members: map[string]collections.Right{"ann": collections.RightOwner}}
	for _, tc := range []struct {
		what     string
		hosts    []string
		replicas int
		ok       bool
	}{
		{"none", nil, 0, true},
		{"home only", idsOf("s2"), 0, true},
		{"home and one", idsOf("s2", "s3"), 1, true},
		{"fewer than replicas", idsOf("s2"), 2, true},
		{"empty", []string{}, 0, false},
		{"not the home first", idsOf("s3", "s2"), 1, false},
		{"twice", idsOf("s2", "s3", "s3"), 2, false},
		{"more than replicas", idsOf("s2", "s3"), 0, false},
		{"negative replicas", nil, -1, false},
		{"bad ID", []string{ct.ID("s2").String(), "nope"}, 1, false},
	} {
		f := base
		f.Hosts, f.Replicas = tc.hosts, tc.replicas
		if err := f.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%s) = %v; want ok %v", tc.what, err, tc.ok)
		}
	}
}

func hostIDs(t *testing.T, ss []string) []lpeer.ID {
	t.Helper()
	var out []lpeer.ID
	for _, s := range ss {
		id, err := lpeer.Decode(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// annAtS2 is a domain of three servers with the user ann, homed at s2.
func annAtS2(t *testing.T) (*ct.Domain, *collections.State) {
	t.Helper()
	d := ct.NewTestDomain(t, 3)
	st := d.State(t)
	commit(t, d, st, "s1", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.AddUser("ann", ct.ID("s2"), userID(1))
		return u, err
	})
	return d, st
}

// goldenFolder is the folder record of the stored update name.
func goldenFolder(t *testing.T, name string) collections.Folder {
	t.Helper()
	u, err := collections.UnmarshalUpdate(readGolden(t, name))
	if err != nil {
		t.Fatal(err)
	}
	v, err := u.Decode()
	if err != nil {
		t.Fatal(err)
	}
	f, ok := v.(collections.Folder)
	if !ok {
		t.Fatalf("stored update %s holds a %T, not a folder", name, v)
	}
	return f
}
