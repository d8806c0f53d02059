//go:build linux

package memtrim

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// ReleaseExecutable lets go of the test binary's pages: fewer of its
// read-only mappings are resident afterwards, and the process runs on.
func TestReleaseExecutable(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	before := exeResident(t, exe)
	if n := ReleaseExecutable(); n == 0 {
		t.Fatal("ReleaseExecutable let go of nothing")
	}
	after := exeResident(t, exe)
	t.Logf("%d KiB of the executable resident before, %d after", before, after)
	if after >= before {
		t.Errorf("%d KiB of the executable resident after ReleaseExecutable, %d before", after, before)
	}
}

// exeResident returns the resident KiB of exe's read-only mappings in
// this process, from /proc/self/smaps.
func exeResident(t *testing.T, exe string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var (
		kib int64
		in  bool
	)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			in = len(f) >= 6 && f[5] == exe && !strings.Contains(f[1], "w")
		case in && len(f) >= 2 && f[0] == "Rss:":
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			kib += n
		}
	}
	return kib
}
