package peer

import (
	"testing"
	"time"
)

// A server of the chain with others ticks at the configured interval (the
// failover settings are counted in its ticks); one that leads a chain of
// itself alone aloneTicks times less often; any other host (an agent, a
// host outside the chain) coreLessTicks times less often.
func TestTickPeriod(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		mode     tickMode
		want     time.Duration
	}{
		{100 * time.Millisecond, tickCore, 100 * time.Millisecond},
		{100 * time.Millisecond, tickAlone, time.Second},
		{100 * time.Millisecond, tickCoreLess, 500 * time.Millisecond},
		{10 * time.Millisecond, tickCoreLess, 50 * time.Millisecond},
	} {
		if got := tickPeriod(tc.interval, tc.mode); got != tc.want {
			t.Errorf("tickPeriod(%v, mode %d) = %v; want %v", tc.interval, tc.mode, got, tc.want)
		}
	}
	// Whatever the tick, the master's beat comes at most a tick late: a
	// host outside the chain keeps following it with a beat lost.
	for _, mode := range []tickMode{tickCore, tickAlone, tickCoreLess} {
		if tick := tickPeriod(DefaultTickInterval, mode); 2*masterBeat+tick > masterHeardFor {
			t.Errorf("mode %d: a tick of %v; two beats and a tick (%v) exceed masterHeardFor (%v)", mode, tick, 2*masterBeat+tick, masterHeardFor)
		}
	}
}

// Something done every period is due at the tick that comes when the
// period has passed, half a tick early included; a period of a whole number
// of ticks is not stretched by one when a tick comes early.
func TestDue(t *testing.T) {
	last := time.Unix(1000, 0)
	for _, tc := range []struct {
		after, period, tick time.Duration
		want                bool
	}{
		{time.Second, time.Second, time.Second, true},
		{999 * time.Millisecond, time.Second, time.Second, true}, // the tick came a little early
		{400 * time.Millisecond, time.Second, time.Second, false},
		{950 * time.Millisecond, time.Second, 100 * time.Millisecond, true},
		{900 * time.Millisecond, time.Second, 100 * time.Millisecond, false},
		{500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond, true},
	} {
		if got := due(last.Add(tc.after), last, tc.period, tc.tick); got != tc.want {
			t.Errorf("due(%v after, every %v, tick %v) = %v; want %v", tc.after, tc.period, tc.tick, got, tc.want)
		}
	}
}

// The periodic anti-entropy pulls of a peer space out while they bring
// nothing, doubling up to syncBackoff intervals, and come back to the
// interval as soon as one brings anything.
func TestNextSyncEvery(t *testing.T) {
	const base = 3 * time.Second
	for _, tc := range []struct {
		cur     time.Duration
		applied int
		want    time.Duration
	}{
		{base, 0, 2 * base},
		{2 * base, 0, 4 * base},
		{4 * base, 0, syncBackoff * base},
		{syncBackoff * base, 0, syncBackoff * base},
		{syncBackoff * base, 1, base},
		{2 * base, 5, base},
		{0, 0, base}, // not set yet
	} {
		if got := nextSyncEvery(tc.cur, base, tc.applied); got != tc.want {
			t.Errorf("nextSyncEvery(%v, %v, %d) = %v; want %v", tc.cur, base, tc.applied, got, tc.want)
		}
	}
}

// Every host's gossipsub heartbeat runs at gossipsub's default of a
// second.
func TestGossipHeartbeat(t *testing.T) {
	if got := gossipParams().HeartbeatInterval; got != time.Second {
		t.Errorf("gossipsub heartbeat every %v; want 1s", got)
	}
}

// The master beats every masterBeat whatever the domain's heartbeat
// setting, so that a host outside the chain, which drops a master not
// heard for masterHeardFor, keeps following a live one with two beats
// lost; the other servers beat every slaveBeats heartbeat periods, never
// more often than the master.
func TestBeatPeriod(t *testing.T) {
	for _, hb := range []time.Duration{10 * time.Millisecond, 250 * time.Millisecond, time.Second, 5 * time.Second, time.Minute} {
		m := beatPeriod(true, hb)
		if 3*m > masterHeardFor {
			t.Errorf("heartbeat setting %v: the master beats every %v; want three beats within masterHeardFor (%v)", hb, m, masterHeardFor)
		}
		if m < 500*time.Millisecond {
			t.Errorf("heartbeat setting %v: the master beats every %v; want at most two a second", hb, m)
		}
		if s := beatPeriod(false, hb); s < m || s != max(m, slaveBeats*hb) {
			t.Errorf("heartbeat setting %v: a slave beats every %v; want %v", hb, s, max(m, slaveBeats*hb))
		}
	}
}
