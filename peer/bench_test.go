package peer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// Run with: go test -bench . -run '^$' ./peer
//
// The clusters run with the production defaults (SyncInterval 3 s, the
// domain's DefaultFailover), all in this process on 127.0.0.1.

// arrivals records when each update reached each member (Config.OnApplied).
type arrivals struct {
	mu      sync.Mutex
	need    int
	seen    map[[32]byte]int
	last    map[[32]byte]time.Time
	waiters map[[32]byte]chan time.Time
}

func newArrivals(need int) *arrivals {
	return &arrivals{need: need, seen: map[[32]byte]int{}, last: map[[32]byte]time.Time{}, waiters: map[[32]byte]chan time.Time{}}
}

func (a *arrivals) applied(c collections.Certified) {
	now := time.Now()
	h := c.Hash()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen[h]++
	a.last[h] = now
	if a.seen[h] == a.need {
		if w, ok := a.waiters[h]; ok {
			w <- now
			delete(a.waiters, h)
		}
	}
}

// wait returns when update h reached every member: the last arrival.
func (a *arrivals) wait(b *testing.B, h [32]byte) time.Time {
	a.mu.Lock()
	if a.seen[h] >= a.need {
		t := a.last[h]
		a.mu.Unlock()
		return t
	}
	w := make(chan time.Time, 1)
	a.waiters[h] = w
	a.mu.Unlock()
	select {
	case t := <-w:
		return t
	case <-time.After(10 * time.Second):
		b.Fatalf("update did not reach all %d servers in 10 s", a.need)
		return time.Time{}
	}
}

// benchCluster starts n servers with production sync timing, each
// reporting applied updates to arr, the master counting its bandwidth in bw.
func benchCluster(b *testing.B, n int, arr *arrivals, bw metrics.Reporter) *peertest.Cluster {
	c := peertest.NewCluster(b, n, collections.DefaultFailover(n))
	c.Config = func(m *peertest.Member, cfg *peer.Config) {
		cfg.SyncInterval = 0 // the default
		if arr != nil {
			cfg.OnApplied = arr.applied
		}
		if bw != nil && m == c.Members[0] {
			cfg.Bandwidth = bw
		}
	}
	c.StartAll()
	if m, _ := c.WaitMaster(60 * time.Second); m != 0 {
		b.Fatalf("master is %s, want s1", c.Members[m].Name)
	}
	u, _ := collections.Put(collections.User{Name: "ann", HomeServer: c.Members[1].Key.ID().String()})
	if r, err := c.Submit(0, u); err != nil || r.Queued {
		b.Fatalf("adding ann: %v", err)
	}
	c.WaitConverged(30 * time.Second)
	return c
}

// replicateOne submits a folder update at s2 (a slave) and returns the
// time from Submit until it was applied on every server.
func replicateOne(b *testing.B, c *peertest.Cluster, arr *arrivals, i int) time.Duration {
	f := collections.Folder{ID: fmt.Sprintf("b%d", i), Name: "bench", Owner: "ann", Server: c.Members[1].Key.ID().String(), Members: map[string]collections.Right{"ann": collections.RightOwner}}
	u, err := collections.Put(f)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	r, err := c.Submit(1, u)
	if err != nil || r.Queued {
		b.Fatalf("submit at s2: %v (queued %v)", err, r.Queued)
	}
	return arr.wait(b, r.Certified.Hash()).Sub(start)
}

func percentile(ds []time.Duration, p float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return float64(s[i]) / float64(time.Millisecond)
}

// BenchmarkCommit: time from a Submit at the master until it returns, that
// is until the update is committed on a majority of the voters and applied
// at the master, one update at a time. At 16 servers the first 5 vote and
// 11 are learners.
func BenchmarkCommit(b *testing.B) {
	for _, n := range []int{3, 5, 16} {
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) {
			c := benchCluster(b, n, nil, nil)
			home := c.Members[0].Key.ID().String()
			var lat []time.Duration
			for b.Loop() {
				u, err := collections.Put(collections.User{Name: fmt.Sprintf("u%d", len(lat)), HomeServer: home})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				r, err := c.Submit(0, u)
				if err != nil || r.Queued {
					b.Fatalf("submit at the master: %v (queued %v)", err, r.Queued)
				}
				lat = append(lat, time.Since(start))
			}
			b.ReportMetric(percentile(lat, 0.50), "p50-ms")
			b.ReportMetric(percentile(lat, 0.99), "p99-ms")
		})
	}
}

// BenchmarkReplication: time from a slave's Submit until the update is
// applied on every server, one update at a time.
func BenchmarkReplication(b *testing.B) {
	for _, n := range []int{4, 8, 16} {
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) {
			arr := newArrivals(n)
			c := benchCluster(b, n, arr, nil)
			var lat []time.Duration
			for b.Loop() {
				lat = append(lat, replicateOne(b, c, arr, len(lat)))
			}
			b.ReportMetric(percentile(lat, 0.50), "p50-ms")
			b.ReportMetric(percentile(lat, 0.99), "p99-ms")
		})
	}
}

