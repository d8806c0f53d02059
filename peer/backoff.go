package peer

import (
	"math/rand/v2"
	"time"
)

// backoff computes "full jitter" exponential reconnect delays: attempt n
// waits a uniformly random time in [base/2, min(max, base*2^n)].
type backoff struct {
	base, max time.Duration
	rnd       *rand.Rand
}

func (b backoff) delay(attempt int) time.Duration {
	d := b.base
	for i := 0; i < attempt && d < b.max; i++ {
		d *= 2
	}
	if d > b.max {
		d = b.max
	}
	lo := b.base / 2
	if d <= lo {
		return d
	}
	return lo + time.Duration(b.rnd.Int64N(int64(d-lo)+1))
}
