package folderstore_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/baton-sync/baton/syncfs"
)

// fileOf returns an entry for name holding data in one block, by dev.
func fileOf(name string, data []byte, dev string, v uint64) syncfs.FileInfo {
	h := syncfs.HashBytes(data)
	blocks := []syncfs.Block{{Size: uint32(len(data)), Hash: h}}
	return syncfs.FileInfo{Name: name, Type: syncfs.TypeFile, Size: int64(len(data)), Blocks: blocks,
		FileHash: syncfs.FileHashOf(blocks), Version: syncfs.Vector{Counters: []syncfs.Counter{{Device: dev, Value: v}}}}
}

func TestAppendHistoryExport(t *testing.T) {
	dir := t.TempDir()
	st, _ := openStore(t, dir)
	content := map[syncfs.Hash][]byte{}
	read := func(_ string, b syncfs.Block) ([]byte, error) { return content[b.Hash], nil }
	put := func(fi syncfs.FileInfo, data []byte) syncfs.FileInfo { content[fi.Blocks[0].Hash] = data; return fi }

	a1 := put(fileOf("docs/a.txt", []byte("one"), "dev1", 1), []byte("one"))
	if _, skipped, err := st.Append("f", epoch, []syncfs.FileInfo{a1}, "dev1", read); err != nil || len(skipped) > 0 {
		t.Fatal(err, skipped)
	}
	a2 := put(fileOf("docs/a.txt", []byte("two"), "dev2", 2), []byte("two"))
	lost := fileOf("b.txt", []byte("never read"), "dev2", 2)
	if _, skipped, err := st.Append("f", epoch.Add(1e9), []syncfs.FileInfo{a2, lost}, "dev2", read); err != nil || len(skipped) != 1 || skipped[0] != "b.txt" {
		t.Fatalf("skipped %v, err %v; want b.txt skipped", skipped, err)
	}
	del := a2
	del.Deleted, del.Blocks, del.Size = true, nil, 0
	if _, _, err := st.Append("f", epoch.Add(2e9), []syncfs.FileInfo{del}, "dev1", read); err != nil {
		t.Fatal(err)
	}
	hist, err := st.History("f", "docs")
	if err != nil || len(hist) != 3 || hist[0].Device != "dev1" || hist[1].Device != "dev2" || !hist[2].Entry.Deleted {
		t.Fatalf("history %+v, err %v", hist, err)
	}
	seq, err := st.SeqAt("f", epoch.Add(1500e6))
	if err != nil || seq != 2 {
		t.Fatalf("SeqAt = %d, %v; want 2", seq, err)
	}
	out := filepath.Join(dir, "out")
	if err := st.Export("f", seq, out); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(out, "docs", "a.txt")); err != nil || string(got) != "two" {
		t.Fatalf("exported %q, %v; want two", got, err)
	}
	if _, err := os.Stat(filepath.Join(out, "b.txt")); !os.IsNotExist(err) {
		t.Fatalf("b.txt exported though its blocks were never stored: %v", err)
	}
	if _, err := st.SeqAt("f", epoch.Add(-1)); err == nil {
		t.Fatal("SeqAt before the first snapshot succeeded")
	}
}
