package foldersync

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/syncfs"
)

// The datasets of issue 4's benchmark, scaled by flags (the full sizes are
// slow under -race):
//
//	go test -run '^$' -bench Transfer ./peer/foldersync/
//	go test -run '^$' -bench Transfer/big -foldersync.big=1073741824 ./peer/foldersync/
var (
	benchBig   = flag.Int64("foldersync.big", 256<<20, "bytes of the big-files dataset (16 files)")
	benchSmall = flag.Int("foldersync.small", 2000, "files of 4 KiB in the small-files dataset (100 directories)")
	benchEdit  = flag.Int64("foldersync.editfile", 64<<20, "size of the file a 1 MiB edit is made in")
)

// BenchmarkTransfer times datasets from the moment they are in alice's
// folder until bob's index holds them, verified (bob's applier checked
// every block and the whole file before recording it), with both devices
// syncing through the server on 127.0.0.1.
func BenchmarkTransfer(b *testing.B) {
	b.Run("big", func(b *testing.B) {
		per := *benchBig / 16
		benchDataset(b, func(dir string) int64 {
			for i := range 16 {
				writeFile(b, filepath.Join(dir, fmt.Sprintf("file%02d.bin", i)), randomBytes(int(per)))
			}
			return 16 * per
		})
	})
	b.Run("small", func(b *testing.B) {
		n := *benchSmall
		benchDataset(b, func(dir string) int64 {
			for i := range n {
				writeFile(b, filepath.Join(dir, fmt.Sprintf("d%02d", i%100), fmt.Sprintf("f%05d", i)), randomBytes(4096))
			}
			return int64(n) * 4096
		})
	})
	b.Run("edit", benchEditInBigFile)
	b.Run("newfile", benchNewFileLatency)
}

func newBenchNet(b *testing.B) (*testNet, *testNode, *testNode) {
	n := newTestNet(b, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, func(c *Config) {
		c.RescanInterval = time.Hour
	})
	return n, n.nodes["alice"], n.nodes["bob"]
}

// benchDataset times make's dataset, written to a directory outside the
// folder and moved in, until it is on bob.
func benchDataset(b *testing.B, make func(dir string) int64) {
	n, alice, bob := newBenchNet(b)
	stage := b.TempDir()
	var (
		bytes int64
		files int
		times []time.Duration
	)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		dir := filepath.Join(stage, fmt.Sprintf("run%d", i))
		bytes = make(dir)
		files = countFiles(b, dir)
		target := fmt.Sprintf("run%d", i)
		b.StartTimer()
		start := time.Now()
		if err := os.Rename(dir, filepath.Join(alice.root, target)); err != nil {
			b.Fatal(err)
		}
		waitArrived(b, n, alice, bob, target, files)
		times = append(times, time.Since(start))
		b.StopTimer()
		if err := os.RemoveAll(filepath.Join(alice.root, target)); err != nil {
			b.Fatal(err)
		}
		waitGone(b, bob, target)
		b.StartTimer()
	}
	med := median(times)
	b.ReportMetric(float64(med.Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(bytes)/med.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(files)/med.Seconds(), "files/s")
}

// benchEditInBigFile times a 1 MiB edit in the middle of a big file.
func benchEditInBigFile(b *testing.B) {
	n, alice, bob := newBenchNet(b)
	name := filepath.Join(alice.root, "big.bin")
	content := randomBytes(int(*benchEdit))
	writeFile(b, name, content)
	waitArrived(b, n, alice, bob, "big.bin", 1)
	var times []time.Duration
	s0 := n.status(bob).Fetched
	for b.Loop() {
		b.StopTimer()
		edit := randomBytes(1 << 20)
		copy(content[*benchEdit/2:], edit)
		_, want, err := syncfs.HashFile(bytes.NewReader(content))
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if _, err := f.WriteAt(edit, *benchEdit/2); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for filesUnder(bob, "big.bin")["big.bin"] != want {
			if time.Now().After(deadline) {
				b.Fatalf("the edit did not arrive; bob: %+v", n.status(bob))
			}
			time.Sleep(time.Millisecond)
		}
		times = append(times, time.Since(start))
	}
	b.ReportMetric(float64(median(times).Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(n.status(bob).Fetched-s0)/float64(len(times))/(1<<20), "MiB-fetched/op")
}

// benchNewFileLatency times one new small file, from its write until it is
// on bob.
func benchNewFileLatency(b *testing.B) {
	n, alice, bob := newBenchNet(b)
	var times []time.Duration
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("note%04d.txt", i)
		start := time.Now()
		writeFile(b, filepath.Join(alice.root, name), []byte("a new note"))
		waitArrived(b, n, alice, bob, name, 1)
		times = append(times, time.Since(start))
	}
	b.ReportMetric(float64(median(times).Microseconds())/1000, "median-ms")
}

// waitArrived waits until bob's index holds the files under name (a file
// or a directory) as alice's does, content hashes equal.
func waitArrived(b *testing.B, n *testNet, alice, bob *testNode, name string, files int) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	var seenA, seenB *published
	for {
		pa, pb := pubOf(alice), pubOf(bob)
		if pa != seenA || pb != seenB {
			seenA, seenB = pa, pb
			want, got := filesUnder(alice, name), filesUnder(bob, name)
			if len(want) == files && len(got) == files {
				same := true
				for k, h := range want {
					if got[k] != h {
						same = false
						break
					}
				}
				if same {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not arrive; bob: %+v", name, n.status(bob))
		}
		time.Sleep(time.Millisecond)
	}
}

func pubOf(d *testNode) *published {
	if f := d.eng.folder("f1"); f != nil {
		return f.pub.Load()
	}
	return nil
}

// filesUnder returns the live files of d's published index under name, by
// name, with their hashes.
func filesUnder(d *testNode, name string) map[string][32]byte {
	out := map[string][32]byte{}
	f := d.eng.folder("f1")
	if f == nil {
		return out
	}
	p := f.pub.Load()
	if p == nil {
		return out
	}
	for e := range p.tree.all() {
		n := e.fi.Name
		if !e.fi.Deleted && e.fi.Type == 0 && (n == name || len(n) > len(name) && n[:len(name)+1] == name+"/") {
			out[n] = e.fi.FileHash
		}
	}
	return out
}

func waitGone(b *testing.B, d *testNode, name string) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for len(filesUnder(d, name)) > 0 {
		if time.Now().After(deadline) {
			b.Fatalf("%s not deleted on %s", name, d.name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func writeFile(b *testing.B, name string, data []byte) {
	b.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		b.Fatal(err)
	}
}

func countFiles(b *testing.B, dir string) int {
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
