package syncfs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/baton-sync/baton/syncfs"
)

// folderBlocks serves blocks from another folder's files, as a peer would
// over the network.
type folderBlocks struct {
	root  string
	local syncfs.Local
}

func (s folderBlocks) Block(_ context.Context, h syncfs.Hash, size uint32) (syncfs.VerifiedBlock, error) {
	for _, f := range s.local.All() {
		for _, b := range f.Blocks {
			if b.Hash == h && b.Size == size {
				data, err := os.ReadFile(filepath.Join(s.root, filepath.FromSlash(f.Name)))
				if err != nil {
					return syncfs.VerifiedBlock{}, err
				}
				// A peer's bytes are checked before the applier sees them.
				return syncfs.VerifyBlock(data[b.Offset:b.Offset+int64(b.Size)], h)
			}
		}
	}
	return syncfs.VerifiedBlock{}, fmt.Errorf("no block %x", h[:4])
}

// Two folders on one machine: scan both, plan B's take of A's changes and
// apply it to B.
func ExampleApplier() {
	ctx := context.Background()
	a, _ := os.MkdirTemp("", "folder-a")
	b, _ := os.MkdirTemp("", "folder-b")
	defer os.RemoveAll(a)
	defer os.RemoveAll(b)
	os.MkdirAll(filepath.Join(a, "docs"), 0o755)
	os.WriteFile(filepath.Join(a, "docs", "hello.txt"), []byte("hello"), 0o644)

	localA, _, _ := (&syncfs.Scanner{Root: a, Self: "12D3KooWDeviceA"}).Scan(ctx, syncfs.NewLocal())
	localB, _, _ := (&syncfs.Scanner{Root: b, Self: "12D3KooWDeviceB"}).Scan(ctx, syncfs.NewLocal())

	plan := syncfs.Plan(&localB, localA.Snapshot(), "12D3KooWDeviceB")
	ap := &syncfs.Applier{Root: b, Source: folderBlocks{a, localA}}
	for _, r := range ap.Apply(ctx, &localB, plan) {
		fmt.Println(r.Action, r.Err)
	}
	data, _ := os.ReadFile(filepath.Join(b, "docs", "hello.txt"))
	fmt.Printf("%s\n", data)
	// Output:
	// mkdir docs <nil>
	// fetch docs/hello.txt <nil>
	// hello
}
