package peer

import (
	"testing"
	"time"
)

// A host that runs the consensus core ticks at the configured interval
// (the failover settings are counted in its ticks); any other (an agent,
// a host outside the chain) coreLessTicks times less often.
func TestTickEvery(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		core     bool
		want     time.Duration
	}{
		{100 * time.Millisecond, true, 100 * time.Millisecond},
		{100 * time.Millisecond, false, 500 * time.Millisecond},
		{10 * time.Millisecond, false, 50 * time.Millisecond},
	} {
		if got := tickEvery(tc.interval, tc.core); got != tc.want {
			t.Errorf("tickEvery(%v, core %v) = %v; want %v", tc.interval, tc.core, got, tc.want)
		}
	}
}
