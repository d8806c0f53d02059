package memtrim

import (
	"runtime/debug"
	"strconv"
)

// GCPercent is the collector's target a daemon runs with unless the
// environment's GOGC sets another: the heap may grow by this share of
// what the last collection kept before the next one. Go's default, 100,
// lets a daemon's heap reach twice what it holds; a sync of 100,000
// files held about 70 MB live, so the heap reached 120 to 160 MB. At 25
// it reaches about 1.25 times: the peaks of an agent and of a server
// fell by 40% (see the README, Performance), for collections four times
// as often, each of which costs what the heap holds.
const GCPercent = 25

// SetGC sets the collector's target to GCPercent unless getenv("GOGC") is
// set (the runtime has applied it), and returns the target in force.
func SetGC(getenv func(string) string) int {
	if v := getenv("GOGC"); v != "" {
		if v == "off" {
			return -1
		}
		if p, err := strconv.Atoi(v); err == nil {
			return p
		}
		return 100 // the runtime ignores a GOGC it cannot read
	}
	debug.SetGCPercent(GCPercent)
	return GCPercent
}
