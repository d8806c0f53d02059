package collections_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
)

// ruleBase is a three-server domain (s1 master, s2, s3; spare is a server
// outside the chain; agent is an agent) with users ann (home s2) and bob
// (home s1), folder fs2 hosted by s2, report rs2 by s2 and ann's device d1
// (certified by s2).
func ruleBase(t *testing.T) (*ct.Domain, *collections.State) {
	t.Helper()
	d := ct.NewTestDomain(t, 3)
	st := d.State(t)
	d.Commit(t, st, "s1", ct.MustPut(t, collections.User{Name: "ann", HomeServer: ct.ID("s2").String()}))
	d.Commit(t, st, "s1", ct.MustPut(t, collections.User{Name: "bob", HomeServer: ct.ID("s1").String()}))
	d.Commit(t, st, "s2", ct.MustPut(t, folder("fs2", "ann", "s2")))
	d.Commit(t, st, "s2", ct.MustPut(t, report("rs2", "s2", "first")))
	d.Commit(t, st, "s2", ct.MustPut(t, deviceRecord(t, deviceCert("ann", "d1", "s2"), "s2", false)))
	return d, st
}

func folder(id, owner, server string, members ...string) collections.Folder {
	f := collections.Folder{ID: id, Name: "Folder " + id, Owner: owner, Server: ct.ID(server).String(),
		Members: map[string]collections.Right{owner: collections.RightOwner}}
	for _, m := range members {
		f.Members[m] = collections.RightReadWrite
	}
	return f
}

func report(id, author, content string) collections.ReportRecord {
	return collections.ReportRecord{ID: id, Author: ct.ID(author).String(), Kind: "usage", Created: ct.Created.UnixNano(), Content: []byte(content)}
}

// TestWriteRules is the write-rule matrix: every collection, author role and
// operation, certified by the master, through both VerifyProposal (the
// master's check) and Verify (every receiver's).
func TestWriteRules(t *testing.T) {
	roles := []struct {
		role, host string
	}{
		{"master", "s1"},
		{"slave", "s2"},
		{"server not in chain", "spare"},
		{"agent", "agent"},
		{"unknown key", "stranger"},
	}
	type op struct {
		name   string
		update func(host string) collections.Update
		// allowed lists the roles that may do it; others get ErrUnauthorized.
		allowed map[string]bool
	}
	ops := []op{
		{"domain/put new", func(h string) collections.Update {
			return mustPut(collections.User{Name: "carol", HomeServer: ct.ID("s2").String()})
		}, map[string]bool{"master": true}},
		{"domain/update existing", func(h string) collections.Update {
			return mustPut(collections.User{Name: "ann", HomeServer: ct.ID("s3").String()})
		}, map[string]bool{"master": true}},
		{"domain/delete", func(h string) collections.Update {
			return collections.Delete(collections.Domain, collections.UserPrefix+"ann")
		}, map[string]bool{"master": true}},
		{"catalog/put new", func(h string) collections.Update {
			owner := "ann" // home s2
			if h == "s1" {
				owner = "bob" // home s1
			}
			return mustPut(folder("new", owner, h))
		}, map[string]bool{"master": true, "slave": true}},
		{"catalog/update existing", func(h string) collections.Update {
			return mustPut(folder("fs2", "ann", h, "bob"))
		}, map[string]bool{"slave": true}},
		{"catalog/delete", func(h string) collections.Update {
			return collections.Delete(collections.Catalog, collections.FolderPrefix+"fs2")
		}, map[string]bool{"slave": true}},
		{"device/put new", func(h string) collections.Update {
			user := "ann" // home s2
			if h == "s1" {
				user = "bob" // home s1
			}
			return mustPut(deviceRecord(t, deviceCert(user, "d2", h), h, false))
		}, map[string]bool{"master": true, "slave": true}},
		{"device/revoke existing", func(h string) collections.Update {
			return mustPut(deviceRecord(t, deviceCert("ann", "d1", h), h, true))
		}, map[string]bool{"slave": true}},
		{"device/delete", func(h string) collections.Update {
			return collections.Delete(collections.Catalog, collections.DevicePrefix+ct.ID("d1").String())
		}, map[string]bool{"slave": true}},
		{"report/put new", func(h string) collections.Update {
			return mustPut(report("new", h, "x"))
		}, map[string]bool{"master": true, "slave": true}},
		{"report/update existing", func(h string) collections.Update {
			return mustPut(report("rs2", h, "second"))
		}, map[string]bool{"slave": true}},
		{"report/delete", func(h string) collections.Update {
			return collections.Delete(collections.Report, collections.ReportPrefix+"rs2")
		}, map[string]bool{"slave": true}},
	}
	d, base := ruleBase(t)
	for _, o := range ops {
		for _, r := range roles {
			t.Run(fmt.Sprintf("%s by %s", o.name, r.role), func(t *testing.T) {
				st := base.Clone()
				u := o.update(r.host)
				su := ct.Sign(t, r.host, u, st.NextSeq(ct.ID(r.host), u.Collection), st.NextClock())
				c := d.Certify(t, "s1", su)
				checkRule(t, st, c, o.allowed[r.role])
			})
		}
	}
}

