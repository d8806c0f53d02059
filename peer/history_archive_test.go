package peer

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/syncfs"
)

// The archiver's first change of a folder is its whole index: with an
// empty store it becomes the first snapshot, whole; at a restart, when
// nothing changed, it adds nothing, and what changed is all it adds. A
// file changed again before it is read is left out and logged.
func TestArchiverWholeIndex(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	st, err := folderstore.Open(filepath.Join(dir, "snapshots.db"), folderstore.NewDisk(filepath.Join(dir, "blocks")))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs bytes.Buffer
	now := time.Unix(1_000_000, 0)
	a := newArchiver(st, slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { now = now.Add(time.Second); return now })
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sc := &syncfs.Scanner{Root: root, Self: "server"}
	local := syncfs.NewLocal()
	scan := func() []syncfs.FileInfo {
		if _, err := sc.Update(context.Background(), &local); err != nil {
			t.Fatal(err)
		}
		return local.Files.Sorted()
	}
	snapshots := func() []folderstore.Snapshot {
		s, err := st.Snapshots("f")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	write("a.txt", "A")
	write("b.txt", "B")
	whole := scan()
	if err := a.write(archiveJob{folder: "f", root: root, changes: whole, whole: true}); err != nil {
		t.Fatal(err)
	}
	if s := snapshots(); len(s) != 1 || len(s[0].Entries) != 2 {
		t.Fatalf("after the first whole index: %d snapshots (%+v); want one of both files", len(s), s)
	}
	if err := a.write(archiveJob{folder: "f", root: root, changes: whole, whole: true}); err != nil {
		t.Fatal(err)
	}
	if s := snapshots(); len(s) != 1 {
		t.Fatalf("the same whole index again made %d snapshots; want still 1", len(s))
	}
	write("b.txt", "B2")
	write("c.txt", "C")
	whole = scan()
	write("b.txt", "B3, written after the scan") // the indexed blocks are gone
	if err := a.write(archiveJob{folder: "f", root: root, changes: whole, whole: true}); err != nil {
		t.Fatal(err)
	}
	s := snapshots()
	if len(s) != 2 {
		t.Fatalf("after a change: %d snapshots; want 2", len(s))
	}
	var names []string
	for _, fi := range s[1].Entries {
		names = append(names, fi.Name)
	}
	if len(names) != 1 || names[0] != "c.txt" {
		t.Errorf("the second snapshot holds %v; want only c.txt (a.txt unchanged, b.txt changed again before it was read)", names)
	}
	if !bytes.Contains(logs.Bytes(), []byte("b.txt")) {
		t.Errorf("b.txt left out of the history without a log: %s", logs.String())
	}
	tree, err := st.Tree("f", s[len(s)-1].Seq)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := st.ReadFile(tree["a.txt"], &buf); err != nil || buf.String() != "A" {
		t.Errorf("a.txt in the history = %q, %v; want A", buf.String(), err)
	}
}
