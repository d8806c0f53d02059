package folderstore_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/syncfs"
)

// world is a folder as its devices change it, and what the store should
// make of it: the tree after each snapshot, and every block's content.
type world struct {
	t       *testing.T
	rng     *rand.Rand
	folder  string
	content map[syncfs.Hash][]byte
	tree    map[string]syncfs.FileInfo // tombstones included
	trees   map[uint64]map[string]syncfs.FileInfo
	counter uint64
	now     time.Time
	// unreadable blocks make read fail (the file changed again on the
	// server before the store read it).
	unreadable map[syncfs.Hash]bool
	chunks     [][]byte
}

// The names a world uses: directories d1, d2; files under them and at the
// top; a symlink.
var (
	worldFiles = []string{"w", "d1/x", "d1/y", "d2/z", "d2/sub/q"}
	worldDirs  = []string{"d1", "d2"}
	worldLinks = []string{"l"}
	devices    = []string{"dev-a", "dev-b", "dev-c"}
)

func newWorld(t *testing.T, seed uint64, folder string) *world {
	w := &world{t: t, rng: rand.New(rand.NewPCG(seed, 0x40)), folder: folder,
		content: map[syncfs.Hash][]byte{}, tree: map[string]syncfs.FileInfo{},
		trees: map[uint64]map[string]syncfs.FileInfo{}, now: epoch, unreadable: map[syncfs.Hash]bool{}}
	for i := range 12 {
		c := make([]byte, 1+w.rng.IntN(700))
		for j := range c {
			c[j] = byte(w.rng.Uint32())
		}
		w.chunks = append(w.chunks, append(c, byte(i)))
	}
	return w
}

func (w *world) version(dev string) syncfs.Vector {
	w.counter++
	return syncfs.Vector{Counters: []syncfs.Counter{{Device: dev, Value: w.counter}}}
}

// fileEntry makes an entry for name holding chunks (one block each).
func (w *world) fileEntry(name, dev string, chunks ...[]byte) syncfs.FileInfo {
	var blocks []syncfs.Block
	var off int64
	for _, c := range chunks {
		h := syncfs.HashBytes(c)
		w.content[h] = c
		blocks = append(blocks, syncfs.Block{Offset: off, Size: uint32(len(c)), Hash: h})
		off += int64(len(c))
	}
	return syncfs.FileInfo{Name: name, Type: syncfs.TypeFile, Size: off, Mode: 0o644, ModTime: w.now.UnixNano() - int64(w.rng.IntN(1e6))*1000,
		Blocks: blocks, FileHash: syncfs.FileHashOf(blocks), Version: w.version(dev)}
}

// change makes a random change set by one device: files written with
// random chunks (some unreadable), entries deleted, a symlink retargeted,
// a directory's mode changed.
func (w *world) change() ([]syncfs.FileInfo, string) {
	dev := devices[w.rng.IntN(len(devices))]
	names := map[string]bool{}
	var out []syncfs.FileInfo
	for range 1 + w.rng.IntN(3) {
		var fi syncfs.FileInfo
		switch k := w.rng.IntN(10); {
		case k < 6:
			name := worldFiles[w.rng.IntN(len(worldFiles))]
			if cur, ok := w.tree[name]; ok && !cur.Deleted && w.rng.IntN(3) == 0 {
				fi = cur
				fi.Deleted, fi.Blocks, fi.Size, fi.FileHash, fi.Version = true, nil, 0, syncfs.Hash{}, w.version(dev)
				break
			}
			var chunks [][]byte
			for range w.rng.IntN(4) {
				chunks = append(chunks, w.chunks[w.rng.IntN(len(w.chunks))])
			}
			if w.rng.IntN(8) == 0 { // a block the store cannot read
				c := []byte{byte(w.rng.Uint32()), byte(w.rng.Uint32()), 0xfe}
				w.unreadable[syncfs.HashBytes(c)] = true
				chunks = append(chunks, c)
			}
			fi = w.fileEntry(name, dev, chunks...)
		case k < 8:
			name := worldLinks[0]
			if cur, ok := w.tree[name]; ok && !cur.Deleted && w.rng.IntN(2) == 0 {
				fi = cur
				fi.Deleted, fi.SymlinkTarget, fi.Version = true, "", w.version(dev)
				break
			}
			fi = syncfs.FileInfo{Name: name, Type: syncfs.TypeSymlink, SymlinkTarget: "target-" + string(rune('a'+w.rng.IntN(26))), Version: w.version(dev)}
		default:
			name := worldDirs[w.rng.IntN(len(worldDirs))]
			fi = syncfs.FileInfo{Name: name, Type: syncfs.TypeDir, Mode: 0o700 | uint32(w.rng.IntN(2))*0o055, Version: w.version(dev)}
		}
		if names[fi.Name] {
			continue
		}
		names[fi.Name] = true
		out = append(out, fi)
	}
	return out, dev
}

