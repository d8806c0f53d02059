package syncfs_test

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/syncfs"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current code")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		must(t, os.MkdirAll("testdata", 0o755))
		must(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file: %v (run go test ./syncfs -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed: the signed index format is no longer byte-identical.\ngot  %x\nwant %x\n"+
			"If the change is intended, bump identity.PurposeIndex's version and run go test -update.", path, got, want)
	}
}

func goldenIndex() syncfs.Index {
	key := identitytest.Key("alice-laptop")
	dev := key.ID().String()
	data := []byte("hello, baton\n")
	blocks, sum, err := syncfs.HashFile(bytes.NewReader(data))
	if err != nil {
		panic(err)
	}
	v := syncfs.Vector{}.Update(dev)
	return syncfs.Index{
		Folder:   "photos-2025",
		Device:   dev,
		Sequence: 42,
		Files: []syncfs.FileInfo{
			{Name: "docs", Type: syncfs.TypeDir, Mode: 0o755, ModTime: 1749283750123456789, Version: v},
			{Name: "docs/hello.txt", Type: syncfs.TypeFile, Size: int64(len(data)), Mode: 0o644, ModTime: 1749283750123456789, Version: v, Blocks: blocks, FileHash: sum},
			{Name: "docs/link", Type: syncfs.TypeSymlink, SymlinkTarget: "hello.txt", Version: v},
			{Name: "old.txt", Type: syncfs.TypeFile, Deleted: true, ModTime: 1749283750000000000, Version: v.Update(dev)},
		},
	}
}

func TestIndexGolden(t *testing.T) {
	idx := goldenIndex()
	data, err := syncfs.SignIndex(identitytest.Key("alice-laptop"), idx)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "index.envelope.golden", data)
	stored, err := os.ReadFile(filepath.Join("testdata", "index.envelope.golden"))
	if err != nil {
		t.Fatal(err)
	}
	got, signer, err := syncfs.OpenIndex(stored)
	if err != nil {
		t.Fatalf("OpenIndex(golden) error = %v", err)
	}
	if diff := cmp.Diff(idx, got); diff != "" {
		t.Errorf("OpenIndex(golden) mismatch (-want +got):\n%s", diff)
	}
	if !signer.Equal(identitytest.Key("alice-laptop").Public()) {
		t.Errorf("signer = %v; want alice-laptop", signer)
	}
}

func TestSignIndexWrongKey(t *testing.T) {
	if _, err := syncfs.SignIndex(identitytest.Key("mallory"), goldenIndex()); !errors.Is(err, syncfs.ErrBadIndex) {
		t.Errorf("SignIndex(another device's index) = %v; want ErrBadIndex", err)
	}
}

// sealRaw signs any index, bypassing SignIndex's checks, as an attacker could.
func sealRaw(t *testing.T, key *identity.PrivateKey, idx syncfs.Index) []byte {
	t.Helper()
	payload, err := canon.Marshal(idx)
	must(t, err)
	env, err := identity.Seal(identity.PurposeIndex, payload, key)
	must(t, err)
	data, err := env.Marshal()
	must(t, err)
	return data
}

