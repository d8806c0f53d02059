package peer_test

import (
	"errors"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

func putUser(t testing.TB, c *peertest.Cluster, at int, name string, home int) peer.Receipt {
	t.Helper()
	u, err := collections.Put(collections.User{Name: name, HomeServer: c.Members[home].Key.ID().String()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Submit(at, u)
	if err != nil {
		t.Fatalf("adding user %s at %s: %v", name, c.Members[at].Name, err)
	}
	if r.Queued {
		t.Fatalf("adding user %s at %s: queued, want certified", name, c.Members[at].Name)
	}
	return r
}

func TestReplicationAndFailover(t *testing.T) {
	c := peertest.NewCluster(t, 3, collections.DefaultFailover(3))
	c.StartAll()
	m, e1 := c.WaitMaster(20 * time.Second)
	if m != 0 {
		t.Fatalf("first master is %s, want s1", c.Members[m].Name)
	}
	putUser(t, c, 0, "ann", 1)

	// A slave's Domain change is refused with the master's name.
	u, _ := collections.Put(collections.User{Name: "bob", HomeServer: c.Members[1].Key.ID().String()})
	_, err := c.Submit(1, u)
	var nm *peer.NotMasterError
	if !errors.As(err, &nm) || nm.MasterName != "s1" {
		t.Fatalf("user add at slave: err = %v; want NotMasterError naming s1", err)
	}

	// A slave's Catalog update goes through the master.
	f, _ := collections.Put(collections.Folder{ID: "f1", Name: "docs", Owner: "ann", Server: c.Members[1].Key.ID().String(), Members: map[string]collections.Right{"ann": collections.RightOwner}})
	r, err := c.Submit(1, f)
	if err != nil || r.Queued {
		t.Fatalf("folder create at slave: %v (queued %v)", err, r.Queued)
	}
	c.WaitConverged(10 * time.Second)

	// The master fails: s2 takes over with a higher epoch.
	c.Stop(0)
	m, e2 := c.WaitMaster(15 * time.Second)
	if m != 1 || e2 <= e1 {
		t.Fatalf("after s1 stopped: master %s epoch %d; want s2 above %d", c.Members[m].Name, e2, e1)
	}
	putUser(t, c, 1, "cat", 2)

	// s1 recovers: catches up, takes the role back with a higher epoch.
	c.Start(0)
	c.WaitFor("s1 master again", 20*time.Second, func() bool {
		st := c.Status(0)
		return st.Role == "master" && st.Epoch > e2
	})
	c.WaitConverged(10 * time.Second)
	for _, i := range c.Running() {
		st := c.State(i)
		for _, name := range []string{"ann", "cat"} {
			if _, ok := st.User(name); !ok {
				t.Errorf("%s lacks user %s after handback", c.Members[i].Name, name)
			}
		}
		if _, ok := st.Folder("f1"); !ok {
			t.Errorf("%s lacks folder f1", c.Members[i].Name)
		}
	}
}
