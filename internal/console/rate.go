package console

import "time"

// RateWindow is the span over which a folder's transfer rate is measured:
// the bytes fetched in the last RateWindow, divided by the time they took.
const RateWindow = 10 * time.Second

// maxRateSamples bounds the samples kept per folder.
const maxRateSamples = 64

// rateSample is a folder's bytes fetched (a counter since the daemon
// started) read at one moment.
type rateSample struct {
	at    time.Time
	bytes int64
}

// addSample appends s to samples (oldest first), dropping those older
// than window before s except the newest of them, which measures the
// rate from the window's start. A counter that went back (the daemon
// restarted) starts the samples over. It is pure.
func addSample(samples []rateSample, s rateSample, window time.Duration) []rateSample {
	if n := len(samples); n > 0 && (s.bytes < samples[n-1].bytes || s.at.Before(samples[n-1].at)) {
		samples = samples[:0]
	}
	samples = append(samples, s)
	cut := 0
	for cut+1 < len(samples) && !samples[cut+1].at.After(s.at.Add(-window)) {
		cut++
	}
	samples = samples[cut:]
	if len(samples) > maxRateSamples {
		samples = samples[len(samples)-maxRateSamples:]
	}
	return samples
}

// transferRate is the bytes per second of samples: the bytes between the
// oldest and the newest divided by the time between them. It is 0 with
// fewer than two samples, when the newest is older than window before now
// (nothing was read lately, so nothing is known to move), or when the
// samples span more than maxRateSpan (read too seldom to say). It is pure.
func transferRate(samples []rateSample, now time.Time, window time.Duration) float64 {
	if len(samples) < 2 {
		return 0
	}
	first, last := samples[0], samples[len(samples)-1]
	span := last.at.Sub(first.at)
	if now.Sub(last.at) > window || span <= 0 || span > maxRateSpan*window {
		return 0
	}
	return float64(last.bytes-first.bytes) / span.Seconds()
}

// maxRateSpan is how many windows two samples may be apart and still
// give a rate.
const maxRateSpan = 6
