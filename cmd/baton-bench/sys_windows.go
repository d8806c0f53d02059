package main

import "time"

// The benchmark measures on Linux; on Windows it builds, but the process
// figures read zero and nothing is flushed before a timed window.

func peakRSS() int64 { return 0 }

func cpuTime() time.Duration { return 0 }

func syncDisks() {}