// TestWriteRulesExtra covers the rules the matrix does not reach.
func TestWriteRulesExtra(t *testing.T) {
	tests := []struct {
		name   string
		author string
		u      func() collections.Update
		ok     bool
		want   error // when !ok; default ErrUnauthorized
	}{
		{"folder for a user of another home server", "s2", func() collections.Update { return mustPut(folder("x", "bob", "s2")) }, false, nil},
		{"folder naming another hosting server", "s2", func() collections.Update { return mustPut(folder("x", "ann", "s1")) }, false, nil},
		{"folder for an unknown user", "s2", func() collections.Update { return mustPut(folder("x", "zed", "s2")) }, false, nil},
		{"delete of a folder that does not exist", "s2", func() collections.Update {
			return collections.Delete(collections.Catalog, collections.FolderPrefix+"nope")
		}, false, nil},
		{"report naming another author", "s2", func() collections.Update { return mustPut(report("x", "s3", "c")) }, false, nil},
		{"user homed outside the chain", "s1", func() collections.Update {
			return mustPut(collections.User{Name: "zed", HomeServer: ct.ID("spare").String()})
		}, false, nil},
		{"chain without its author", "s1", func() collections.Update {
			return mustPut(collections.Chain{Servers: []string{ct.ID("s2").String(), ct.ID("s3").String()}})
		}, false, nil},
		{"chain with an agent", "s1", func() collections.Update {
			return mustPut(collections.Chain{Servers: []string{ct.ID("s1").String(), ct.ID("agent").String()}})
		}, false, nil},
		{"chain adding a spare server", "s1", func() collections.Update {
			return mustPut(collections.Chain{Servers: []string{ct.ID("s1").String(), ct.ID("s2").String(), ct.ID("s3").String(), ct.ID("spare").String()}})
		}, true, nil},
		{"delete of a chain server's host record", "s1", func() collections.Update {
			return collections.Delete(collections.Domain, collections.HostPrefix+ct.ID("s2").String())
		}, false, nil},
		{"delete of a spare's host record", "s1", func() collections.Update {
			return collections.Delete(collections.Domain, collections.HostPrefix+ct.ID("spare").String())
		}, true, nil},
		{"plain chain rule with three servers", "s1", func() collections.Update {
			return mustPut(collections.DomainInfo{Name: "test", Settings: collections.DefaultFailover(2)})
		}, false, collections.ErrMalformed},
	}
	d, base := ruleBase(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := base.Clone()
			u := tc.u()
			su := ct.Sign(t, tc.author, u, st.NextSeq(ct.ID(tc.author), u.Collection), st.NextClock())
			c := d.Certify(t, "s1", su)
			if tc.want != nil {
				checkRefused(t, st, c, tc.want)
				return
			}
			checkRule(t, st, c, tc.ok)
		})
	}
}

// TestDomainNeedsCertifyingAuthor: a Domain record authored by the master
// but certified by another chain server is refused, and one authored and
// certified by that other server (a new master after failover) is accepted.
func TestDomainNeedsCertifyingAuthor(t *testing.T) {
	d, base := ruleBase(t)
	u := mustPut(collections.User{Name: "carol", HomeServer: ct.ID("s2").String()})

	st := base.Clone()
	c := d.Certify(t, "s2", ct.Sign(t, "s1", u, st.NextSeq(ct.ID("s1"), collections.Domain), st.NextClock()))
	checkRule(t, st, c, false)

	c = d.Certify(t, "s2", ct.Sign(t, "s2", u, st.NextSeq(ct.ID("s2"), collections.Domain), st.NextClock()))
	checkRule(t, st, c, true)
}

func checkRule(t *testing.T, st *collections.State, c collections.Certified, ok bool) {
	t.Helper()
	want := collections.ErrUnauthorized
	if !ok {
		checkRefused(t, st, c, want)
		return
	}
	before := st.Digest(c.Update().Collection)
	_, perr := st.VerifyProposal(c.Signed(), c.Master())
	v, err := st.Verify(c, collections.VerifyOptions{})
	if err != nil || perr != nil {
		t.Fatalf("Verify = %v, VerifyProposal = %v; want both to succeed", err, perr)
	}
	if got := st.Apply(v); got.Outcome != collections.Accepted {
		t.Fatalf("Apply = %v (%v); want accepted", got.Outcome, got.Err)
	}
	if after := st.Digest(c.Update().Collection); after == before {
		t.Fatalf("digest unchanged by an accepted update")
	}
}

func mustPut(v collections.Value) collections.Update {
	u, err := collections.Put(v)
	if err != nil {
		panic(err)
	}
	return u
}

// checkRefused checks that both VerifyProposal and Verify refuse c with want.
func checkRefused(t *testing.T, st *collections.State, c collections.Certified, want error) {
	t.Helper()
	before := st.Digest(c.Update().Collection)
	_, perr := st.VerifyProposal(c.Signed(), c.Master())
	_, err := st.Verify(c, collections.VerifyOptions{})
	if !errors.Is(err, want) || !errors.Is(perr, want) {
		t.Fatalf("Verify = %v, VerifyProposal = %v; want %v from both", err, perr, want)
	}
	if after := st.Digest(c.Update().Collection); after != before {
		t.Fatalf("digest changed by a refused update")
	}
}
