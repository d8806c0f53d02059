package syncfs_test

import (
	"context"
	"testing"
	"time"

	"github.com/baton-sync/baton/syncfs"
	"github.com/baton-sync/baton/syncfs/syncfstest"
)

// A file replaced by another of the same size, mode and modification time
// (a copy that kept its times, renamed over it) is hashed again and its
// new content recorded: its FileID changed. The FakeFS, as Windows, gives
// no FileID in its stat data, so the scanner has to ask for it.
func TestScanReplacedFileSameStat(t *testing.T) {
	fsys := syncfstest.NewFakeFS(true, false)
	old := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := fsys.WriteFile("doc.txt", []byte("first"), 0o644, old); err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFile("other.txt", []byte("stays"), 0o644, old); err != nil {
		t.Fatal(err)
	}
	sc := &syncfs.Scanner{Root: "/w", Self: "D", FS: fsys}
	ctx := context.Background()
	l := syncfs.NewLocal()
	if _, err := sc.Update(ctx, &l); err != nil {
		t.Fatal(err)
	}
	firstHash := l.Entry("doc.txt").FileHash

	// A second scan with nothing changed reuses both hashes.
	st, err := sc.Update(ctx, &l)
	if err != nil {
		t.Fatal(err)
	}
	if st.Reused != 2 || st.Hashed != 0 {
		t.Fatalf("unchanged folder: reused %d, hashed %d; want 2, 0", st.Reused, st.Hashed)
	}

	if err := fsys.WriteFile("copy.tmp", []byte("other"), 0o644, old); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Rename("copy.tmp", "doc.txt"); err != nil {
		t.Fatal(err)
	}
	st, err = sc.Update(ctx, &l)
	if err != nil {
		t.Fatal(err)
	}
	// What a scan of the new content alone records.
	ref := syncfstest.NewFakeFS(true, false)
	if err := ref.WriteFile("doc.txt", []byte("other"), 0o644, old); err != nil {
		t.Fatal(err)
	}
	rl, _, err := (&syncfs.Scanner{Root: "/r", Self: "D", FS: ref}).Scan(ctx, syncfs.NewLocal())
	if err != nil {
		t.Fatal(err)
	}
	got := l.Entry("doc.txt")
	if got.FileHash == firstHash || got.FileHash != rl.Entry("doc.txt").FileHash {
		t.Fatalf("replaced file with the same stat: hash %x kept; want the new content's (stats %+v)", got.FileHash, st)
	}
	if st.Reused != 1 || st.Changed != 1 {
		t.Errorf("reused %d, changed %d; want 1, 1", st.Reused, st.Changed)
	}
}

// replacingFS is a FakeFS whose files, once armed, run replace at their
// first read: the file is replaced while the scanner hashes it.
type replacingFS struct {
	*syncfstest.FakeFS
	replace func()
}

func (r *replacingFS) Open(name string) (syncfs.File, error) {
	f, err := r.FakeFS.Open(name)
	if err != nil {
		return nil, err
	}
	return &replacingFile{File: f, fs: r}, nil
}

type replacingFile struct {
	syncfs.File
	fs *replacingFS
}

func (f *replacingFile) Read(p []byte) (int, error) {
	if r := f.fs.replace; r != nil {
		f.fs.replace = nil
		r()
	}
	return f.File.Read(p)
}

// FileID is the opened file's, as the FakeFS's own files say.
func (f *replacingFile) FileID() (syncfs.FileID, error) {
	return f.File.(interface{ FileID() (syncfs.FileID, error) }).FileID()
}

// A file replaced while it is hashed, by another of the same size and
// times, is hashed again: the FileID of the file opened differs from the
// one at the name afterwards. Without it, the first content's hash would
// be recorded with a stat that the next scans trust.
func TestScanReplacedWhileHashed(t *testing.T) {
	old := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	fsys := &replacingFS{FakeFS: syncfstest.NewFakeFS(false, false)}
	if err := fsys.WriteFile("doc.txt", []byte("first"), 0o644, old); err != nil {
		t.Fatal(err)
	}
	fsys.replace = func() {
		if err := fsys.WriteFile("copy.tmp", []byte("other"), 0o644, old); err != nil {
			t.Error(err)
		}
		if err := fsys.Rename("copy.tmp", "doc.txt"); err != nil {
			t.Error(err)
		}
	}
	ctx := context.Background()
	l, st, err := (&syncfs.Scanner{Root: "/w", Self: "D", FS: fsys, Workers: 1}).Scan(ctx, syncfs.NewLocal())
	if err != nil {
		t.Fatal(err)
	}
	ref := syncfstest.NewFakeFS(false, false)
	if err := ref.WriteFile("doc.txt", []byte("other"), 0o644, old); err != nil {
		t.Fatal(err)
	}
	rl, _, err := (&syncfs.Scanner{Root: "/r", Self: "D", FS: ref}).Scan(ctx, syncfs.NewLocal())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Entry("doc.txt").FileHash, rl.Entry("doc.txt").FileHash; got != want || st.Hashed != 2 {
		t.Errorf("file replaced while hashed: recorded hash %x after %d hashings; want %x (the content now there) after 2", got, st.Hashed, want)
	}
}
