package memtrim

import (
	"slices"
	"testing"
)

// Of the executable's mappings, only the read-only ones without pages of
// their own are let go of.
func TestExecutableSpans(t *testing.T) {
	const exe = "/opt/baton/bin/baton"
	smaps := `00400000-01258000 r-xp 00000000 fe:00 5325921                            /opt/baton/bin/baton
Size:              14688 kB
Rss:               13344 kB
Anonymous:             0 kB
01258000-0245c000 r--p 00e58000 fe:00 5325921                            /opt/baton/bin/baton
Size:              18448 kB
Rss:               14480 kB
Anonymous:             0 kB
0245c000-02505000 rw-p 0205c000 fe:00 5325921                            /opt/baton/bin/baton
Size:                676 kB
Anonymous:           120 kB
02505000-02600000 r--p 02105000 fe:00 5325921                            /opt/baton/bin/baton
Size:               1004 kB
Anonymous:             8 kB
02600000-02700000 r--p 00000000 fe:00 777                                /opt/baton/bin/baton.old
Anonymous:             0 kB
7f0000000000-7f0000100000 rw-p 00000000 00:00 0 
Anonymous:          1024 kB
7f0000200000-7f0000300000 r-xp 00000000 fe:00 99                         /usr/lib/libc.so.6
Anonymous:             0 kB
`
	want := []Span{{0x400000, 0x1258000}, {0x1258000, 0x245c000}}
	if got := ExecutableSpans(smaps, exe); !slices.Equal(got, want) {
		t.Errorf("ExecutableSpans = %x; want %x", got, want)
	}
	if got := ExecutableSpans(smaps, "/nowhere"); len(got) != 0 {
		t.Errorf("ExecutableSpans of another file = %x; want none", got)
	}
}
