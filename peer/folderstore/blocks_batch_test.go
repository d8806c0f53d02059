package folderstore_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/syncfs"
)

// TestDiskPutBatch stores a batch holding a block twice and a block held
// already (written long ago): every block reads back checked, the held one
// counts as written now, and no temporary file is left; a batch with a
// block whose content does not match its hash stores nothing.
func TestDiskPutBatch(t *testing.T) {
	dir := t.TempDir()
	d := folderstore.NewDisk(filepath.Join(dir, "blocks"))
	datas := [][]byte{[]byte("one"), []byte("two"), []byte("three"), []byte("one"), []byte("held before")}
	held := syncfs.HashBytes(datas[4])
	if err := d.Put(held, datas[4]); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(blockFile(dir, held), old, old); err != nil {
		t.Fatal(err)
	}
	var hs []syncfs.Hash
	for _, b := range datas {
		hs = append(hs, syncfs.HashBytes(b))
	}
	if err := d.PutBatch(hs, datas); err != nil {
		t.Fatal(err)
	}
	for i, h := range hs {
		got, err := d.Get(h)
		if err != nil || string(got) != string(datas[i]) {
			t.Fatalf("block %d = %q, %v; want %q", i, got, err, datas[i])
		}
	}
	if w, err := d.Written(held); err != nil || w.Before(time.Now().Add(-time.Minute)) {
		t.Fatalf("the block held before was last written %v (%v); want now", w, err)
	}
	n := 0
	err := filepath.WalkDir(filepath.Join(dir, "blocks"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		if err == nil && e.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil || n != 4 {
		t.Fatalf("%d block files (%v); want 4", n, err)
	}

	bad := [][]byte{[]byte("fine"), []byte("not what its hash says")}
	badHs := []syncfs.Hash{syncfs.HashBytes(bad[0]), syncfs.HashBytes([]byte("something else"))}
	if err := d.PutBatch(badHs, bad); !errors.Is(err, folderstore.ErrCorruptBlock) {
		t.Fatalf("PutBatch of a block that does not match its hash = %v; want ErrCorruptBlock", err)
	}
	if ok, _ := d.Has(badHs[0]); ok {
		t.Fatal("a batch refused stored a block")
	}
}
