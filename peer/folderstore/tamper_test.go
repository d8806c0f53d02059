package folderstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/syncfs"
)

// liveFile returns a file of tree with at least one block.
func liveFile(t *testing.T, tree map[string]syncfs.FileInfo) syncfs.FileInfo {
	t.Helper()
	for _, name := range worldFiles {
		if fi, ok := tree[name]; ok && !fi.Deleted && len(fi.Blocks) > 0 {
			return fi
		}
	}
	t.Fatal("no live file with blocks in the tree")
	return syncfs.FileInfo{}
}

// TestTamperedBlockNeverExported alters a block on disk: Verify reports
// it, and neither Export nor ReadFile writes its content.
func TestTamperedBlockNeverExported(t *testing.T) {
	c := newCrashSetup(t, 12)
	seq := keptSeqs(t, c.st, c.w.folder)[11]
	fi := liveFile(t, c.w.trees[seq])
	b := fi.Blocks[len(fi.Blocks)-1]
	bad := slices.Clone(c.w.content[b.Hash])
	bad[0] ^= 0xff
	if err := os.WriteFile(blockFile(c.dir, b.Hash), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.st.Verify(); !errors.Is(err, folderstore.ErrCorruptBlock) {
		t.Fatalf("Verify = %v; want ErrCorruptBlock", err)
	}
	out := filepath.Join(c.dir, "out")
	if err := c.st.Export(c.w.folder, seq, out); !errors.Is(err, folderstore.ErrCorruptBlock) {
		t.Fatalf("Export = %v; want ErrCorruptBlock", err)
	}
	if data, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(fi.Name))); err == nil && bytes.Contains(data, bad) {
		t.Fatal("Export wrote the tampered block's content")
	}
	var buf bytes.Buffer
	if err := c.st.ReadFile(fi, &buf); !errors.Is(err, folderstore.ErrCorruptBlock) || bytes.Contains(buf.Bytes(), bad) {
		t.Fatalf("ReadFile = %v (tampered content written: %v); want ErrCorruptBlock and nothing of it", err, bytes.Contains(buf.Bytes(), bad))
	}
}

