package syncfs

import (
	"fmt"
	"testing"
)

// BenchmarkScan measures scanning 10,000 files of 4 KiB in 100 directories
// from nothing (cold: every file hashed; the data is in the page cache) and
// again with the previous Local (warm: stats only), and hashing one
// 256 MiB file. The scanner's clock runs an hour ahead so freshly written
// files count as settled, as they would on a real rescan.
func BenchmarkScan(b *testing.B) {
	small := b.TempDir()
	for d := range 100 {
		for f := range 100 {
			put(b, small, fmt.Sprintf("d%02d/f%03d", d, f), rnd(uint64(d*100+f), 4<<10), 0o644, baseTime)
		}
	}
	s := scanner(small, devA)
	b.Run("cold-10k-files", func(b *testing.B) {
		for b.Loop() {
			mustScan(b, s, Local{})
		}
		b.ReportMetric(float64(10_000*b.N)/b.Elapsed().Seconds(), "files/s")
	})
	b.Run("warm-10k-files", func(b *testing.B) {
		prev, _ := mustScan(b, s, Local{})
		for b.Loop() {
			if _, st := mustScan(b, s, prev); st.Hashed != 0 {
				b.Fatalf("warm scan hashed %d files", st.Hashed)
			}
		}
		b.ReportMetric(float64(10_000*b.N)/b.Elapsed().Seconds(), "files/s")
	})
	b.Run("file-256MiB", func(b *testing.B) {
		big := b.TempDir()
		put(b, big, "big", rnd(7, 256<<20), 0o644, baseTime)
		s := scanner(big, devA)
		b.SetBytes(256 << 20)
		for b.Loop() {
			mustScan(b, s, Local{})
		}
	})
}
