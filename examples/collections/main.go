// Command collections shows baton's replicated collections merging
// deterministically, fully offline: two servers found a domain, write
// users, folders and a report (including a conflicting write made during a
// split brain, and a delete), and two replicas that receive the certified
// updates in different orders end with identical digests.
//
//	go run ./examples/collections
package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "collections:", err)
		os.Exit(1)
	}
}

// key derives a fixed demo key from a name, so the output is reproducible.
// Real hosts use identity.Generate and key files.
func key(name string) *identity.PrivateKey {
	seed := sha256.Sum256([]byte("baton example key\x00" + name))
	k, err := identity.PrivateKeyFromSeed(seed[:])
	if err != nil {
		panic(err)
	}
	return k
}

// author signs updates for one host, numbering them per collection.
type author struct {
	key  *identity.PrivateKey
	seqs map[collections.Kind]uint64
}

func (a *author) sign(v collections.Value, del bool, clock uint64, now time.Time) (collections.SignedUpdate, error) {
	var u collections.Update
	if del {
		u = collections.Delete(v.Collection(), v.Key())
	} else {
		var err error
		if u, err = collections.Put(v); err != nil {
			return collections.SignedUpdate{}, err
		}
	}
	a.seqs[u.Collection]++
	u.Author, u.Seq, u.Clock, u.Issued = a.key.ID().String(), a.seqs[u.Collection], clock, now.UnixNano()
	return collections.SignUpdate(a.key, u)
}

func run(w io.Writer) error {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	s1, s2 := &author{key("s1"), map[collections.Kind]uint64{}}, &author{key("s2"), map[collections.Kind]uint64{}}
	g, err := found(w, s1, s2, now)
	if err != nil {
		return err
	}
	certified, err := write(w, s1, s2, now)
	if err != nil {
		return err
	}
	states, err := replicate(w, g, certified)
	if err != nil {
		return err
	}
	return compare(w, states, s2.key.ID().String())
}

// found is step 1: s1 signs a genesis listing both servers.
func found(w io.Writer, s1, s2 *author, now time.Time) (collections.Genesis, error) {
	var hosts [][]byte
	for i, a := range []*author{s1, s2} {
		env, err := identity.SignHostRecord(a.key, identity.HostRecord{
			Name: fmt.Sprintf("s%d", i+1), PublicKey: a.key.Public(), Role: identity.RoleServer, Issued: now.UnixNano(),
			PrivateAddrs: []string{fmt.Sprintf("/ip4/10.0.0.%d/tcp/7400", i+1)},
		})
		if err != nil {
			return collections.Genesis{}, err
		}
		b, err := env.Marshal()
		if err != nil {
			return collections.Genesis{}, err
		}
		hosts = append(hosts, b)
	}
	chain := collections.Chain{Servers: []string{s1.key.ID().String(), s2.key.ID().String()}}
	raw, err := collections.NewGenesis(s1.key, collections.DomainInfo{Name: "example", Settings: collections.DefaultFailover(2)},
		chain, hosts, now)
	if err != nil {
		return collections.Genesis{}, err
	}
	g, err := collections.OpenGenesis(raw)
	if err != nil {
		return collections.Genesis{}, err
	}
	fmt.Fprintf(w, "genesis %x: domain %q, chain s1 -> s2\n", g.Hash(), g.Domain.Name)
	return g, nil
}

