package peer_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/collections/datafile"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

func dataPath(c *peertest.Cluster, i int, k collections.Kind) string {
	return filepath.Join(c.Members[i].DataDir, "data", k.String()+".dat")
}

// loadDataFile loads member i's data file of collection k as a fresh
// replica would (the Domain first) and returns its digest of k.
func loadDataFile(c *peertest.Cluster, i int, k collections.Kind) ([32]byte, error) {
	store, err := datafile.Open(filepath.Join(c.Members[i].DataDir, "data"))
	if err != nil {
		return [32]byte{}, err
	}
	st, err := collections.NewState(c.Genesis)
	if err != nil {
		return [32]byte{}, err
	}
	if k != collections.Domain {
		if _, err := st.Load(store, collections.Domain); err != nil {
			return [32]byte{}, err
		}
	}
	res, err := st.Load(store, k)
	if err != nil {
		return [32]byte{}, err
	}
	if res.TornAt >= 0 {
		return [32]byte{}, fmt.Errorf("%s: torn at %d", res.File, res.TornAt)
	}
	return st.Digest(k), nil
}

// waitFor polls cond every 20 ms until it holds, failing t after timeout.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func appendBytes(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// TestTamperedDataFilesAreRestored edits a running slave's data files
// behind its back. Each time the node notices within seconds, moves the
// file aside (unless it was deleted), records the event in its status, and
// rewrites the file so that it loads to exactly the node's state; no
// digest anywhere changes, and the tampered bytes are never served.
func TestTamperedDataFilesAreRestored(t *testing.T) {
	c := peertest.NewCluster(t, 3, collections.DefaultFailover(3))
	c.StartAll()
	c.WaitMaster(20 * time.Second)
	putUser(t, c, 0, "ann", 1)
	putUser(t, c, 0, "bob", 1)
	putFolder(t, c, 1, "f1", "ann")
	c.WaitConverged(10 * time.Second)
	const victim = 1
	older, err := os.ReadFile(dataPath(c, victim, collections.Domain))
	if err != nil {
		t.Fatal(err)
	}
	putUser(t, c, 0, "cat", 2)
	putFolder(t, c, 1, "f2", "bob")
	c.WaitConverged(10 * time.Second)
	all := c.Running()
	before := snapshot(c, all)

	for _, tc := range []struct {
		name   string
		kind   collections.Kind
		tamper func(path string) error
		moved  bool // the file is moved aside (not deleted)
	}{
		{"truncate", collections.Domain, func(p string) error {
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, st.Size()/2)
		}, true},
		{"truncate to a record boundary", collections.Domain, func(p string) error {
			return os.Truncate(p, int64(len(datafile.EncodeHeader(collections.Domain))))
		}, true},
		{"append garbage", collections.Domain, func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			_, err = f.Write(bytes.Repeat([]byte("garbage!"), 16))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		}, true},
		{"append a partial frame", collections.Domain, func(p string) error {
			return appendBytes(p, []byte{0xff, 0x7f, 'x', 'y', 'z'}) // a 16383-byte frame, cut short
		}, true},
		{"append zeros", collections.Catalog, func(p string) error {
			return appendBytes(p, make([]byte, 64))
		}, true},
		{"append a valid frame of junk", collections.Catalog, func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			_, err = f.Write(datafile.AppendFrame(nil, []byte("not a certified update")))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		}, true},
		{"flip a byte", collections.Catalog, func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 0x40
			return os.WriteFile(p, b, 0o600)
		}, true},
		{"delete", collections.Domain, os.Remove, false},
		{"replace with an older copy", collections.Domain, func(p string) error {
			tmp := p + ".tmp-editor"
			if err := os.WriteFile(tmp, older, 0o600); err != nil {
				return err
			}
			return os.Rename(tmp, p)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := dataPath(c, victim, tc.kind)
			n := len(c.Status(victim).Quarantined)
			start := time.Now()
			if err := tc.tamper(path); err != nil {
				t.Fatal(err)
			}
			var ev peer.QuarantineEvent
			waitFor(t, "the tampering to be quarantined", 5*time.Second, func() bool {
				q := c.Status(victim).Quarantined
				if len(q) > n {
					ev = q[len(q)-1]
					return true
				}
				return false
			})
			want := c.State(victim).Digest(tc.kind)
			waitFor(t, "the data file to be rewritten", 5*time.Second, func() bool {
				got, err := loadDataFile(c, victim, tc.kind)
				return err == nil && got == want
			})
			t.Logf("restored after %v: %+v", time.Since(start), ev)
			if ev.Collection != tc.kind.String() || ev.File != path || ev.Reason == "" {
				t.Errorf("quarantine event %+v; want collection %s, file %s and a reason", ev, tc.kind, path)
			}
			switch {
			case tc.moved && ev.MovedTo == "":
				t.Errorf("the tampered file was not moved aside")
			case tc.moved:
				if _, err := os.Stat(ev.MovedTo); err != nil {
					t.Errorf("moved-aside file: %v", err)
				}
			case ev.MovedTo != "":
				t.Errorf("deleted file reported moved to %s", ev.MovedTo)
			}
			checkUnchanged(t, c, all, before, tc.name)
		})
	}
	// Still replicating, and nothing tampered spread: a new write
	// converges and every node's files load to its state.
	putUser(t, c, 0, "dan", 2)
	c.WaitConverged(10 * time.Second)
	for _, i := range all {
		for _, k := range collections.Kinds {
			got, err := loadDataFile(c, i, k)
			if want := c.State(i).Digest(k); err != nil || got != want {
				t.Errorf("%s's %s file: err %v, digest matches %v", c.Members[i].Name, k, err, got == want)
			}
		}
	}
}