// editDB changes the closed store's metadata file directly, as someone
// with access to the server's disk could.
func editDB(t *testing.T, c *crashSetup, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	if err := c.st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(filepath.Join(c.dir, "snapshots.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	c.open(t)
}

func folderBucket(tx *bbolt.Tx, top, folder string) *bbolt.Bucket {
	return tx.Bucket([]byte(top)).Bucket([]byte(folder))
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func getHeader(t *testing.T, tx *bbolt.Tx, folder string, seq uint64) folderstore.Snapshot {
	var s folderstore.Snapshot
	if err := canon.Unmarshal(folderBucket(tx, "snapshots", folder).Get(seqKey(seq)), &s, 1<<30); err != nil {
		t.Fatal(err)
	}
	return s
}

func putHeader(t *testing.T, tx *bbolt.Tx, s folderstore.Snapshot) {
	v, err := canon.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := folderBucket(tx, "snapshots", s.Folder).Put(seqKey(s.Seq), v); err != nil {
		t.Fatal(err)
	}
}

// TestTamperedSnapshotRecord alters the metadata file in the ways an
// attacker or damage could: Verify reports ErrTampered, and Tree, Export,
// History and Snapshot refuse the snapshot rather than return its data.
func TestTamperedSnapshotRecord(t *testing.T) {
	const seq = 9 // the snapshot altered, of 12
	// changeEntry rewrites one entry of snapshot seq: its file now holds
	// another held block (a plausible, wrong version).
	changeEntry := func(t *testing.T, tx *bbolt.Tx, c *crashSetup) syncfs.FileInfo {
		eb := folderBucket(tx, "entries", c.w.folder)
		cur := eb.Cursor()
		prefix := seqKey(seq)
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			var fi syncfs.FileInfo
			if err := canon.Unmarshal(v, &fi, 0); err != nil {
				t.Fatal(err)
			}
			if fi.Deleted || fi.Type != syncfs.TypeFile {
				continue
			}
			other := c.w.chunks[0]
			fi.Blocks = []syncfs.Block{{Size: uint32(len(other)), Hash: syncfs.HashBytes(other)}}
			fi.Size, fi.FileHash = int64(len(other)), syncfs.FileHashOf(fi.Blocks)
			nv, err := canon.Marshal(fi)
			if err != nil {
				t.Fatal(err)
			}
			if err := eb.Put(slices.Clone(k), nv); err != nil {
				t.Fatal(err)
			}
			return fi
		}
		t.Fatalf("snapshot %d changes no live file", seq)
		return syncfs.FileInfo{}
	}
	reroot := func(t *testing.T, tx *bbolt.Tx, c *crashSetup) folderstore.Snapshot {
		hdr := getHeader(t, tx, c.w.folder, seq)
		var entries []syncfs.FileInfo
		cur := folderBucket(tx, "entries", c.w.folder).Cursor()
		for k, v := cur.Seek(seqKey(seq)); k != nil && bytes.HasPrefix(k, seqKey(seq)); k, v = cur.Next() {
			var fi syncfs.FileInfo
			if err := canon.Unmarshal(v, &fi, 0); err != nil {
				t.Fatal(err)
			}
			entries = append(entries, fi)
		}
		root, err := folderstore.RootOf(hdr, slices.Values(entries))
		if err != nil {
			t.Fatal(err)
		}
		hdr.Root = root
		return hdr
	}
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, tx *bbolt.Tx, c *crashSetup)
		reads  bool // whether reading snapshot seq must fail (else only Verify)
	}{
		{"entry changed", func(t *testing.T, tx *bbolt.Tx, c *crashSetup) { changeEntry(t, tx, c) }, true},
		{"header time changed", func(t *testing.T, tx *bbolt.Tx, c *crashSetup) {
			hdr := getHeader(t, tx, c.w.folder, seq)
			hdr.Time -= int64(time.Minute)
			putHeader(t, tx, hdr)
		}, true},
		{"entry changed and root recomputed", func(t *testing.T, tx *bbolt.Tx, c *crashSetup) {
			changeEntry(t, tx, c)
			putHeader(t, tx, reroot(t, tx, c))
		}, true},
		{"entry changed and re-signed by another key", func(t *testing.T, tx *bbolt.Tx, c *crashSetup) {
			changeEntry(t, tx, c)
			hdr := reroot(t, tx, c)
			k := identitytest.Key("intruder")
			sig, err := k.Sign(folderstore.PurposeSnapshot, hdr.Root[:])
			if err != nil {
				t.Fatal(err)
			}
			hdr.ServerKey, hdr.ServerSig = k.Public().Raw(), sig
			putHeader(t, tx, hdr)
		}, true},
		{"entry removed", func(t *testing.T, tx *bbolt.Tx, c *crashSetup) {
			eb := folderBucket(tx, "entries", c.w.folder)
			k, _ := eb.Cursor().Seek(seqKey(seq))
			name := string(k[8:])
			if err := eb.Delete(slices.Clone(k)); err != nil {
				t.Fatal(err)
			}
			if err := folderBucket(tx, "paths", c.w.folder).Delete(binary.BigEndian.AppendUint64(append([]byte(name), 0), seq)); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"snapshot removed from the chain", func(t *testing.T, tx *bbolt.Tx, c *crashSetup) {
			hdr := getHeader(t, tx, c.w.folder, seq)
			if err := folderBucket(tx, "snapshots", c.w.folder).Delete(seqKey(seq)); err != nil {
				t.Fatal(err)
			}
			tk := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(hdr.Time)^1<<63), seq)
			if err := folderBucket(tx, "times", c.w.folder).Delete(tk); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"paths index entry removed", func(t *testing.T, tx *bbolt.Tx, c *crashSetup) {
			k, _ := folderBucket(tx, "entries", c.w.folder).Cursor().Seek(seqKey(seq))
			if err := folderBucket(tx, "paths", c.w.folder).Delete(binary.BigEndian.AppendUint64(append([]byte(k[8:]), 0), seq)); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCrashSetup(t, 8)
			// Snapshot 9 changes two files; three more follow.
			c.w.now = c.w.now.Add(time.Minute)
			x := c.w.fileEntry("d1/x", "dev-a", c.w.chunks[5], c.w.chunks[6])
			y := c.w.fileEntry("w", "dev-a", c.w.chunks[7])
			if snap, _, err := c.st.Append(c.w.folder, c.w.now, []syncfs.FileInfo{x, y}, "dev-a", c.w.read); err != nil || snap.Seq != seq {
				t.Fatalf("Append = %d, %v; want snapshot %d", snap.Seq, err, seq)
			}
			c.w.tree[x.Name], c.w.tree[y.Name] = x, y
			c.w.trees[seq] = cloneTree(c.w.tree)
			for range 3 {
				c.w.appendChange(c.st)
			}
			c.w.checkAll(c.st)
			editDB(t, c, func(tx *bbolt.Tx) error { tc.tamper(t, tx, c); return nil })
			if err := c.st.Verify(); !errors.Is(err, folderstore.ErrTampered) {
				t.Fatalf("Verify = %v; want ErrTampered", err)
			}
			if !tc.reads {
				return
			}
			if _, err := c.st.Tree(c.w.folder, seq); !errors.Is(err, folderstore.ErrTampered) {
				t.Fatalf("Tree = %v; want ErrTampered", err)
			}
			if _, err := c.st.TreeDigest(context.Background(), c.w.folder, seq); !errors.Is(err, folderstore.ErrTampered) {
				t.Fatalf("TreeDigest = %v; want ErrTampered", err)
			}
			if _, err := c.st.Snapshot(c.w.folder, seq); !errors.Is(err, folderstore.ErrTampered) {
				t.Fatalf("Snapshot = %v; want ErrTampered", err)
			}
			if _, err := c.st.History(c.w.folder, ""); !errors.Is(err, folderstore.ErrTampered) {
				t.Fatalf("History = %v; want ErrTampered", err)
			}
			// The latest tree holds the tampered snapshot's entries unless
			// later ones changed them all; the tree at seq holds them.
			out := filepath.Join(c.dir, "out")
			if err := c.st.Export(c.w.folder, seq, out); !errors.Is(err, folderstore.ErrTampered) {
				t.Fatalf("Export = %v; want ErrTampered", err)
			}
			// Snapshots before seq are untouched and still export.
			c.w.checkExport(c.st, seq-1, c.w.trees[seq-1])
			if _, err := c.st.GC(folderstore.GCOptions{Now: time.Now().Add(time.Hour), Grace: time.Minute}); !errors.Is(err, folderstore.ErrTampered) {
				t.Fatalf("GC = %v; want ErrTampered (no sweep over altered references)", err)
			}
			// Retention does not sign the altered snapshot anew.
			p := folderstore.Policy{Tiers: []folderstore.Tier{{Every: 0, For: time.Hour}}}
			if _, err := c.st.Prune(c.w.folder, p, c.w.now.Add(1000*time.Hour)); !errors.Is(err, folderstore.ErrTampered) {
				t.Fatalf("Prune = %v; want ErrTampered", err)
			}
		})
	}
}

