package folderstore_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/syncfs"
)

// TestRefsIndexTampered: Verify reports a refs index that lost a reference
// or gained one no snapshot makes.
func TestRefsIndexTampered(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(b *bbolt.Bucket) error
	}{
		{"a reference removed", func(b *bbolt.Bucket) error {
			k, _ := b.Cursor().First()
			return b.Delete(k)
		}},
		{"a reference added", func(b *bbolt.Bucket) error {
			h := syncfs.HashBytes([]byte("not in the folder"))
			return b.Put(append(append(h[:], make([]byte, 8)...), "x"...), make([]byte, 4))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCrashSetup(t, 8)
			if err := c.st.Verify(); err != nil {
				t.Fatalf("Verify before: %v", err)
			}
			editDB(t, c, func(tx *bbolt.Tx) error { return tc.edit(folderBucket(tx, "refs", c.w.folder)) })
			if err := c.st.Verify(); !errors.Is(err, folderstore.ErrTampered) {
				t.Fatalf("Verify = %v; want ErrTampered", err)
			}
		})
	}
}

// TestRefsAddedToVersion2File: a file of format version 2 (no refs index)
// is given its refs index when opened, and then verifies.
func TestRefsAddedToVersion2File(t *testing.T) {
	c := newCrashSetup(t, 10)
	editDB(t, c, func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket([]byte("refs")); err != nil {
			return err
		}
		return tx.Bucket([]byte("meta")).Put([]byte("version"), binary.BigEndian.AppendUint64(nil, 2))
	})
	c.w.checkAll(c.st)
}

// TestAppendNothingKept: an Append whose every entry is left out (or that
// has none) commits no snapshot.
func TestAppendNothingKept(t *testing.T) {
	st, _ := openStore(t, t.TempDir())
	lost := fileOf("a.txt", []byte("never read"), "dev1", 1)
	unreadable := func(string, syncfs.Block) ([]byte, error) { return nil, errors.New("changed since indexed") }
	for _, changes := range [][]syncfs.FileInfo{{lost}, nil} {
		snap, skipped, err := st.Append("f", epoch, changes, "dev1", unreadable)
		if err != nil || snap.Seq != 0 || len(skipped) != len(changes) {
			t.Fatalf("Append(%d entries, none readable) = snapshot %d, skipped %v, %v; want none committed, all skipped", len(changes), snap.Seq, skipped, err)
		}
	}
	if snaps, err := st.Snapshots("f"); err != nil || len(snaps) != 0 {
		t.Fatalf("Snapshots = %d, %v; want none", len(snaps), err)
	}
}

// TestAppendRequester: who asked for a change is kept with its snapshot
// and shown in the history of its entries.
func TestAppendRequester(t *testing.T) {
	st, _ := openStore(t, t.TempDir())
	data := []byte("restored")
	fi := fileOf("a.txt", data, "server", 3)
	read := func(string, syncfs.Block) ([]byte, error) { return data, nil }
	if _, _, err := st.Append("f", epoch, []syncfs.FileInfo{fi}, "server", read, folderstore.WithRequester("ann", "ann-laptop")); err != nil {
		t.Fatal(err)
	}
	if err := st.Verify(); err != nil {
		t.Fatal(err)
	}
	vs, err := st.History("f", "a.txt")
	if err != nil || len(vs) != 1 || vs[0].ReqUser != "ann" || vs[0].ReqDevice != "ann-laptop" || vs[0].Device != "server" {
		t.Fatalf("History = %+v, %v; want one version by server, asked by ann on ann-laptop", vs, err)
	}
	snap, err := st.Snapshot("f", vs[0].Seq)
	if err != nil || snap.ReqUser != "ann" || snap.ReqDevice != "ann-laptop" {
		t.Fatalf("Snapshot = %+v, %v; want the requester", snap, err)
	}
}
