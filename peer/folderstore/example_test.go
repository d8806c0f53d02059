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