// write is step 2: updates from both servers. s1 is master in epoch 1;
// during a split brain s2 also acts as master, in epoch 2, and both write
// user carol at the same clock: the greater author wins the tie.
func write(w io.Writer, s1, s2 *author, now time.Time) ([]collections.Certified, error) {
	id1, id2 := s1.key.ID().String(), s2.key.ID().String()
	type step struct {
		by     *author
		master *author
		epoch  uint64
		clock  uint64
		v      collections.Value
		del    bool
		what   string
	}
	folder := func(id, name, owner, server string, members map[string]collections.Right) collections.Folder {
		return collections.Folder{ID: id, Name: name, Owner: owner, Server: server, Members: members}
	}
	steps := []step{
		{s1, s1, 1, 1, collections.User{Name: "ann", HomeServer: id1}, false, "s1 adds user ann (home s1)"},
		{s1, s1, 1, 2, collections.User{Name: "bob", HomeServer: id2}, false, "s1 adds user bob (home s2)"},
		{s1, s1, 1, 3, collections.User{Name: "dave", HomeServer: id2}, false, "s1 adds user dave (home s2)"},
		{s2, s1, 1, 4, folder("photos", "Photos", "bob", id2, map[string]collections.Right{"bob": collections.RightOwner}), false, "s2 creates bob's folder photos"},
		{s1, s1, 1, 5, folder("docs", "Documents", "ann", id1, map[string]collections.Right{"ann": collections.RightOwner, "bob": collections.RightReadWrite}), false, "s1 creates ann's folder docs, shared rw with bob"},
		{s2, s1, 1, 6, collections.ReportRecord{ID: "usage-1", Author: id2, Kind: "usage", Created: now.UnixNano(), Content: []byte("2 users, 1 folder")}, false, "s2 files report usage-1"},
		{s1, s1, 1, 7, collections.User{Name: "carol", HomeServer: id1}, false, "s1 (epoch 1) adds carol with home s1"},
		{s2, s2, 2, 7, collections.User{Name: "carol", HomeServer: id2}, false, "s2 (epoch 2) adds carol with home s2: conflict"},
		{s2, s2, 2, 8, folder("photos", "Photos", "bob", id2, map[string]collections.Right{"bob": collections.RightOwner, "ann": collections.RightReadOnly}), false, "s2 shares photos read-only with ann"},
		{s2, s2, 2, 9, collections.User{Name: "dave", HomeServer: id2}, true, "s2 (epoch 2) removes user dave"},
		{s2, s2, 2, 10, collections.ReportRecord{ID: "usage-1"}, true, "s2 deletes report usage-1"},
	}
	var certified []collections.Certified
	masterSeq := map[*author]uint64{}
	for _, st := range steps {
		su, err := st.by.sign(st.v, st.del, st.clock, now.Add(time.Duration(st.clock)*time.Minute))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.what, err)
		}
		masterSeq[st.master]++
		c, err := collections.Certify(st.master.key, su, st.epoch, masterSeq[st.master])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.what, err)
		}
		certified = append(certified, c)
		fmt.Fprintf(w, "  update %2d: %s\n", len(certified), st.what)
	}
	return certified, nil
}

// replicate is step 3: two replicas receive the certified bytes in
// different orders, as anti-entropy after the split heals delivers them:
// each verifies (signatures, chain, write rules for historical records)
// and applies.
func replicate(w io.Writer, g collections.Genesis, certified []collections.Certified) (map[string]*collections.State, error) {
	orderA := make([]int, len(certified))
	for i := range orderA {
		orderA[i] = i
	}
	orderB := slices.Clone(orderA)
	slices.Reverse(orderB)
	orderB[0], orderB[3] = orderB[3], orderB[0]

	replicas := map[string][]int{"A": orderA, "B": orderB}
	states := map[string]*collections.State{}
	for _, name := range []string{"A", "B"} {
		st, err := collections.NewState(g)
		if err != nil {
			return nil, err
		}
		counts := map[collections.Outcome]int{}
		for _, i := range replicas[name] {
			c, err := collections.UnmarshalCertified(certified[i].Marshal())
			if err != nil {
				return nil, err
			}
			v, err := st.Verify(c, collections.VerifyOptions{History: true})
			if err != nil {
				return nil, fmt.Errorf("replica %s, update %d: %w", name, i+1, err)
			}
			counts[st.Apply(v).Outcome]++
		}
		states[name] = st
		fmt.Fprintf(w, "replica %s applied updates in order %v: %d accepted, %d stale\n",
			name, plusOne(replicas[name]), counts[collections.Accepted], counts[collections.Stale])
	}
	return states, nil
}

// compare is step 4: the replicas' digests, and who won the conflict
// (id2 is s2's ID).
func compare(w io.Writer, states map[string]*collections.State, id2 string) error {
	identical := true
	for _, k := range collections.Kinds {
		da, db := states["A"].Digest(k), states["B"].Digest(k)
		fmt.Fprintf(w, "%-8s A %x\n%-8s B %x\n", k, da, "", db)
		identical = identical && da == db
	}
	a := states["A"]
	carol, _ := a.User("carol")
	winner := "s1"
	if carol.HomeServer == id2 {
		winner = "s2"
	}
	_, daveLive := a.User("dave")
	fmt.Fprintf(w, "carol's home server: %s (tie at clock 7, greater author wins); dave present: %v; reports: %d; folders: %d\n",
		winner, daveLive, a.Count(collections.Report), a.Count(collections.Catalog))
	if !identical {
		fmt.Fprintln(w, "DIFFERENT")
		return fmt.Errorf("replicas diverged")
	}
	fmt.Fprintln(w, "identical")
	return nil
}

func plusOne(order []int) []int {
	out := make([]int, len(order))
	for i, v := range order {
		out[i] = v + 1
	}
	return out
}