// BenchmarkMasterBytesPerUpdate: bytes the master sends per replicated
// update. The master certifies 8 KiB reports back to back (Submit at the
// master returns once the update is durable and published) so that they,
// not the idle traffic (heartbeats, periodic anti-entropy, gossipsub's own
// heartbeats, which grow with the square of the servers), dominate; the
// idle rate, measured over one anti-entropy period before, is subtracted.
func BenchmarkMasterBytesPerUpdate(b *testing.B) {
	for _, n := range []int{4, 8, 16} {
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) {
			arr := newArrivals(n)
			bw := metrics.NewBandwidthCounter()
			c := benchCluster(b, n, arr, bw)
			gossip := func() int64 { return bw.GetBandwidthForProtocol("/meshsub/1.3.0").TotalOut }

			out0, g0, start := bw.GetBandwidthTotals().TotalOut, gossip(), time.Now()
			var last [32]byte
			content := bytes.Repeat([]byte("x"), 8<<10)
			updates := 0
			for b.Loop() {
				u, _ := collections.Put(collections.ReportRecord{ID: fmt.Sprintf("r%d", updates), Author: c.Members[0].Key.ID().String(), Kind: "usage", Created: peertest.Created.UnixNano(), Content: content})
				r, err := c.Submit(0, u)
				if err != nil || r.Queued {
					b.Fatalf("submit at the master: %v", err)
				}
				last = r.Certified.Hash()
				updates++
			}
			arr.wait(b, last)
			// The counters are updated by go-flow-metrics' once-a-second
			// sweep, so they lag: read them two sweeps later.
			time.Sleep(2 * time.Second) // the sweeper has no event to wait on
			elapsed := time.Since(start)
			total, gsent := float64(bw.GetBandwidthTotals().TotalOut-out0), float64(gossip()-g0)

			// The idle rate (heartbeats, anti-entropy rounds) measured
			// after the updates, once things settled.
			idle0, gidle0, t0 := bw.GetBandwidthTotals().TotalOut, gossip(), time.Now()
			time.Sleep(3 * time.Second) // measuring the idle rate: nothing to wait for
			idle := time.Since(t0).Seconds()
			idleRate := float64(bw.GetBandwidthTotals().TotalOut-idle0) / idle
			gidleRate := float64(gossip()-gidle0) / idle
			b.ReportMetric((total-idleRate*elapsed.Seconds())/float64(updates), "bytes/update")
			b.ReportMetric((gsent-gidleRate*elapsed.Seconds())/float64(updates), "gossip-bytes/update")
			b.ReportMetric(idleRate, "idle-bytes/s")
			if testing.Verbose() {
				for p, st := range bw.GetBandwidthByProtocol() {
					b.Logf("master sent %d bytes on %s", st.TotalOut, p)
				}
			}
		})
	}
}

// submitUntilCertified retries a Domain update at member i until it is
// acknowledged (i is master and certifies it) and returns when that was.
func submitUntilCertified(b *testing.B, c *peertest.Cluster, i int, name string, timeout time.Duration) time.Time {
	u, _ := collections.Put(collections.User{Name: name, HomeServer: c.Members[i].Key.ID().String()})
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n := c.Node(i)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := n.Submit(ctx, u)
		cancel()
		if err == nil && !r.Queued {
			return time.Now()
		}
		if err != nil && !errors.Is(err, peer.ErrNotMaster) && !errors.Is(err, peer.ErrRejected) {
			b.Fatalf("submit at %s: %v", c.Members[i].Name, err)
		}
		time.Sleep(5 * time.Millisecond) // polling for the promotion
	}
	b.Fatalf("%s did not acknowledge a write within %v", c.Members[i].Name, timeout)
	return time.Time{}
}

// failoverCycle starts three servers, stops the master (its Run cancelled:
// connections close as with kill -9) and measures until s2 acknowledges a
// write; then restarts s1 and measures until it is master again and
// acknowledges a write.
func failoverCycle(b *testing.B) (failover, handback time.Duration) {
	c := peertest.NewCluster(b, 3, collections.DefaultFailover(3))
	defer c.StopAll()
	c.StartAll()
	if m, _ := c.WaitMaster(30 * time.Second); m != 0 {
		b.Fatalf("master is %s, want s1", c.Members[m].Name)
	}
	submitUntilCertified(b, c, 0, "ann", 10*time.Second)
	c.WaitConverged(10 * time.Second)

	start := time.Now()
	c.Stop(0)
	failover = submitUntilCertified(b, c, 1, "bob", 20*time.Second).Sub(start)

	start = time.Now()
	c.Start(0)
	handback = submitUntilCertified(b, c, 0, "cat", 30*time.Second).Sub(start)
	return failover, handback
}

// BenchmarkFailover: from stopping the master until the next server
// acknowledges a write (3 servers, DefaultFailover).
func BenchmarkFailover(b *testing.B) {
	var ds []time.Duration
	for b.Loop() {
		f, _ := failoverCycle(b)
		ds = append(ds, f)
	}
	b.ReportMetric(percentile(ds, 0.5), "failover-ms")
}

// BenchmarkHandback: from restarting the old master until it is master
// again and acknowledges a write.
func BenchmarkHandback(b *testing.B) {
	var ds []time.Duration
	for b.Loop() {
		_, h := failoverCycle(b)
		ds = append(ds, h)
	}
	b.ReportMetric(percentile(ds, 0.5), "handback-ms")
}
