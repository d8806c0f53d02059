package folderstore_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/syncfs"
)

var epoch = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func openStore(t *testing.T, dir string) (*folderstore.Store, *folderstore.Disk) {
	t.Helper()
	disk := folderstore.NewDisk(filepath.Join(dir, "blocks"))
	st, err := folderstore.Open(filepath.Join(dir, "snapshots.db"), disk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, disk
}

func blockFile(dir string, h syncfs.Hash) string {
	name := hex.EncodeToString(h[:])
	return filepath.Join(dir, "blocks", name[:2], name)
}

func sortedHashes(hs ...syncfs.Hash) []syncfs.Hash {
	out := slices.Clone(hs)
	slices.SortFunc(out, func(a, b syncfs.Hash) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(out)
}

func TestDiskPutGet(t *testing.T) {
	dir := t.TempDir()
	disk := folderstore.NewDisk(filepath.Join(dir, "blocks"))
	data := []byte("hello, blocks")
	h := syncfs.HashBytes(data)
	if err := disk.Put(h, data); err != nil {
		t.Fatal(err)
	}
	if err := disk.Put(h, data); err != nil {
		t.Fatalf("second Put of a held block: %v", err)
	}
	got, err := os.ReadFile(blockFile(dir, h))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("block file = %q, %v; want %q at blocks/ab/abcd…", got, err, data)
	}
	if got, err := disk.Get(h); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get = %q, %v; want %q", got, err, data)
	}
	if ok, err := disk.Has(h); !ok || err != nil {
		t.Fatalf("Has = %v, %v; want true", ok, err)
	}
	other := syncfs.HashBytes([]byte("other"))
	if err := disk.Put(other, data); !errors.Is(err, folderstore.ErrCorruptBlock) {
		t.Fatalf("Put under the wrong hash = %v; want ErrCorruptBlock", err)
	}
	if ok, _ := disk.Has(other); ok {
		t.Fatal("a block Put under the wrong hash was stored")
	}
	if _, err := disk.Get(other); !errors.Is(err, folderstore.ErrBlockNotFound) {
		t.Fatalf("Get of a block not held = %v; want ErrBlockNotFound", err)
	}
	// A temporary file is not a block.
	if err := os.WriteFile(filepath.Join(filepath.Dir(blockFile(dir, h)), ".x.tmp-1"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var listed []syncfs.Hash
	if err := disk.List(func(h syncfs.Hash) error { listed = append(listed, h); return nil }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]syncfs.Hash{h}, listed); diff != "" {
		t.Fatalf("List (-want +got):\n%s", diff)
	}
	if err := disk.Delete(h); err != nil {
		t.Fatal(err)
	}
	if ok, _ := disk.Has(h); ok {
		t.Fatal("block held after Delete")
	}
	if err := disk.Delete(h); err != nil {
		t.Fatalf("Delete of a block not held: %v", err)
	}
}

// TestTamperedBlock alters block files on disk: Get refuses them and
// Verify reports the snapshots that reference them.
func TestTamperedBlock(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(data []byte) []byte
	}{
		{"bit flipped", func(d []byte) []byte { d = slices.Clone(d); d[3] ^= 1; return d }},
		{"truncated", func(d []byte) []byte { return d[:len(d)-1] }},
		{"emptied", func([]byte) []byte { return nil }},
		{"appended", func(d []byte) []byte { return append(slices.Clone(d), 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st, disk := openStore(t, dir)
			good, bad := []byte("a block that stays as written"), []byte("a block that is altered on disk")
			if _, err := st.Write("f", epoch, []byte("index"), [][]byte{good, bad}, nil); err != nil {
				t.Fatal(err)
			}
			if err := st.Verify(); err != nil {
				t.Fatalf("Verify before tampering: %v", err)
			}
			h := syncfs.HashBytes(bad)
			if err := os.WriteFile(blockFile(dir, h), tc.tamper(bad), 0o600); err != nil {
				t.Fatal(err)
			}
			if got, err := disk.Get(h); !errors.Is(err, folderstore.ErrCorruptBlock) || got != nil {
				t.Fatalf("Get of a tampered block = %q, %v; want nil, ErrCorruptBlock", got, err)
			}
			if _, err := disk.Get(syncfs.HashBytes(good)); err != nil {
				t.Fatalf("Get of an untouched block: %v", err)
			}
			if err := st.Verify(); !errors.Is(err, folderstore.ErrCorruptBlock) {
				t.Fatalf("Verify after tampering = %v; want ErrCorruptBlock", err)
			}
		})
	}
}

func TestCommitRefusesMissingBlock(t *testing.T) {
	st, disk := openStore(t, t.TempDir())
	held := []byte("held")
	if err := disk.Put(syncfs.HashBytes(held), held); err != nil {
		t.Fatal(err)
	}
	missing := syncfs.HashBytes([]byte("never stored"))
	_, err := st.Commit("f", epoch, []byte("index"), []syncfs.Hash{syncfs.HashBytes(held), missing})
	if !errors.Is(err, folderstore.ErrMissingBlock) {
		t.Fatalf("Commit with a block not held = %v; want ErrMissingBlock", err)
	}
	if snaps, err := st.Snapshots("f"); err != nil || len(snaps) != 0 {
		t.Fatalf("Snapshots after a refused commit = %v, %v; want none", snaps, err)
	}
	if _, err := st.Snapshot("f", 1); !errors.Is(err, folderstore.ErrSnapshotNotFound) {
		t.Fatalf("Snapshot(f, 1) = %v; want ErrSnapshotNotFound", err)
	}
}

// model is what the store should hold.
type model struct {
	blocks map[syncfs.Hash][]byte
	snaps  map[string][]folderstore.Snapshot
}

// held returns the blocks held, sorted (a map's order is random, and the
// test must be deterministic for its seed).
func (m *model) held() []syncfs.Hash {
	var out []syncfs.Hash
	for h := range m.blocks {
		out = append(out, h)
	}
	return sortedHashes(out...)
}

func (m *model) referenced(h syncfs.Hash) bool {
	for _, ss := range m.snaps {
		for _, s := range ss {
			if slices.Contains(s.Blocks, h) {
				return true
			}
		}
	}
	return false
}

// check compares the store with the model: the snapshots, the blocks held
// (each once, as one file), and every snapshot's blocks reading back and
// verifying.
func (m *model) check(t *testing.T, dir string, st *folderstore.Store, full bool) {
	t.Helper()
	for f, want := range m.snaps {
		got, err := st.Snapshots(f)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(want, got) { // cmp.Diff is slow on hashes: only to show a difference
			t.Fatalf("Snapshots(%q) (-want +got):\n%s", f, cmp.Diff(want, got))
		}
		if !full {
			continue
		}
		for _, s := range want {
			one, err := st.Snapshot(f, s.Seq)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s, one) {
				t.Fatalf("Snapshot(%q, %d) (-want +got):\n%s", f, s.Seq, cmp.Diff(s, one))
			}
			for _, h := range s.Blocks {
				data, err := st.Blocks().Get(h)
				if err != nil {
					t.Fatalf("snapshot %d of %q: %v", s.Seq, f, err)
				}
				if !bytes.Equal(data, m.blocks[h]) {
					t.Fatalf("snapshot %d of %q: block %x reads back other bytes", s.Seq, f, h[:8])
				}
			}
		}
	}
	if !full {
		return
	}
	var listed []syncfs.Hash
	if err := st.Blocks().List(func(h syncfs.Hash) error { listed = append(listed, h); return nil }); err != nil {
		t.Fatal(err)
	}
	if want, got := m.held(), sortedHashes(listed...); !reflect.DeepEqual(want, got) {
		t.Fatalf("blocks held (-want +got):\n%s", cmp.Diff(want, got))
	}
	files := 0
	err := filepath.WalkDir(filepath.Join(dir, "blocks"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files++
		}
		return err
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if files != len(m.blocks) {
		t.Fatalf("%d files under blocks/; want one per distinct block, %d", files, len(m.blocks))
	}
	if err := st.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// TestProperty runs seeded random sequences of block puts, deletes of
// unreferenced blocks, commits (some referencing blocks not held), writes
// and reopenings, and checks the store's snapshots against a model after
// every step, and everything (blocks, files, Verify) every tenth step.
func TestProperty(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			pool := make([][]byte, 24)
			for i := range pool {
				pool[i] = make([]byte, rng.IntN(3000))
				for j := range pool[i] {
					pool[i][j] = byte(rng.Uint32())
				}
				pool[i] = append(pool[i], byte(i)) // distinct even when empty
			}
			pick := func() [][]byte {
				var out [][]byte
				for range rng.IntN(6) {
					out = append(out, pool[rng.IntN(len(pool))])
				}
				return out
			}
			folders := []string{"photos", "docs", "a/b"}
			dir := t.TempDir()
			st, _ := openStore(t, dir)
			m := &model{blocks: map[syncfs.Hash][]byte{}, snaps: map[string][]folderstore.Snapshot{}}
			now := epoch
			expect := func(f string, index []byte, hs []syncfs.Hash) folderstore.Snapshot {
				want := folderstore.Snapshot{Folder: f, Seq: uint64(len(m.snaps[f]) + 1), Time: now.UnixNano(), Index: index, Blocks: sortedHashes(hs...)}
				if n := len(m.snaps[f]); n > 0 {
					want.Prev = m.snaps[f][n-1].Root
				}
				root, err := folderstore.RootOf(want, nil)
				if err != nil {
					t.Fatal(err)
				}
				want.Root = root
				return want
			}
			for step := range 100 {
				now = now.Add(time.Duration(rng.IntN(1000)) * time.Second)
				f := folders[rng.IntN(len(folders))]
				index := fmt.Appendf(nil, "index %d", step)
				switch op := rng.IntN(20); {
				case op < 7: // put
					b := pool[rng.IntN(len(pool))]
					if err := st.Blocks().Put(syncfs.HashBytes(b), b); err != nil {
						t.Fatal(err)
					}
					m.blocks[syncfs.HashBytes(b)] = b
				case op < 12: // commit, refused if a block is not held
					var hs []syncfs.Hash
					held := true
					for _, b := range pick() {
						h := syncfs.HashBytes(b)
						hs = append(hs, h)
						_, ok := m.blocks[h]
						held = held && ok
					}
					snap, err := st.Commit(f, now, index, hs)
					if !held {
						if !errors.Is(err, folderstore.ErrMissingBlock) {
							t.Fatalf("step %d: Commit with a block not held = %v; want ErrMissingBlock", step, err)
						}
						break
					}
					want := expect(f, index, hs)
					if err != nil {
						t.Fatalf("step %d: Commit: %v", step, err)
					}
					if diff := cmp.Diff(want, snap); diff != "" {
						t.Fatalf("step %d: Commit (-want +got):\n%s", step, diff)
					}
					m.snaps[f] = append(m.snaps[f], snap)
				case op < 17: // write new blocks, referencing some held ones
					blocks := pick()
					var refs, hs []syncfs.Hash
					for _, h := range m.held() {
						if rng.IntN(4) == 0 {
							refs = append(refs, h)
						}
					}
					hs = slices.Clone(refs)
					for _, b := range blocks {
						hs = append(hs, syncfs.HashBytes(b))
						m.blocks[syncfs.HashBytes(b)] = b
					}
					snap, err := st.Write(f, now, index, blocks, refs)
					if err != nil {
						t.Fatalf("step %d: Write: %v", step, err)
					}
					if diff := cmp.Diff(expect(f, index, hs), snap); diff != "" {
						t.Fatalf("step %d: Write (-want +got):\n%s", step, diff)
					}
					m.snaps[f] = append(m.snaps[f], snap)
				case op < 19: // delete an unreferenced block
					for _, h := range m.held() {
						if !m.referenced(h) {
							if err := st.Blocks().Delete(h); err != nil {
								t.Fatal(err)
							}
							delete(m.blocks, h)
							break
						}
					}
				default: // reopen
					if err := st.Close(); err != nil {
						t.Fatal(err)
					}
					st, _ = openStore(t, dir)
				}
				m.check(t, dir, st, step%10 == 9)
			}
			if len(m.snaps) == 0 {
				t.Fatal("the sequence committed no snapshot")
			}
		})
	}
}

