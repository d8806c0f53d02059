package collections_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
)

func userID(n byte) string {
	return strings.Repeat(string("0123456789abcdef"[n%16]), collections.UserIDSize)
}

// commit builds a change with build against st and commits it as author,
// failing the test if building fails.
func commit(t *testing.T, d *ct.Domain, st *collections.State, author string, build func(*collections.State) (collections.Update, error)) collections.Certified {
	t.Helper()
	u, err := build(st)
	if err != nil {
		t.Fatalf("building the change: %v", err)
	}
	return d.Commit(t, st, author, u)
}

// refusedInLog reports the error of u by author, certified as the next log
// entry, against st.
func refusedInLog(t *testing.T, d *ct.Domain, st *collections.State, author string, u collections.Update) error {
	t.Helper()
	su := ct.Sign(t, author, u, st.NextSeq(ct.ID(author), u.Collection), st.NextClock())
	_, err := st.Verify(d.Certify(t, "s1", su), collections.VerifyOptions{Log: true})
	return err
}

// TestNameReuseIsANewIdentity: a removed user's devices and folder grants
// stay void when another user is given the name; the old identity cannot
// be brought back; a removed owner's folders go to the successor or are
// archived.
func TestNameReuseIsANewIdentity(t *testing.T) {
	d := ct.NewTestDomain(t, 3)
	st := d.State(t)
	s2 := ct.ID("s2")
	for i, name := range []string{"ann", "bob", "cy"} {
		commit(t, d, st, "s1", func(st *collections.State) (collections.Update, error) {
			u, _, err := st.AddUser(name, s2, userID(byte(i+1)))
			return u, err
		})
	}
	commit(t, d, st, "s2", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.CreateFolder("f1", "Photos", "ann", s2)
		return u, err
	})
	commit(t, d, st, "s2", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.Share("f1", "ann", "bob", collections.RightReadWrite)
		return u, err
	})
	stale, _ := st.FolderRecord("f1")
	laptop := deviceCert("bob", "d1", "s2")
	laptop.UserID = userID(2)
	d.Commit(t, st, "s2", ct.MustPut(t, deviceRecord(t, laptop, "s2", false)))
	during := ct.Created.Add(time.Hour)
	if _, ok := st.ValidDevice(ct.ID("d1"), during); !ok {
		t.Fatalf("bob's laptop is not valid before the removal")
	}

	// bob removed, then a new bob added.
	commit(t, d, st, "s1", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.RemoveUser("bob", "")
		return u, err
	})
	if _, ok := st.ValidDevice(ct.ID("d1"), during); ok {
		t.Errorf("bob's laptop valid after bob was removed")
	}
	commit(t, d, st, "s1", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.AddUser("bob", s2, userID(7))
		return u, err
	})
	if u, ok := st.User("bob"); !ok || u.ID != userID(7) || len(u.Former) != 1 || u.Former[0].ID != userID(2) {
		t.Fatalf("User(bob) = %+v, %v; want the new ID, remembering the old", u, ok)
	}
	if user, ok := st.ValidDevice(ct.ID("d1"), during); ok {
		t.Errorf("the old bob's laptop is valid for the new bob (%s)", user)
	}
	if f, _ := st.Folder("f1"); f.Members["bob"] != "" {
		t.Errorf("the new bob is a member of the old bob's folder: %v", f.Members)
	}

	// The old identity cannot come back, nor the stale grant be written.
	resurrect := ct.MustPut(t, collections.User{Name: "bob", HomeServer: s2.String(), ID: userID(2)})
	if err := refusedInLog(t, d, st, "s1", resurrect); !errors.Is(err, collections.ErrUnauthorized) {
		t.Errorf("giving bob his old ID back = %v; want ErrUnauthorized", err)
	}
	stale.Members["cy"] = collections.RightReadOnly
	stale.IDs["cy"] = userID(3)
	if err := refusedInLog(t, d, st, "s2", ct.MustPut(t, stale)); !errors.Is(err, collections.ErrUnauthorized) {
		t.Errorf("writing the folder with the old bob's grant = %v; want ErrUnauthorized", err)
	}
	if err := refusedInLog(t, d, st, "s1", collections.Delete(collections.Domain, collections.UserPrefix+"bob")); !errors.Is(err, collections.ErrUnauthorized) {
		t.Errorf("deleting a user record with an ID = %v; want ErrUnauthorized", err)
	}
	// Sharing with the new bob binds to the new identity.
	commit(t, d, st, "s2", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.Share("f1", "", "bob", collections.RightReadOnly)
		return u, err
	})
	if f, _ := st.Folder("f1"); f.Members["bob"] != collections.RightReadOnly || f.IDs["bob"] != userID(7) {
		t.Errorf("after sharing with the new bob: %+v", f)
	}

	// The owner removed: with a successor the folder is theirs; without,
	// it is archived, read-only for everyone.
	withSucc, archived := st.Clone(), st.Clone()
	commit(t, d, withSucc, "s1", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.RemoveUser("ann", "cy")
		return u, err
	})
	if f, _ := withSucc.Folder("f1"); f.Owner != "cy" || f.Members["cy"] != collections.RightOwner || f.Members["ann"] != "" {
		t.Errorf("ann removed with successor cy: folder %+v", f)
	}
	commit(t, d, archived, "s1", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.RemoveUser("ann", "")
		return u, err
	})
	f, _ := archived.Folder("f1")
	if !f.Archived() || f.Members["bob"] != collections.RightReadOnly {
		t.Errorf("ann removed without successor: folder %+v; want archived, members read-only", f)
	}
	if _, _, err := archived.Share("f1", "", "cy", collections.RightReadWrite); !errors.Is(err, collections.ErrNotAllowed) {
		t.Errorf("Share(archived folder) = %v; want ErrNotAllowed", err)
	}
	// A new ann does not own the old ann's folder.
	commit(t, d, archived, "s1", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.AddUser("ann", s2, userID(9))
		return u, err
	})
	if f, _ := archived.Folder("f1"); !f.Archived() {
		t.Errorf("the new ann owns the old ann's folder: %+v", f)
	}
}

