package main

import "os"

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

// peakRSSSinceStart is the process's peak resident set in bytes since it
// started, resets or not.
func peakRSSSinceStart() int64 {
	return max(processPeak, peakRSS())
}