// TestEvidence appends snapshots with the authoring device's signed index
// pages: a page that covers the change is kept and verifies, also after
// retention merges two snapshots; a page that does not cover it, or not
// signed by the author, is refused.
func TestEvidence(t *testing.T) {
	c := newCrashSetup(t, 0)
	key := identitytest.Key("laptop")
	dev := key.ID().String()
	page := func(files ...syncfs.FileInfo) []byte {
		slices.SortFunc(files, func(a, b syncfs.FileInfo) int { return bytes.Compare([]byte(a.Name), []byte(b.Name)) })
		b, err := syncfs.SignIndex(key, syncfs.Index{Folder: c.w.folder, Device: dev, Sequence: 1, Files: files})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := c.w.fileEntry("d1/x", dev, c.w.chunks[1], c.w.chunks[2])
	b := c.w.fileEntry("w", dev, c.w.chunks[3])
	if _, _, err := c.st.Append(c.w.folder, c.w.now, []syncfs.FileInfo{a, b}, dev, c.w.read, folderstore.WithEvidence(page(a, b))); err != nil {
		t.Fatalf("Append with covering evidence: %v", err)
	}
	c.w.tree[a.Name], c.w.tree[b.Name] = a, b
	c.w.trees[1] = cloneTree(c.w.tree)

	changed := a
	changed.ModTime++
	if _, _, err := c.st.Append(c.w.folder, c.w.now, []syncfs.FileInfo{changed}, dev, c.w.read, folderstore.WithEvidence(page(a))); !errors.Is(err, folderstore.ErrBadEvidence) {
		t.Fatalf("Append of an entry the evidence does not hold = %v; want ErrBadEvidence", err)
	}
	if _, _, err := c.st.Append(c.w.folder, c.w.now, []syncfs.FileInfo{a}, "another-device", c.w.read, folderstore.WithEvidence(page(a))); !errors.Is(err, folderstore.ErrBadEvidence) {
		t.Fatalf("Append credited to a device that signed no page = %v; want ErrBadEvidence", err)
	}

	c.w.now = c.w.now.Add(time.Hour)
	a2 := c.w.fileEntry("d1/x", dev, c.w.chunks[4])
	snap, _, err := c.st.Append(c.w.folder, c.w.now, []syncfs.FileInfo{a2}, dev, c.w.read, folderstore.WithEvidence(page(a2)))
	if err != nil {
		t.Fatal(err)
	}
	c.w.tree[a2.Name] = a2
	c.w.trees[snap.Seq] = cloneTree(c.w.tree)
	c.w.checkAll(c.st)
	// Dropping the first merges b into the second, with both pages.
	ps, err := c.st.Prune(c.w.folder, folderstore.Policy{Tiers: []folderstore.Tier{{Every: 0, For: 30 * time.Minute}}}, c.w.now.Add(10*time.Minute))
	if err != nil || !slices.Equal(ps.Dropped, []uint64{1}) {
		t.Fatalf("Prune = %+v, %v; want snapshot 1 dropped", ps, err)
	}
	c.w.checkAll(c.st)
	got, err := c.st.Snapshot(c.w.folder, snap.Seq)
	if err != nil || len(got.Evidence) != 2 || len(got.Entries) != 2 {
		t.Fatalf("merged snapshot: %d pages, %d entries, %v; want 2 and 2", len(got.Evidence), len(got.Entries), err)
	}
}