func (w *world) read(_ string, b syncfs.Block) ([]byte, error) {
	if w.unreadable[b.Hash] {
		return nil, errors.New("changed since indexed")
	}
	return w.content[b.Hash], nil
}

// appendChange makes a change, appends it and records the tree it makes.
func (w *world) appendChange(st *folderstore.Store) folderstore.Snapshot {
	w.t.Helper()
	w.now = w.now.Add(time.Duration(w.rng.IntN(6*3600)) * time.Second)
	changes, dev := w.change()
	snap, skipped, err := st.Append(w.folder, w.now, changes, dev, w.read)
	if err != nil {
		w.t.Fatalf("Append: %v", err)
	}
	var wantSkipped []string
	for _, fi := range changes {
		unread := slices.ContainsFunc(fi.Blocks, func(b syncfs.Block) bool { return w.unreadable[b.Hash] })
		if unread && !fi.Deleted {
			wantSkipped = append(wantSkipped, fi.Name)
			continue
		}
		w.tree[fi.Name] = fi
	}
	if !reflect.DeepEqual(skipped, wantSkipped) {
		w.t.Fatalf("Append skipped %v; want %v", skipped, wantSkipped)
	}
	w.trees[snap.Seq] = maps.Clone(w.tree)
	return snap
}

// referenced returns the blocks of the live files of the trees at kept.
func (w *world) referenced(kept []uint64) map[syncfs.Hash]bool {
	out := map[syncfs.Hash]bool{}
	for _, seq := range kept {
		for _, fi := range w.trees[seq] {
			if !fi.Deleted && fi.Type == syncfs.TypeFile {
				for _, b := range fi.Blocks {
					out[b.Hash] = true
				}
			}
		}
	}
	return out
}

// keptSeqs returns the folder's snapshots in the store.
func keptSeqs(t *testing.T, st *folderstore.Store, folder string) []uint64 {
	t.Helper()
	snaps, err := st.Snapshots(folder)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, s := range snaps {
		out = append(out, s.Seq)
	}
	return out
}

// checkAll checks that the store verifies, that the latest snapshot is
// kept, and that every kept snapshot's Tree equals the tree then and its
// Export restores it byte for byte.
func (w *world) checkAll(st *folderstore.Store) {
	w.t.Helper()
	if err := st.Verify(); err != nil {
		w.t.Fatalf("Verify: %v", err)
	}
	kept := keptSeqs(w.t, st, w.folder)
	if len(w.trees) > 0 {
		latest := slices.Max(slices.Collect(maps.Keys(w.trees)))
		if len(kept) == 0 || kept[len(kept)-1] != latest {
			w.t.Fatalf("kept snapshots %v lack the latest, %d", kept, latest)
		}
	}
	for _, seq := range kept {
		want, ok := w.trees[seq]
		if !ok {
			w.t.Fatalf("the store holds snapshot %d, never made", seq)
		}
		got, err := st.Tree(w.folder, seq)
		if err != nil {
			w.t.Fatalf("Tree(%d): %v", seq, err)
		}
		if !reflect.DeepEqual(map[string]syncfs.FileInfo(got), want) {
			w.t.Fatalf("Tree(%d) (-want +got):\n%s", seq, cmp.Diff(want, map[string]syncfs.FileInfo(got)))
		}
		wantDigest, err := folderstore.TreeDigest(want)
		if err != nil {
			w.t.Fatal(err)
		}
		if d, err := st.TreeDigest(context.Background(), w.folder, seq); err != nil || d != wantDigest {
			w.t.Fatalf("TreeDigest(%d) = %x, %v; want %x", seq, d[:8], err, wantDigest[:8])
		}
		w.checkExport(st, seq, want)
	}
	w.checkRefs(st, kept)
}

