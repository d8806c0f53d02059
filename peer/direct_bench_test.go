//go:build unix

package peer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// Run with: go test -run '^$' -bench NewFile -benchtime 10x ./peer
//
// Each repetition writes one new small file in bob's folder and times it
// until it is in ann's, with the folder's home server down: through the
// replica (the devices do not reach each other), and device to device
// (every server down). ms-median is the median repetition; cpu-ms/op the
// CPU time of the whole process (every host in it) per repetition.

// cpuNow is the process's CPU time, user and system.
func cpuNow(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timeNewFiles writes b.N new small files in from, one at a time, each
// once the previous one arrived in to, and reports the median time and
// the CPU time per file.
func timeNewFiles(b *testing.B, from, to string) {
	b.Helper()
	var took []time.Duration
	cpu0 := cpuNow(b)
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("note%03d.txt", i)
		data := []byte("a new note " + name)
		t0 := time.Now()
		if err := os.WriteFile(filepath.Join(from, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
		deadline := t0.Add(30 * time.Second)
		for {
			got, err := os.ReadFile(filepath.Join(to, name))
			if err == nil && string(got) == string(data) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s did not arrive in 30 s", name)
			}
			time.Sleep(time.Millisecond)
		}
		took = append(took, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64((cpuNow(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// BenchmarkNewFileThroughReplica: the home server of the folder is down
// and the devices do not reach each other (no mDNS, no relay): bob's new
// file reaches ann's laptop through the replica.
func BenchmarkNewFileThroughReplica(b *testing.B) {
	c := loginCluster(b)
	_, _, f, annDir, bobDir := startPair(b, c, func(_ *peer.Node, a *peertest.Agent) {
		a.Config = func(cfg *peer.Config) { cfg.NoLAN, cfg.NoRelay = true, true }
	})
	st := c.State(0)
	c.Stop(memberIndex(b, c, st.FolderHosts(f)[0]))
	timeNewFiles(b, bobDir, annDir)
}

// BenchmarkNewFileDeviceToDevice: every server is down; ann's laptop and
// bob's desk, connected directly, sync the folder.
func BenchmarkNewFileDeviceToDevice(b *testing.B) {
	c := loginCluster(b)
	ann, bob, _, annDir, bobDir := startPair(b, c, func(ann *peer.Node, a *peertest.Agent) {
		a.Config = func(cfg *peer.Config) {
			cfg.NoLAN = true
			if ann != nil {
				cfg.Peers = []string{loopbackAddr(b, ann)}
			}
		}
	})
	c.WaitFor("ann's laptop and bob's desk connected", 30*time.Second, func() bool {
		return connectedTo(ann, bob.ID()) && connectedTo(bob, ann.ID())
	})
	for i := range c.Members {
		c.Stop(i)
	}
	timeNewFiles(b, bobDir, annDir)
}
