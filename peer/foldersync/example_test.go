package foldersync_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
)

// An engine on a device: it syncs one folder with the folder's hosting
// server, as the Catalog (behind view) says, until the context ends.
func ExampleEngine() {
	key := identitytest.Key("laptop")  // a real host loads its key file
	h, err := peer.ListenLoopback(key) // a node gives the engine its own host's transport
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	var view foldersync.Access // the node's snapshot of the collections
	e, err := foldersync.New(foldersync.Config{
		Transport: h.Transport(),
		Key:       key,
		DataDir:   "/var/lib/baton",
		Access:    func() foldersync.Access { return view },
	})
	if err != nil {
		log.Fatal(err)
	}
	e.SetFolders(map[string]string{"photos": "/home/alice/Photos"})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	time.Sleep(time.Second)
	if st, ok := e.Status("photos"); ok {
		fmt.Printf("%s: %s, %d files, %d still needed\n", st.ID, st.State, st.LocalFiles, st.NeedFiles)
	}
	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
}
