package folderstore_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/syncfs"
)

func ExampleStore() {
	dir, err := os.MkdirTemp("", "folderstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	blocks := folderstore.NewDisk(filepath.Join(dir, "blocks"))
	st, err := folderstore.Open(filepath.Join(dir, "snapshots.db"), blocks)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	// Blocks first, each durable when Put returns; then the snapshot.
	content := []byte("the only block of the only file")
	h := syncfs.HashBytes(content)
	if err := blocks.Put(h, content); err != nil {
		log.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	if _, err := st.Commit("photos", at, []byte("signed index bytes"), []syncfs.Hash{h}); err != nil {
		log.Fatal(err)
	}

	snaps, err := st.Snapshots("photos")
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range snaps {
		fmt.Println(s.Folder, s.Seq, s.At().Format(time.RFC3339), len(s.Blocks), "block")
	}
	fmt.Println("verify:", st.Verify())
	// Output:
	// photos 1 2026-12-01T09:00:00Z 1 block
	// verify: <nil>
}

func ExampleStore_Append() {
	dir, err := os.MkdirTemp("", "folderstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := folderstore.Open(filepath.Join(dir, "snapshots.db"), folderstore.NewDisk(filepath.Join(dir, "blocks")))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	// The server's copy of the folder gives the blocks the store lacks.
	content := []byte("hello")
	blocks := []syncfs.Block{{Size: uint32(len(content)), Hash: syncfs.HashBytes(content)}}
	hello := syncfs.FileInfo{Name: "notes/hello.txt", Type: syncfs.TypeFile, Size: int64(len(content)), Blocks: blocks,
		FileHash: syncfs.FileHashOf(blocks), Version: syncfs.Vector{Counters: []syncfs.Counter{{Device: "laptop", Value: 1}}}}
	read := func(name string, b syncfs.Block) ([]byte, error) { return content, nil }
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	if _, _, err := st.Append("photos", at, []syncfs.FileInfo{hello}, "laptop", read); err != nil {
		log.Fatal(err)
	}
	gone := hello
	gone.Deleted, gone.Size, gone.Blocks, gone.FileHash = true, 0, nil, syncfs.Hash{}
	gone.Version = syncfs.Vector{Counters: []syncfs.Counter{{Device: "phone", Value: 2}}}
	if _, _, err := st.Append("photos", at.Add(time.Hour), []syncfs.FileInfo{gone}, "phone", read); err != nil {
		log.Fatal(err)
	}

	hist, err := st.History("photos", "notes")
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range hist {
		fmt.Println(v.Seq, v.Time.Format(time.Kitchen), v.Device, v.Entry.Name, "deleted:", v.Entry.Deleted)
	}
	// Restore the folder as it was at 9:30 into a plain directory.
	seq, err := st.SeqAt("photos", at.Add(30*time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	out := filepath.Join(dir, "restored")
	if err := st.Export("photos", seq, out); err != nil {
		log.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, "notes", "hello.txt"))
	fmt.Printf("%s %v\n", data, err)
	fmt.Println("policy:", folderstore.DefaultPolicy)
	// Output:
	// 1 9:00AM laptop notes/hello.txt deleted: false
	// 2 10:00AM phone notes/hello.txt deleted: true
	// hello <nil>
	// policy: all:1d,daily:30d,weekly:365d
}
