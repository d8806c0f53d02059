package folderstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/syncfs"
)

func benchStore(b *testing.B, dir string) *folderstore.Store {
	b.Helper()
	st, err := folderstore.Open(filepath.Join(dir, "snapshots.db"), folderstore.NewDisk(filepath.Join(dir, "blocks")), folderstore.WithServerKey(identitytest.Key("server")))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// duBytes returns the bytes of the regular files under dir.
func duBytes(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

func randomBytes(rng *rand.Rand, n int) []byte {
	out := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			out[i+j] = byte(v >> (8 * j))
		}
	}
	return out
}

// fileFromData chunks data as the agents do (syncfs.HashFile: FastCDC,
// content-defined cuts of 128 KiB to 2 MiB) and returns its entry and a
// reader of its blocks.
func fileFromData(b *testing.B, name string, data []byte, v uint64) (syncfs.FileInfo, func(string, syncfs.Block) ([]byte, error)) {
	blocks, fh, err := syncfs.HashFile(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	fi := syncfs.FileInfo{Name: name, Type: syncfs.TypeFile, Size: int64(len(data)), Mode: 0o644, ModTime: epoch.UnixNano(),
		Blocks: blocks, FileHash: fh, Version: syncfs.Vector{Counters: []syncfs.Counter{{Device: "dev", Value: v}}}}
	read := func(_ string, bl syncfs.Block) ([]byte, error) {
		return data[bl.Offset : bl.Offset+int64(bl.Size)], nil
	}
	return fi, read
}

// BenchmarkVersionsDiskUse stores 10 versions of a 64 MiB file, each after
// a 1 MiB edit at a random place, and reports the store's size on disk
// (blocks and metadata) against the data's size (one version) and against
// the total of the versions.
func BenchmarkVersionsDiskUse(b *testing.B) {
	const size, edit, versions = 64 << 20, 1 << 20, 10
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		st := benchStore(b, dir)
		rng := rand.New(rand.NewPCG(1, 2))
		data := randomBytes(rng, size)
		b.StartTimer()
		for v := range versions {
			if v > 0 {
				off := rng.IntN(size - edit)
				copy(data[off:], randomBytes(rng, edit))
			}
			fi, read := fileFromData(b, "big.bin", data, uint64(v+1))
			if _, skipped, err := st.Append("f", epoch.Add(time.Duration(v)*time.Minute), []syncfs.FileInfo{fi}, "dev", read); err != nil || len(skipped) > 0 {
				b.Fatal(err, skipped)
			}
		}
		b.StopTimer()
		blocks := duBytes(b, filepath.Join(dir, "blocks"))
		meta := duBytes(b, filepath.Join(dir, "snapshots.db"))
		b.ReportMetric(float64(blocks)/(1<<20), "blocks-MiB")
		b.ReportMetric(float64(meta)/(1<<20), "meta-MiB")
		b.ReportMetric(float64(blocks+meta)/size, "disk/data")
		b.ReportMetric(float64(blocks+meta)/(size*versions), "disk/versions")
		if err := st.Verify(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkExport writes out a folder of BATON_BENCH_EXPORT_MIB MiB (1024
// for the 1 GiB figure; the benchmark is skipped unless it is set) made of
// 4 MiB files, and reports the rate.
func BenchmarkExport(b *testing.B) {
	mib, _ := strconv.Atoi(os.Getenv("BATON_BENCH_EXPORT_MIB"))
	if mib <= 0 {
		b.Skip("set BATON_BENCH_EXPORT_MIB (1024 for 1 GiB) to run")
	}
	const fileSize = 4 << 20
	dir := b.TempDir()
	st := benchStore(b, dir)
	rng := rand.New(rand.NewPCG(3, 4))
	var seq uint64
	for i := range (mib << 20) / fileSize {
		fi, read := fileFromData(b, fmt.Sprintf("d%02d/file%04d.bin", i%16, i), randomBytes(rng, fileSize), 1)
		snap, _, err := st.Append("f", epoch.Add(time.Duration(i)*time.Second), []syncfs.FileInfo{fi}, "dev", read)
		if err != nil {
			b.Fatal(err)
		}
		seq = snap.Seq
	}
	b.SetBytes(int64(mib) << 20)
	b.ResetTimer()
	for i := range b.N {
		out := filepath.Join(dir, fmt.Sprint("out", i))
		if err := st.Export("f", seq, out); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.RemoveAll(out); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkLargeFolder appends a folder of BATON_BENCH_FILES files (skipped
// unless set; 1000000 for the million-file case) in snapshots of 10,000
// entries (as a server appends an agent's index page by page), then 100
// snapshots of one changed file each, and times reading its latest tree
// (Tree: a seek per path, each snapshot holding its entries read once,
// reporting the heap in use after the tree is dropped) and its digest
// (TreeDigest: the same reads, holding no entry).
func BenchmarkLargeFolder(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("BATON_BENCH_FILES"))
	if n <= 0 {
		b.Skip("set BATON_BENCH_FILES (such as 1000000) to run")
	}
	const page = 10000
	st := benchStore(b, b.TempDir())
	block := []byte("the one block every file holds")
	fi, read := fileFromData(b, "x", block, 1)
	start := time.Now()
	for i := 0; i < n; i += page {
		changes := make([]syncfs.FileInfo, min(page, n-i))
		for j := range changes {
			changes[j] = fi
			changes[j].Name = fmt.Sprintf("d%03d/f%07d", (i+j)%1000, i+j)
		}
		if _, _, err := st.Append("f", epoch, changes, "dev", read); err != nil {
			b.Fatal(err)
		}
	}
	appendTime := time.Since(start)
	var seq uint64
	for i := range 100 {
		fi.Name = fmt.Sprintf("d%03d/f%07d", i, i)
		snap, _, err := st.Append("f", epoch.Add(time.Duration(i+1)*time.Second), []syncfs.FileInfo{fi}, "dev", read)
		if err != nil {
			b.Fatal(err)
		}
		seq = snap.Seq
	}
	b.ReportMetric(appendTime.Seconds(), "append-s")
	b.Run("Tree", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			tree, err := st.Tree("f", seq)
			if err != nil || len(tree) != n {
				b.Fatal(len(tree), err)
			}
		}
		b.StopTimer()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	})
	b.Run("TreeDigest", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := st.TreeDigest(context.Background(), "f", seq); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// heldBlocks is a BlockStore that holds every block (Has is always true):
// an Append then writes metadata only.
type heldBlocks struct{}

func (heldBlocks) Put(syncfs.Hash, []byte) error { return nil }
func (heldBlocks) Get(syncfs.Hash) ([]byte, error) {
	return nil, errors.New("heldBlocks holds no data")
}
func (heldBlocks) Has(syncfs.Hash) (bool, error)      { return true, nil }
func (heldBlocks) Delete(syncfs.Hash) error           { return nil }
func (heldBlocks) List(func(syncfs.Hash) error) error { return nil }

// BenchmarkAppendWhole appends a folder's whole index of BATON_BENCH_FILES
// entries (100,000 unless set), each a file of one block of its own, as
// ONE Append, as a server does with the first index of a folder it comes
// to (the blocks held already: the metadata alone is measured; with
// BATON_BENCH_DISK set, stored in a Disk too). It reports
// the heap at its largest above what it was before, sampled every
// millisecond (heap-peak-MiB: live and not yet collected, GOGC as set), the bytes
// allocated (alloc-MiB) and the time per entry.
func BenchmarkAppendWhole(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("BATON_BENCH_FILES"))
	if n <= 0 {
		n = 100000
	}
	// With BATON_BENCH_DISK set, the blocks are stored too, in a Disk:
	// each file's 1 KiB, read from memory.
	disk := os.Getenv("BATON_BENCH_DISK") != ""
	rng := rand.New(rand.NewPCG(1, 2))
	changes := make([]syncfs.FileInfo, n)
	content := map[syncfs.Hash][]byte{}
	for i := range changes {
		var h syncfs.Hash
		copy(h[:], randomBytes(rng, len(h)))
		if disk {
			data := randomBytes(rng, 1024)
			h = syncfs.HashBytes(data)
			content[h] = data
		}
		bl := []syncfs.Block{{Size: 1024, Hash: h}}
		changes[i] = syncfs.FileInfo{Name: fmt.Sprintf("d%02d/f%07d", i%100, i), Type: syncfs.TypeFile, Size: 1024, Mode: 0o644,
			ModTime: epoch.UnixNano(), Blocks: bl, FileHash: syncfs.FileHashOf(bl),
			Version: syncfs.Vector{Counters: []syncfs.Counter{{Device: "dev", Value: uint64(i + 1)}}}}
	}
	slices.SortFunc(changes, func(a, b syncfs.FileInfo) int { return strings.Compare(a.Name, b.Name) })
	var peak, allocs uint64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		dir := b.TempDir()
		var blocks folderstore.BlockStore = heldBlocks{}
		if disk {
			blocks = folderstore.NewDisk(filepath.Join(dir, "blocks"))
		}
		st, err := folderstore.Open(filepath.Join(dir, "snapshots.db"), blocks, folderstore.WithServerKey(identitytest.Key("server")))
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		stop, sampled := make(chan struct{}), make(chan uint64)
		go func() { sampled <- sampleHeap(stop) }()
		b.StartTimer()
		read := func(_ string, b syncfs.Block) ([]byte, error) { return content[b.Hash], nil }
		snap, _, err := st.Append("f", epoch.Add(time.Duration(i)), changes, "dev", read)
		b.StopTimer()
		close(stop)
		top := <-sampled
		if err != nil || snap.Count != uint64(n) {
			b.Fatalf("Append = %d entries, %v; want %d", snap.Count, err, n)
		}
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		allocs += after.TotalAlloc - before.TotalAlloc
		peak = max(peak, top-min(top, before.HeapAlloc))
		st.Close()
	}
	b.ReportMetric(float64(peak)/(1<<20), "heap-peak-MiB")
	b.ReportMetric(float64(allocs)/float64(b.N)/(1<<20), "alloc-MiB")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/entry")
}

// sampleHeap returns the largest heap (objects live or not yet
// collected) it saw, reading it every millisecond until stop is closed.
func sampleHeap(stop <-chan struct{}) uint64 {
	m := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var top uint64
	for {
		metrics.Read(m)
		top = max(top, m[0].Value.Uint64())
		select {
		case <-stop:
			return top
		case <-tick.C:
		}
	}
}
