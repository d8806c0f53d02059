package syncfs_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/baton-sync/baton/syncfs"
	"github.com/baton-sync/baton/syncfs/syncfstest"
)

func TestBusyOnWindows(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&os.LinkError{Op: "rename", Old: "a", New: "b", Err: syscall.Errno(32)}, true}, // ERROR_SHARING_VIOLATION
		{&fs.PathError{Op: "remove", Path: "a", Err: syscall.Errno(33)}, true},          // ERROR_LOCK_VIOLATION
		{&os.LinkError{Op: "rename", Old: "a", New: "b", Err: syscall.Errno(5)}, true},  // ERROR_ACCESS_DENIED
		{&os.LinkError{Op: "rename", Old: "a", New: "b", Err: syscall.Errno(2)}, false}, // ERROR_FILE_NOT_FOUND
		{fs.ErrNotExist, false},
		{errors.New("sharing violation"), false},
		{nil, false},
	} {
		if got := syncfs.BusyOnWindows(c.err); got != c.want {
			t.Errorf("BusyOnWindows(%v) = %v; want %v", c.err, got, c.want)
		}
	}
}

// busyFolder is a folder on a FakeFS holding doc.txt ("old"), scanned,
// with the Applier that writes it taking Windows' sharing violations for
// busy and noting its waits instead of waiting.
type busyFolder struct {
	fsys   *syncfstest.FakeFS
	local  syncfs.Local
	ap     *syncfs.Applier
	blocks blockMap
	waits  []time.Duration
}

func newBusyFolder(t *testing.T) *busyFolder {
	t.Helper()
	b := &busyFolder{fsys: syncfstest.NewFakeFS(true, false), local: syncfs.NewLocal(), blocks: blockMap{}}
	if err := b.fsys.WriteFile("doc.txt", []byte("old"), 0o644, fakeTime); err != nil {
		t.Fatal(err)
	}
	sc := &syncfs.Scanner{Root: "/w", Self: devL, FS: b.fsys, Now: func() time.Time { return fakeTime.Add(time.Hour) }}
	if _, err := sc.Update(context.Background(), &b.local); err != nil {
		t.Fatal(err)
	}
	b.ap = &syncfs.Applier{Root: "/w", FS: b.fsys, Source: b.blocks}
	syncfs.SetBusySeams(b.ap, syncfs.BusyOnWindows, func(_ context.Context, d time.Duration) error {
		b.waits = append(b.waits, d)
		return nil
	})
	return b
}

// busyFor makes the first n operations op on name fail as Windows fails
// them when another program holds the file (n < 0: every one).
func (b *busyFolder) busyFor(op, name string, n int) {
	b.fsys.Fail(func(o, nm string) error {
		if o != op || nm != name || n == 0 {
			return nil
		}
		n--
		return syscall.Errno(32) // ERROR_SHARING_VIOLATION
	})
}

// newer is a remote change of doc.txt to data.
func (b *busyFolder) newer(t *testing.T, data string) syncfs.FileInfo {
	t.Helper()
	blocks := mustBlocks(t, data)
	for _, bl := range blocks {
		b.blocks[bl.Hash] = []byte(data)
	}
	f := b.local.Entry("doc.txt")
	f.Blocks, f.Size, f.FileHash, f.ModTime = blocks, int64(len(data)), syncfs.FileHashOf(blocks), fakeTime.Add(time.Minute).UnixNano()
	f.Version = f.Version.Update(devR)
	return f
}

// A file another program holds is replaced once it lets go, within the
// retries; while it holds it past them, the change is reported busy,
// not failed otherwise, and the file and its record stay as they were.
func TestApplyRetriesBusyFile(t *testing.T) {
	t.Run("let go", func(t *testing.T) {
		b := newBusyFolder(t)
		b.busyFor("rename", "doc.txt", 2)
		r := b.ap.Apply(context.Background(), &b.local, syncfs.Plan(&b.local, syncfs.Snapshot{"doc.txt": b.newer(t, "new")}, devL))
		if len(r) != 1 || r[0].Err != nil {
			t.Fatalf("Apply = %+v; want the fetch applied", r)
		}
		if got, _ := b.fsys.ReadFile("doc.txt"); string(got) != "new" {
			t.Errorf("doc.txt = %q; want %q", got, "new")
		}
		if want := syncfs.BusyWaits[:2]; !slices.Equal(b.waits, want) {
			t.Errorf("waited %v; want %v", b.waits, want)
		}
	})
	for _, c := range []struct {
		name, op string
		remote   func(*testing.T, *busyFolder) syncfs.FileInfo
	}{
		{"replace", "rename", func(t *testing.T, b *busyFolder) syncfs.FileInfo { return b.newer(t, "new") }},
		{"delete", "remove", func(t *testing.T, b *busyFolder) syncfs.FileInfo {
			f := b.local.Entry("doc.txt")
			return syncfs.FileInfo{Name: f.Name, Type: f.Type, Deleted: true, ModTime: f.ModTime, Version: f.Version.Update(devR)}
		}},
	} {
		t.Run("held "+c.name, func(t *testing.T) {
			b := newBusyFolder(t)
			before := b.local.Entry("doc.txt")
			b.busyFor(c.op, "doc.txt", -1)
			r := b.ap.Apply(context.Background(), &b.local, syncfs.Plan(&b.local, syncfs.Snapshot{"doc.txt": c.remote(t, b)}, devL))
			if len(r) != 1 || !errors.Is(r[0].Err, syncfs.ErrBusy) || errors.Is(r[0].Err, syncfs.ErrChangedMeanwhile) {
				t.Fatalf("Apply = %+v; want one result, busy", r)
			}
			if !slices.Equal(b.waits, syncfs.BusyWaits) {
				t.Errorf("waited %v; want %v", b.waits, syncfs.BusyWaits)
			}
			if got, _ := b.fsys.ReadFile("doc.txt"); string(got) != "old" {
				t.Errorf("doc.txt = %q; want it as it was", got)
			}
			if got := b.local.Entry("doc.txt"); got.Version.Compare(before.Version) != syncfs.Equal || got.Deleted {
				t.Errorf("doc.txt recorded as %+v; want the record as it was", got)
			}
			// The program lets go: the next attempt applies.
			b.fsys.Fail(nil)
			r = b.ap.Apply(context.Background(), &b.local, syncfs.Plan(&b.local, syncfs.Snapshot{"doc.txt": c.remote(t, b)}, devL))
			if len(r) != 1 || r[0].Err != nil {
				t.Fatalf("Apply again = %+v; want it applied", r)
			}
		})
	}
}
