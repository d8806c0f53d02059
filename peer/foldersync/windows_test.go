package foldersync

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/syncfs"
)

// A change larger than a plan's window is applied a window at a time and
// arrives whole on every host: new files, a moved directory, a deleted
// tree (never brought back), a directory that became a file and a file
// that became a directory, with no conflict copy anywhere.
func TestChangeAppliedInWindows(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, func(c *Config) {
		c.planWindow = 3
	})
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	for i := range 5 {
		alice.write(t, fmt.Sprintf("old/x/f%d", i), fmt.Sprintf("moved %d", i))
		alice.write(t, fmt.Sprintf("gone/sub/g%d", i), fmt.Sprintf("deleted %d", i))
		alice.write(t, fmt.Sprintf("dir2file/h%d", i), fmt.Sprintf("replaced %d", i))
		alice.write(t, fmt.Sprintf("keep/k%d", i), fmt.Sprintf("kept %d", i))
	}
	alice.write(t, "file2dir", "a file")
	n.waitEqual(alice, server, bob)

	if err := os.Rename(filepath.Join(alice.root, "old"), filepath.Join(alice.root, "new")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gone", "dir2file", "file2dir"} {
		if err := os.RemoveAll(filepath.Join(alice.root, name)); err != nil {
			t.Fatal(err)
		}
	}
	alice.write(t, "dir2file", "now a file")
	alice.write(t, "file2dir/inner", "now in a directory")
	for i := range 5 {
		alice.write(t, fmt.Sprintf("keep/k%d", i), fmt.Sprintf("changed %d", i))
		alice.write(t, fmt.Sprintf("added/a%d", i), fmt.Sprintf("added %d", i))
	}
	n.running(alice).requestRescan()
	waitFor(t, 60*time.Second, "the change on bob", func() bool {
		_, err := os.Lstat(filepath.Join(bob.root, "gone"))
		return bob.read(t, "added/a4") == "added 4" && os.IsNotExist(err)
	})
	n.waitEqual(alice, server, bob)
	for _, d := range []*testNode{alice, server, bob} {
		tree := readTree(t, d.root)
		for name := range tree {
			if name == "gone" || strings.HasPrefix(name, "gone/") || name == "old" || strings.HasPrefix(name, "old/") {
				t.Errorf("%s: %s is back", d.name, name)
			}
			if syncfs.IsConflictCopy(name) {
				t.Errorf("%s: conflict copy %s", d.name, name)
			}
		}
		if got := tree["dir2file"]; got.kind != "file" || got.data != "now a file" {
			t.Errorf("%s: dir2file = %+v; want the file", d.name, got)
		}
		if got := tree["file2dir/inner"]; got.data != "now in a directory" {
			t.Errorf("%s: file2dir/inner = %+v", d.name, got)
		}
		if got := tree["new/x/f4"]; got.data != "moved 4" {
			t.Errorf("%s: new/x/f4 = %+v", d.name, got)
		}
		if st := n.status(d); len(st.Failed) != 0 || st.Stuck {
			t.Errorf("%s: failed %v, stuck %v", d.name, st.Failed, st.Stuck)
		}
	}
}