func TestOpenIndexRejects(t *testing.T) {
	key := identitytest.Key("alice-laptop")
	mutate := func(f func(*syncfs.Index)) syncfs.Index {
		idx := goldenIndex()
		idx.Files = append([]syncfs.FileInfo(nil), idx.Files...)
		f(&idx)
		return idx
	}
	cases := map[string]syncfs.Index{
		"dotdot name":   mutate(func(i *syncfs.Index) { i.Files[3].Name = "../old.txt" }),
		"absolute name": mutate(func(i *syncfs.Index) { i.Files[3].Name = "/etc/passwd" }),
		"NUL in name":   mutate(func(i *syncfs.Index) { i.Files[3].Name = "old\x00.txt" }),
		"unsorted":      mutate(func(i *syncfs.Index) { i.Files[0], i.Files[1] = i.Files[1], i.Files[0] }),
		"duplicate":     mutate(func(i *syncfs.Index) { i.Files[1] = i.Files[0] }),
		"mode bits":     mutate(func(i *syncfs.Index) { i.Files[1].Mode = 0o4755 }),
		"size mismatch": mutate(func(i *syncfs.Index) { i.Files[1].Size++ }),
		"file hash":     mutate(func(i *syncfs.Index) { i.Files[1].FileHash[0] ^= 1 }),
		"block hash": mutate(func(i *syncfs.Index) {
			i.Files[1].Blocks = []syncfs.Block{{Size: 13, Hash: syncfs.HashBytes([]byte("other content"))}}
		}),
		"empty file hash": mutate(func(i *syncfs.Index) { i.Files[1].Size, i.Files[1].Blocks = 0, nil }),
		"no version":      mutate(func(i *syncfs.Index) { i.Files[0].Version = syncfs.Vector{} }),
		"blocks on dir":   mutate(func(i *syncfs.Index) { i.Files[0].Blocks = i.Files[1].Blocks }),
		"empty link":      mutate(func(i *syncfs.Index) { i.Files[2].SymlinkTarget = "" }),
		// A block size is what the receiver allocates to read the block
		// (from the network, a local file or a partial file): it is
		// bounded, whatever the rest of the entry says.
		"block over the size limit": mutate(func(i *syncfs.Index) {
			f := &i.Files[1]
			f.Blocks = []syncfs.Block{{Size: syncfs.MaxBlockSize + 1, Hash: f.Blocks[0].Hash}}
			f.Size, f.FileHash = int64(f.Blocks[0].Size), syncfs.FileHashOf(f.Blocks)
		}),
		"block of 4 GiB": mutate(func(i *syncfs.Index) {
			f := &i.Files[1]
			f.Blocks = []syncfs.Block{{Size: math.MaxUint32, Hash: f.Blocks[0].Hash}}
			f.Size, f.FileHash = int64(f.Blocks[0].Size), syncfs.FileHashOf(f.Blocks)
		}),
		"device not signer": mutate(func(i *syncfs.Index) { i.Device = identitytest.Key("bob").ID().String() }),
		"no folder":         mutate(func(i *syncfs.Index) { i.Folder = "" }),
	}
	for name, idx := range cases {
		if _, _, err := syncfs.OpenIndex(sealRaw(t, key, idx)); err == nil {
			t.Errorf("%s: OpenIndex accepted it", name)
		}
	}
	// A file whose hash does not match its block list is refused as such.
	bad := mutate(func(i *syncfs.Index) { i.Files[1].FileHash = syncfs.HashBytes([]byte("hello, baton\n")) })
	if _, _, err := syncfs.OpenIndex(sealRaw(t, key, bad)); !errors.Is(err, syncfs.ErrBadIndex) || !strings.Contains(err.Error(), "block list") {
		t.Errorf("OpenIndex(file hash of the content, not of the blocks) = %v; want ErrBadIndex about the block list", err)
	}
	// A valid index with a flipped bit anywhere fails.
	good, err := syncfs.SignIndex(key, goldenIndex())
	must(t, err)
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x01
		if _, _, err := syncfs.OpenIndex(bad); err == nil {
			t.Fatalf("OpenIndex accepted the index with byte %d flipped", i)
		}
	}
}

func FuzzOpenIndex(f *testing.F) {
	key := identitytest.Key("alice-laptop")
	good, err := syncfs.SignIndex(key, goldenIndex())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0xa0})
	// The fuzzer cannot forge signatures, so also fuzz the payload decoder
	// directly by signing whatever payload it produces.
	payload, _ := canon.Marshal(goldenIndex())
	f.Add(payload)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, sealBytes(key, data)} {
			idx, _, err := syncfs.OpenIndex(in)
			if err != nil {
				continue
			}
			for _, fi := range idx.Files {
				if syncfs.CheckName(fi.Name) != nil {
					t.Fatalf("OpenIndex accepted name %q", fi.Name)
				}
			}
			// Whatever decodes re-encodes to a valid index.
			if _, err := syncfs.SignIndex(key, idx); err != nil {
				t.Fatalf("decoded index does not re-sign: %v", err)
			}
		}
	})
}

func sealBytes(key *identity.PrivateKey, payload []byte) []byte {
	env, err := identity.Seal(identity.PurposeIndex, payload, key)
	if err != nil {
		return nil
	}
	data, _ := env.Marshal()
	return data
}
