package datafile_test

import (
	"fmt"
	"log"
	"os"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/collections/datafile"
)

// Start-up and steady state: load, cut off a torn tail if a crash left one,
// then append.
func ExampleStore() {
	dir, err := os.MkdirTemp("", "baton-data")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, err := datafile.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	loaded, err := store.Load(collections.Catalog)
	if err != nil {
		log.Fatal(err) // a *collections.DataFileError: Quarantine and rebuild from peers
	}
	if loaded.TornAt >= 0 {
		var keep [][]byte
		for _, e := range loaded.Entries {
			keep = append(keep, e.Data)
		}
		if err := store.Replace(collections.Catalog, keep); err != nil {
			log.Fatal(err)
		}
	}
	for _, update := range []string{"signed update 1", "signed update 2"} {
		if err := store.Append(collections.Catalog, []byte(update)); err != nil {
			log.Fatal(err)
		}
	}

	loaded, err = store.Load(collections.Catalog)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range loaded.Entries {
		fmt.Printf("offset %d: %s\n", e.Offset, e.Data)
	}
	// Output:
	// offset 16: signed update 1
	// offset 36: signed update 2
}
