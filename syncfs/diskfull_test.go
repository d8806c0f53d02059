package syncfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-sync/baton/syncfs"
	"github.com/baton-sync/baton/syncfs/syncfstest"
)

// TestApplyDiskFull applies changes to a folder on a filesystem too small
// for them, alone (a large file) and in a batch (small files): each write
// that does not fit fails with ENOSPC and leaves the file it was to
// replace as it was, no temporary file is renamed into place, the batch's
// temporary files are removed, and once there is room a retry applies
// everything and leaves no temporary file.
func TestApplyDiskFull(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	resize := syncfstest.SmallDisk(t, dst, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"big"}
	write("big", random(256<<10))
	for i := range 10 {
		names = append(names, fmt.Sprintf("small-%d", i))
		write(names[i+1], random(4<<10))
	}
	scan := func(root, self string, l syncfs.Local) syncfs.Local {
		t.Helper()
		sc := &syncfs.Scanner{Root: root, Self: self, Now: func() time.Time { return time.Now().Add(time.Hour) }}
		l, _, err := sc.Scan(context.Background(), l, "")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a := scan(src, "A", syncfs.NewLocal())
	b := scan(dst, "B", syncfs.NewLocal())
	apply := func() (failed []syncfs.Result) {
		t.Helper()
		plan := syncfs.Plan(&b, a.Snapshot(), "B")
		ap := &syncfs.Applier{Root: dst, Source: fileSource(t, src, a)}
		var alone, batch []syncfs.Action
		for _, act := range plan {
			if syncfs.Batchable(act, &b) && act.File.Size < 1<<20 {
				batch = append(batch, act)
			} else {
				alone = append(alone, act)
			}
		}
		res := ap.ApplyBatch(context.Background(), &b, batch)
		res = append(res, ap.Apply(context.Background(), &b, alone)...)
		for _, r := range res {
			if r.Err != nil {
				failed = append(failed, r)
			}
		}
		return failed
	}
	if failed := apply(); len(failed) > 0 {
		t.Fatalf("the first sync, which fits: %v", failed[0].Err)
	}
	before := readFiles(t, dst, names)

	// Every file grows past what the filesystem holds: big to 3 MiB, the
	// small ones to 200 KiB each.
	write("big", random(3<<20))
	for _, n := range names[1:] {
		write(n, random(200<<10))
	}
	a = scan(src, "A", a)
	failed := apply()
	full := 0
	for _, r := range failed {
		if errors.Is(r.Err, syscall.ENOSPC) {
			full++
		} else {
			t.Errorf("%v: %v; want ENOSPC or success", r.Action, r.Err)
		}
	}
	if full == 0 {
		t.Fatal("no write failed with ENOSPC: the filesystem is not full")
	}
	after := readFiles(t, dst, names)
	for _, r := range failed {
		if n := r.Action.Name; !bytes.Equal(after[n], before[n]) {
			t.Errorf("%s: %d bytes after a write that failed; want its old %d bytes", n, len(after[n]), len(before[n]))
		}
	}
	want := readFiles(t, src, names)
	for _, n := range names {
		if !bytes.Equal(after[n], before[n]) && !bytes.Equal(after[n], want[n]) {
			t.Errorf("%s is neither its old content nor its new one", n)
		}
	}
	// Only the large file's partial file may stay, to be resumed.
	for _, tmp := range tempFiles(t, dst) {
		if fi, err := os.Stat(filepath.Join(dst, tmp)); err != nil || fi.Size() != 3<<20 {
			t.Errorf("temporary file %s left (%v); want only the partial file of big", tmp, err)
		}
	}
	t.Logf("%d of %d writes failed with ENOSPC", full, len(names))

	// Room again: the retry takes everything.
	resize(16 << 20)
	b = scan(dst, "B", b)
	if failed := apply(); len(failed) > 0 {
		t.Fatalf("retry with room: %v", failed[0].Err)
	}
	got := readFiles(t, dst, names)
	for _, n := range names {
		if !bytes.Equal(got[n], want[n]) {
			t.Errorf("%s after the retry: %d bytes, not the new content", n, len(got[n]))
		}
	}
	if tmp := tempFiles(t, dst); len(tmp) > 0 {
		t.Errorf("temporary files left after the retry: %v", tmp)
	}
}

// readFiles reads names under root.
func readFiles(t *testing.T, root string, names []string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(root, n))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = b
	}
	return out
}

// tempFiles lists the applier's temporary files in root.
func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), syncfs.TempPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// fileSource serves the blocks of the files of l, in the folder at root.
func fileSource(t *testing.T, root string, l syncfs.Local) syncfs.BlockSource {
	t.Helper()
	blocks := map[syncfs.Hash][]byte{}
	for n, f := range l.All() {
		if f.Deleted || f.Type != syncfs.TypeFile {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, n))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range f.Blocks {
			blocks[b.Hash] = data[b.Offset : b.Offset+int64(b.Size)]
		}
	}
	return blockMap(blocks)
}

type blockMap map[syncfs.Hash][]byte

func (m blockMap) Block(_ context.Context, h syncfs.Hash, size uint32) (syncfs.VerifiedBlock, error) {
	data, ok := m[h]
	if !ok || len(data) != int(size) {
		return syncfs.VerifiedBlock{}, fmt.Errorf("no block %x", h[:4])
	}
	return syncfs.VerifyBlock(data, h)
}