// checkRefs checks References and Usage against the blocks of the kept
// snapshots' trees.
func (w *world) checkRefs(st *folderstore.Store, kept []uint64) {
	w.t.Helper()
	want := w.referenced(kept)
	all := slices.SortedFunc(maps.Keys(w.content), func(a, b syncfs.Hash) int { return bytes.Compare(a[:], b[:]) })
	got, err := st.References(w.folder, all...)
	if err != nil {
		w.t.Fatalf("References: %v", err)
	}
	var bytesWant int64
	for i, h := range all {
		if got[i] != want[h] {
			w.t.Fatalf("References(%x) = %v; want %v", h[:8], got[i], want[h])
		}
		if want[h] {
			bytesWant += int64(len(w.content[h]))
		}
	}
	u, err := st.Usage(w.folder)
	if err != nil {
		w.t.Fatalf("Usage: %v", err)
	}
	if u.Snapshots != len(kept) || u.Blocks != len(want) || u.Bytes != bytesWant {
		w.t.Fatalf("Usage = %+v; want %d snapshots, %d blocks of %d bytes", u, len(kept), len(want), bytesWant)
	}
}

// checkExport exports snapshot seq and compares the directory with want:
// every file's bytes and mtime, every symlink's target, every directory.
func (w *world) checkExport(st *folderstore.Store, seq uint64, want map[string]syncfs.FileInfo) {
	w.t.Helper()
	dir := filepath.Join(w.t.TempDir(), "export")
	if err := st.Export(w.folder, seq, dir); err != nil {
		w.t.Fatalf("Export(%d): %v", seq, err)
	}
	exp := map[string]string{}
	for name, fi := range want {
		if fi.Deleted {
			continue
		}
		for p := path.Dir(name); p != "."; p = path.Dir(p) {
			exp[p] = "dir"
		}
		switch fi.Type {
		case syncfs.TypeDir:
			exp[name] = "dir"
		case syncfs.TypeSymlink:
			exp[name] = "link " + fi.SymlinkTarget
		case syncfs.TypeFile:
			var b bytes.Buffer
			for _, bl := range fi.Blocks {
				b.Write(w.content[bl.Hash])
			}
			exp[name] = "file " + b.String() + " " + time.Unix(0, fi.ModTime).UTC().String()
		}
	}
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[rel] = "link " + target
		case d.IsDir():
			got[rel] = "dir"
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			got[rel] = "file " + string(data) + " " + info.ModTime().UTC().String()
		}
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	if !reflect.DeepEqual(exp, got) {
		w.t.Fatalf("Export(%d) differs from the tree then (-want +got):\n%s", seq, cmp.Diff(exp, got))
	}
}

// checkBlocks checks that the store holds exactly the blocks of the kept
// snapshots' trees (after a collection with no grace).
func (w *world) checkBlocks(st *folderstore.Store) {
	w.t.Helper()
	want := w.referenced(keptSeqs(w.t, st, w.folder))
	got := map[syncfs.Hash]bool{}
	if err := st.Blocks().List(func(h syncfs.Hash) error { got[h] = true; return nil }); err != nil {
		w.t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		w.t.Fatalf("blocks held after GC: %d, want %d (those of the kept snapshots)", len(got), len(want))
	}
}