var errInjected = errors.New("injected failure")

// TestCrashAtEachStep fails a snapshot write at each of its steps in turn
// (every step of every block's write, and of the commit), leaving what a
// crash there would leave (no cleanup runs), then reopens the store: it
// verifies, holds the old snapshots and not the new one, and the same write
// then succeeds and verifies.
func TestCrashAtEachStep(t *testing.T) {
	old := [][]byte{[]byte("block A"), []byte("block B")}
	fresh := [][]byte{[]byte("block B"), []byte("block C"), []byte("block D")}
	refs := []syncfs.Hash{syncfs.HashBytes(old[0])}
	setup := func(t *testing.T, dir string) (*folderstore.Store, *folderstore.Disk, folderstore.Snapshot) {
		st, disk := openStore(t, dir)
		base, err := st.Write("f", epoch, []byte("index 1"), old, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st, disk, base
	}
	// Count the steps of the second write, failing none.
	var steps []string
	{
		st, disk, _ := setup(t, t.TempDir())
		record := func(s string) error {
			if s != "cleanup" {
				steps = append(steps, s)
			}
			return nil
		}
		folderstore.SetDiskFault(disk, record)
		folderstore.SetStoreFault(st, record)
		if _, err := st.Write("f", epoch.Add(time.Hour), []byte("index 2"), fresh, refs); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"mkdir", "create", "write", "fsync", "close", "rename", "syncdir", "check", "put", "tx"} {
		if !slices.Contains(steps, want) {
			t.Fatalf("steps of a write %v lack %q", steps, want)
		}
	}
	for k := range steps {
		t.Run(fmt.Sprintf("%d-%s", k, steps[k]), func(t *testing.T) {
			dir := t.TempDir()
			st, disk, base := setup(t, dir)
			// From step k on, every step fails, cleanups too: the process
			// died there.
			n := 0
			fail := func(step string) error {
				if step == "cleanup" && n > k {
					return errInjected
				}
				n++
				if n-1 >= k {
					return errInjected
				}
				return nil
			}
			folderstore.SetDiskFault(disk, fail)
			folderstore.SetStoreFault(st, fail)
			if _, err := st.Write("f", epoch.Add(time.Hour), []byte("index 2"), fresh, refs); !errors.Is(err, errInjected) {
				t.Fatalf("Write failing at step %d (%s) = %v; want the injected error", k, steps[k], err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st, _ = openStore(t, dir)
			if err := st.Verify(); err != nil {
				t.Fatalf("Verify after a failure at step %d (%s): %v", k, steps[k], err)
			}
			got, err := st.Snapshots("f")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]folderstore.Snapshot{base}, got); diff != "" {
				t.Fatalf("Snapshots after a failure at step %d (%s) (-want +got):\n%s", k, steps[k], diff)
			}
			// Retried, the write completes.
			snap, err := st.Write("f", epoch.Add(time.Hour), []byte("index 2"), fresh, refs)
			if err != nil {
				t.Fatalf("retried Write: %v", err)
			}
			if got, err := st.Snapshots("f"); err != nil || len(got) != 2 || snap.Seq != 2 {
				t.Fatalf("Snapshots after the retry = %v, %v; want 2", got, err)
			}
			if err := st.Verify(); err != nil {
				t.Fatalf("Verify after the retry: %v", err)
			}
		})
	}
}
