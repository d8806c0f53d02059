package role

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// DefaultTickInterval is how often the driver is expected to call
// [Machine.Tick] with [DefaultConfig]. The machine itself only counts ticks.
const DefaultTickInterval = 100 * time.Millisecond

// Config is the static configuration of one server's role machine. Times are
// in ticks; see [DefaultTickInterval].
type Config struct {
	// Self is this server's host ID. It must appear in Chain.
	Self string
	// Chain is the ordered server chain, highest priority first. Every
	// server must be configured with the same chain.
	Chain []string
	// Majority, when true, requires a majority of Chain (self included) to
	// grant a promotion, and makes a master that has not heard from a
	// majority for FailAfterTicks step down. When false, the plain chain
	// rule applies: the rightful server promotes itself once caught up.
	Majority bool
	// HeartbeatTicks is the interval between heartbeats.
	HeartbeatTicks int
	// FailAfterTicks is how long a server may stay silent before it is
	// considered down. It also bounds how long a campaign may take.
	FailAfterTicks int
	// StartupGraceTicks is how long a freshly started machine waits before
	// it may promote anybody, and how long the cluster waits after losing
	// its master before promoting a server that is not caught up (the
	// whole-cluster cold start, or every caught-up server gone).
	StartupGraceTicks int
}

// DefaultConfig returns the recommended settings for self in chain, meant
// to be ticked every [DefaultTickInterval]: a heartbeat every 200 ms, a
// server considered down after 1 s of silence, and a 1.5 s startup grace.
// Majority mode is on for chains of three or more servers.
func DefaultConfig(self string, chain []string) Config {
	return Config{
		Self:              self,
		Chain:             slices.Clone(chain),
		Majority:          len(chain) >= 3,
		HeartbeatTicks:    2,
		FailAfterTicks:    10,
		StartupGraceTicks: 15,
	}
}

// Validate reports the first problem with c, or nil.
func (c Config) Validate() error {
	if c.Self == "" {
		return errors.New("role: config: empty Self")
	}
	if len(c.Chain) == 0 {
		return errors.New("role: config: empty Chain")
	}
	seen := make(map[string]bool, len(c.Chain))
	for i, id := range c.Chain {
		if id == "" {
			return fmt.Errorf("role: config: empty ID at chain position %d", i)
		}
		if seen[id] {
			return fmt.Errorf("role: config: %q appears twice in Chain", id)
		}
		seen[id] = true
	}
	if !seen[c.Self] {
		return fmt.Errorf("role: config: Self %q is not in Chain", c.Self)
	}
	if c.HeartbeatTicks < 1 {
		return fmt.Errorf("role: config: HeartbeatTicks %d < 1", c.HeartbeatTicks)
	}
	if c.FailAfterTicks <= 2*c.HeartbeatTicks {
		return fmt.Errorf("role: config: FailAfterTicks %d must exceed two heartbeats (%d ticks)",
			c.FailAfterTicks, 2*c.HeartbeatTicks)
	}
	if c.StartupGraceTicks < c.FailAfterTicks {
		return fmt.Errorf("role: config: StartupGraceTicks %d < FailAfterTicks %d",
			c.StartupGraceTicks, c.FailAfterTicks)
	}
	return nil
}

// quorum is how many servers, self included, must agree to a promotion.
func (c Config) quorum() int {
	if !c.Majority {
		return 1
	}
	return len(c.Chain)/2 + 1
}
