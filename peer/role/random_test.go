package role

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestRandomSchedules drives clusters through seeded random schedules of
// crashes (also between persisting and sending), restarts, partitions,
// one-way link cuts, message loss and late catch-ups. The cluster checks
// the invariants after every tick: at most one server accepts writes in any
// epoch, epochs never decrease, and every epoch is persisted before it is
// sent or acted on. After the faults heal and everyone is back, the cluster
// must settle on the head of the chain and then stay put.
func TestRandomSchedules(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 50
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runRandomSchedule(t, seed)
		})
	}
}

func runRandomSchedule(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x62617430))
	n := 2 + r.IntN(4)
	majority := n >= 3 && r.IntN(4) != 0
	c := newCluster(t, n, &majority)
	c.logf("seed %d: %d servers, majority %t", seed, n, majority)
	lossy := 0.0
	c.drop = func(Message) bool { return lossy > 0 && r.Float64() < lossy }
	pick := func(ids []string) string { return ids[r.IntN(len(ids))] }

	for range 300 {
		switch k := r.IntN(100); {
		case k < 70:
			for range 1 + r.IntN(6) {
				c.tick()
			}
		case k < 75:
			if ids := c.running(); len(ids) > 0 {
				if r.IntN(2) == 0 {
					c.crash(pick(ids))
				} else {
					c.crashAfterPersist(pick(ids))
				}
			}
		case k < 81:
			var down []string
			for _, id := range c.ids {
				if c.nodes[id] == nil {
					down = append(down, id)
				}
			}
			if len(down) > 0 {
				c.restart(pick(down))
			}
		case k < 86:
			groups := make([][]string, 2+r.IntN(2))
			for _, id := range c.ids {
				g := r.IntN(len(groups))
				groups[g] = append(groups[g], id)
			}
			c.partition(groups)
		case k < 89:
			a, b := pick(c.ids), pick(c.ids)
			c.cut[[2]string{a, b}] = true
			c.logf("cut %s->%s", a, b)
		case k < 93:
			c.heal()
		case k < 96:
			lossy = []float64{0, 0, 0.1, 0.3, 0.6}[r.IntN(5)]
			c.logf("loss %.1f", lossy)
		case k < 98:
			c.autoCatchUp = !c.autoCatchUp
			c.logf("autocatchup %t", c.autoCatchUp)
		default:
			if ids := c.running(); len(ids) > 0 {
				c.caughtUp(pick(ids))
				c.stabilize()
			}
		}
	}

	// Everything heals; every server comes back.
	c.heal()
	lossy = 0
	c.autoCatchUp = true
	for _, id := range c.ids {
		if c.nodes[id] == nil {
			c.restart(id)
		}
	}
	// Let every timer started under the faults run out first.
	for range 2 * c.cfg["s1"].FailAfterTicks {
		c.tick()
	}
	const settleTicks = 100
	for i := 0; ; i++ {
		if m, ok := c.settled(); ok && m == c.ids[0] {
			break
		}
		if i == settleTicks {
			c.fatalf("not settled on %s %d ticks after healing", c.ids[0], settleTicks)
		}
		c.tick()
	}
	epoch := c.maxEpoch()
	for range 200 {
		c.tick()
	}
	if m, ok := c.settled(); !ok || m != c.ids[0] || c.maxEpoch() != epoch {
		c.fatalf("did not stay settled: master %q (%t), epoch %d, was %d", m, ok, c.maxEpoch(), epoch)
	}
}