// TestConcurrentShares: two shares of one folder built from the same state
// (an administrator's and the owner's agent's): the second fails its
// condition in the log rather than dropping the first's grant; built again
// from the new state, both grants are there.
func TestConcurrentShares(t *testing.T) {
	d := ct.NewTestDomain(t, 3)
	st := d.State(t)
	s2 := ct.ID("s2")
	for i, name := range []string{"ann", "bob", "cy"} {
		commit(t, d, st, "s1", func(st *collections.State) (collections.Update, error) {
			u, _, err := st.AddUser(name, s2, userID(byte(i+1)))
			return u, err
		})
	}
	commit(t, d, st, "s2", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.CreateFolder("f1", "Photos", "ann", s2)
		return u, err
	})
	admin, _, err := st.Share("f1", "", "bob", collections.RightReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	agent, _, err := st.Share("f1", "ann", "cy", collections.RightReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	d.Commit(t, st, "s2", admin)
	if err := refusedInLog(t, d, st, "s2", agent); !errors.Is(err, collections.ErrConflict) {
		t.Fatalf("the second share built from the old state = %v; want ErrConflict", err)
	}
	commit(t, d, st, "s2", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.Share("f1", "ann", "cy", collections.RightReadWrite)
		return u, err
	})
	f, _ := st.Folder("f1")
	if f.Members["bob"] != collections.RightReadOnly || f.Members["cy"] != collections.RightReadWrite {
		t.Errorf("members after both shares = %v; want bob ro and cy rw", f.Members)
	}
}

// TestFolderOptions: the owner or the administrator (by "") sets a
// folder's options; a member may not; shares keep them; a folder created
// with them has them.
func TestFolderOptions(t *testing.T) {
	d := ct.NewTestDomain(t, 3)
	st := d.State(t)
	s2 := ct.ID("s2")
	for i, name := range []string{"ann", "bob"} {
		commit(t, d, st, "s1", func(st *collections.State) (collections.Update, error) {
			u, _, err := st.AddUser(name, s2, userID(byte(i+1)))
			return u, err
		})
	}
	commit(t, d, st, "s2", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.CreateFolder("f1", "Photos", "ann", s2)
		return u, err
	})
	commit(t, d, st, "s2", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.Share("f1", "ann", "bob", collections.RightReadWrite)
		return u, err
	})
	yes, no := true, false
	on := collections.OptionsPatch{OutsideSymlinks: &yes}
	if _, _, err := st.SetFolderOptions("f1", "bob", on); !errors.Is(err, collections.ErrNotAllowed) {
		t.Errorf("a member sets the options: %v; want ErrNotAllowed", err)
	}
	if _, _, err := st.SetFolderOptions("f1", "ann", collections.OptionsPatch{OutsideSymlinks: &no}); !errors.Is(err, collections.ErrExists) {
		t.Errorf("setting the options the folder has: %v; want ErrExists", err)
	}
	for _, by := range []string{"ann", ""} {
		commit(t, d, st, "s2", func(st *collections.State) (collections.Update, error) {
			f, _ := st.Folder("f1")
			flip := !f.OutsideSymlinks
			u, _, err := st.SetFolderOptions("f1", by, collections.OptionsPatch{OutsideSymlinks: &flip})
			return u, err
		})
	}
	commit(t, d, st, "s2", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.SetFolderOptions("f1", "", on)
		return u, err
	})
	commit(t, d, st, "s2", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.Share("f1", "ann", "bob", collections.RightReadOnly)
		return u, err
	})
	if f, _ := st.Folder("f1"); !f.OutsideSymlinks || f.Members["bob"] != collections.RightReadOnly {
		t.Errorf("folder after the options and a share: %+v; want outside symlinks on, bob ro", f)
	}
	commit(t, d, st, "s2", func(st *collections.State) (collections.Update, error) {
		u, _, err := st.CreateFolderWith("f2", "Builds", "ann", s2, on)
		return u, err
	})
	if f, _ := st.Folder("f2"); !f.OutsideSymlinks {
		t.Errorf("folder created with outside symlinks: %+v", f)
	}
}
