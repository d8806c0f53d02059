package main

import (
	"os"
	"syscall"
	"time"
)

// processPeak is the highest peak resident set seen before a reset.
var processPeak int64

// resetPeakRSS resets the process's peak resident set to its current one,
// on Linux 4.0 and later (elsewhere nothing happens and the peak is the
// process's since it started). The peak before the reset is kept for
// peakRSSSinceStart.
func resetPeakRSS() {
	processPeak = max(processPeak, peakRSS())
	f, err := os.OpenFile("/proc/self/clear_refs", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString("5")
}

// peakRSS is the process's peak resident set in bytes, as getrusage says
// (since the last reset).
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024 // kilobytes on Linux
}

// peakRSSSinceStart is the process's peak resident set in bytes since it
// started, resets or not.
func peakRSSSinceStart() int64 {
	return max(processPeak, peakRSS())
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
