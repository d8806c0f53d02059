package syncfs

import "testing"

// The decision to trust a recorded stat: size, times and mode must match,
// and the FileIDs too where both sides know theirs.
func TestDiskStatSameFileID(t *testing.T) {
	base := DiskStat{Size: 4, ModTime: 1e18, Mode: 0o644}
	win := FileID{Volume: 0xdead, Index: 7}
	for _, c := range []struct {
		name string
		a, b DiskStat
		same bool
	}{
		{"identical, no identity", base, base, true},
		{"identical, same identity", base.withID(win), base.withID(win), true},
		{"another index, same size and mtime", base.withID(win), base.withID(FileID{Volume: 0xdead, Index: 8}), false},
		{"another volume", base.withID(win), base.withID(FileID{Volume: 0xbeef, Index: 7}), false},
		{"another high index (ReFS)", base.withID(win), base.withID(FileID{Volume: 0xdead, Index: 7, IndexHigh: 1}), false},
		{"unix inode changed", DiskStat{Size: 4, Inode: 10}, DiskStat{Size: 4, Inode: 11}, false},
		{"recorded without identity", base, base.withID(win), true},
		{"identity unreadable now", base.withID(win), base, true},
		{"same identity, other mtime", base.withID(win), DiskStat{Size: 4, ModTime: 2e18, Mode: 0o644}.withID(win), false},
	} {
		if got := c.a.same(c.b); got != c.same {
			t.Errorf("%s: same = %v, want %v", c.name, got, c.same)
		}
		if got := c.b.same(c.a); got != c.same {
			t.Errorf("%s (swapped): same = %v, want %v", c.name, got, c.same)
		}
	}
}
