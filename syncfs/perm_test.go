package syncfs

import (
	"os"
	"path/filepath"
	"testing"
)

// Where permission bits are ignored (Windows), the executable bit that
// came in the index stays recorded, a new file gets 0644, and a mode
// read back from the disk, changed or not, is no change: no new version.
// Where they are not, the same chmod is a change.
func TestScanIgnorePerms(t *testing.T) {
	for _, ignore := range []bool{true, false} {
		root := t.TempDir()
		put(t, root, "tool.sh", []byte("#!/bin/sh\n"), 0o600, baseTime)
		put(t, root, "new.txt", []byte("new"), 0o640, baseTime)
		s := scanner(root, devA)
		s.IgnorePerms = ignore
		l, _ := mustScan(t, s, Local{})
		wantNew := uint32(0o640)
		if ignore {
			wantNew = 0o644
		}
		if got := l.Entry("new.txt").Mode; got != wantNew {
			t.Errorf("ignore=%v: new.txt recorded with mode %o; want %o", ignore, got, wantNew)
		}
		// As if the entry had come from a peer with the executable bit.
		f := l.Entry("tool.sh")
		f.Mode = 0o755
		l.Set(f)
		v := f.Version
		if err := os.Chmod(filepath.Join(root, "tool.sh"), 0o640); err != nil {
			t.Fatal(err)
		}
		l, st := mustScan(t, s, l)
		got := l.Entry("tool.sh")
		if ignore && (got.Mode != 0o755 || got.Version.Compare(v) != Equal || st.Changed != 0) {
			t.Errorf("ignore perms: tool.sh mode %o version %v (changed %d); want 755 kept at %v, nothing changed", got.Mode, got.Version, st.Changed, v)
		}
		if !ignore && (got.Mode != 0o640 || got.Version.Compare(v) != Greater) {
			t.Errorf("perms kept: tool.sh mode %o version %v; want 640 at a newer version than %v", got.Mode, got.Version, v)
		}
	}
}

func TestRecordedPerm(t *testing.T) {
	file := FileInfo{Name: "f", Type: TypeFile, Mode: 0o755}
	for _, tc := range []struct {
		ignore bool
		prev   FileInfo
		t      FileType
		disk   os.FileMode
		want   uint32
	}{
		{false, file, TypeFile, 0o600, 0o600},
		{true, file, TypeFile, 0o666, 0o755},
		{true, FileInfo{}, TypeFile, 0o666, 0o644},
		{true, FileInfo{}, TypeDir, 0o777, 0o755},
		{true, FileInfo{Name: "f", Type: TypeFile, Mode: 0o755, Deleted: true}, TypeFile, 0o666, 0o644},
		{true, file, TypeDir, 0o777, 0o755},
		{true, FileInfo{Name: "d", Type: TypeDir, Mode: 0o700}, TypeDir, 0o777, 0o700},
	} {
		if got := recordedPerm(tc.ignore, tc.prev, tc.t, tc.disk); got != tc.want {
			t.Errorf("recordedPerm(%v, %+v, %v, %o) = %o; want %o", tc.ignore, tc.prev, tc.t, tc.disk, got, tc.want)
		}
	}
}
