//go:build linux && !race

package syncfs

import (
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/baton-sync/baton/internal/boltmap/boltmaptest"
)

// Dropping a peer's index does not make it resident: the process's peak
// grows by much less than the pages the index takes. (Not under the race
// detector, whose shadow memory grows the peak with every allocation.)
func TestDropLetsGoOfMappedPages(t *testing.T) {
	path, ps, files := peerStoreOf(t, 100_000)
	// Many small reads, in no order, do not make the file resident
	// either: the store lets go of its pages every so many entries,
	// whichever reads touched them.
	for _, i := range rand.Perm(len(files))[:20_000] {
		if got, err := ps.Get("k", []string{files[i].Name}); err != nil || len(got) != 1 {
			t.Fatalf("Get(%s) = %v, %v", files[i].Name, got, err)
		}
	}
	if rss := boltmaptest.MappedRSS(t, path); rss > 6<<20 {
		t.Errorf("20,000 reads of an entry each left %d bytes of the store resident", rss)
	}
	files = nil
	// The heap kept small, so that the peak is the store's.
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak resident size: %v", err)
	}
	before := procStatusKiB(t, "VmRSS")
	if err := ps.Drop("k"); err != nil {
		t.Fatal(err)
	}
	grew := procStatusKiB(t, "VmHWM") - before
	t.Logf("dropping 100,000 entries grew the peak by %d KiB", grew)
	// bbolt's DeleteBucket reads every page of the bucket: 14 MiB here.
	if grew > 8<<10 {
		t.Errorf("dropping 100,000 entries grew the peak by %d KiB; want under 8 MiB", grew)
	}
}

// procStatusKiB returns a field of /proc/self/status, in KiB.
func procStatusKiB(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field+":" {
			v, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
