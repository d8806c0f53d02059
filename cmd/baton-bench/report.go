package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// results are the figures of one invocation; the JSON field names are
// stable.
type results struct {
	Domain     string           `json:"domain"`
	Dir        string           `json:"dir"`
	NumCPU     int              `json:"num_cpu"`
	GOMAXPROCS int              `json:"gomaxprocs"`
	Scale      float64          `json:"scale"`
	Datasets   []*datasetResult `json:"datasets"`
	// PeakRSS is the process's peak resident set since it started, in
	// bytes: the server and both agents together.
	PeakRSS int64 `json:"peak_rss"`
	// Floor (--floor) is the least CPU and wall time the big dataset's
	// unavoidable steps take on this machine.
	Floor *floorResult `json:"floor,omitempty"`
}

// datasetResult is one dataset's figures.
type datasetResult struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	// Files and Bytes are what one run writes (for edit: the bytes
	// changed).
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// Times are the runs' durations, Median their median.
	Times  []time.Duration `json:"-"`
	Median time.Duration   `json:"-"`
	// Target is issue 4's target for the full-size dataset.
	Target time.Duration `json:"-"`
	// keepRuns: each run's files stay in the folder until the last run
	// is done (see runSmall).
	keepRuns     bool
	TimesMS      []float64 `json:"times_ms"`
	MedianMS     float64   `json:"median_ms"`
	TargetMS     float64   `json:"target_ms"`
	MBPerSec     float64   `json:"mb_per_s"`
	FilesPerSec  float64   `json:"files_per_s"`
	TargetMet    bool      `json:"target_met"`
	TargetScaled bool      `json:"-"`
	// Phases are each run's milestones; IndexedMS and ServerMS their
	// medians.
	Phases    []phases `json:"-"`
	IndexedMS float64  `json:"indexed_ms"`
	ServerMS  float64  `json:"server_ms,omitempty"`
	CPUMS     float64  `json:"cpu_ms,omitempty"`
	// HistoryMS and HistoryCPUMS: the medians of phases.History and
	// HistoryCPU (absent without history).
	HistoryMS    float64 `json:"history_ms,omitempty"`
	HistoryCPUMS float64 `json:"history_cpu_ms,omitempty"`
	// PeakRSS is the process's peak resident set during the dataset
	// (reset before it where the OS allows), in bytes.
	PeakRSS int64 `json:"peak_rss"`
	// RestCPU (many) is, for each run, the share of one core every host
	// together used in the 10 s after the run arrived.
	RestCPU []float64 `json:"rest_cpu,omitempty"`
	// Transfers (edit) are the block bytes each run moved.
	Transfers []transfer `json:"transfers,omitempty"`
	Error     string     `json:"error,omitempty"`
}

// transfer is the block bytes one edit moved, from the engines' counters.
type transfer struct {
	// Server: fetched by the hosting server from the source agent.
	Server int64 `json:"server_fetched"`
	// Target: fetched by the target agent from the server;
	// TargetCopied: reused from the target's own copy of the file.
	Target       int64 `json:"target_fetched"`
	TargetCopied int64 `json:"target_copied"`
}

// phases are when, within a timed run, the source had indexed the data
// (its status holds it all) and the server had it all; 0 if unknown. CPU
// is the CPU time (user and system) the process used in the run.
type phases struct {
	Indexed time.Duration
	Server  time.Duration
	CPU     time.Duration
	// History is when the server's history had kept the run (after bob
	// had it all: the server holds it until transfers are quiet), and
	// HistoryCPU the CPU time used until then; 0 without history.
	History    time.Duration
	HistoryCPU time.Duration
}

func (p phases) String() string {
	s := "indexed by alice at " + durText(p.Indexed)
	if p.Server > 0 {
		s += ", all on the server at " + durText(p.Server)
	}
	if p.CPU > 0 {
		s += ", " + durText(p.CPU) + " of CPU"
	}
	if p.History > 0 {
		s += "; kept in the server's history at " + durText(p.History) + ", " + durText(p.HistoryCPU) + " of CPU by then"
	}
	return s
}

func (r *datasetResult) add(d time.Duration, p phases) {
	r.Times = append(r.Times, d)
	r.Phases = append(r.Phases, p)
}

// finish computes the derived figures.
func (r *datasetResult) finish() {
	r.Median = median(r.Times)
	r.TimesMS = nil
	for _, d := range r.Times {
		r.TimesMS = append(r.TimesMS, ms(d))
	}
	r.MedianMS, r.TargetMS = ms(r.Median), ms(r.Target)
	var ix, sv, cpu, hist, histCPU []time.Duration
	for _, p := range r.Phases {
		ix = append(ix, p.Indexed)
		if p.Server > 0 {
			sv = append(sv, p.Server)
		}
		if p.CPU > 0 {
			cpu = append(cpu, p.CPU)
		}
		if p.History > 0 {
			hist, histCPU = append(hist, p.History), append(histCPU, p.HistoryCPU)
		}
	}
	r.IndexedMS, r.ServerMS, r.CPUMS = ms(median(ix)), ms(median(sv)), ms(median(cpu))
	r.HistoryMS, r.HistoryCPUMS = ms(median(hist)), ms(median(histCPU))
	if s := r.Median.Seconds(); s > 0 {
		r.MBPerSec = float64(r.Bytes) / s / 1e6
		r.FilesPerSec = float64(r.Files) / s
	}
	r.TargetMet = len(r.Times) > 0 && r.Error == "" && r.Median < r.Target
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func writeJSON(w io.Writer, res *results) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// writeTable prints the figures for people.
func writeTable(w io.Writer, res *results) {
	fmt.Fprintf(w, "baton-bench: %s\n", res.Domain)
	fmt.Fprintf(w, "%d CPUs, GOMAXPROCS %d", res.NumCPU, res.GOMAXPROCS)
	if res.Scale != 1 {
		fmt.Fprintf(w, ", scale %g (targets are for scale 1)", res.Scale)
	}
	fmt.Fprintf(w, "\n\n")
	width := len("dataset")
	for _, r := range res.Datasets {
		width = max(width, len(r.Label))
	}
	fmt.Fprintf(w, "%-*s  %4s  %8s  %8s  %8s  %9s  %-14s  %s\n", width, "dataset", "runs", "median", "MB/s", "files/s", "peak RSS", "target", "each run (s)")
	for _, r := range res.Datasets {
		verdict := "ok"
		switch {
		case r.Error != "":
			verdict = "FAILED"
		case res.Scale != 1:
			verdict = "-"
		case !r.TargetMet:
			verdict = "MISSED"
		}
		var runs []string
		for _, d := range r.Times {
			runs = append(runs, fmt.Sprintf("%.3f", d.Seconds()))
		}
		fmt.Fprintf(w, "%-*s  %4d  %8s  %8.1f  %8.0f  %9s  %-14s  %s\n", width, r.Label, len(r.Times), durText(r.Median),
			r.MBPerSec, r.FilesPerSec, sizeText(r.PeakRSS), "< "+durText(r.Target)+" "+verdict, strings.Join(runs, " "))
	}
	fmt.Fprintf(w, "\nmedian milestones of a run (alice's index holds the data; the server has it all; bob has it all; CPU time used, all hosts):\n")
	for _, r := range res.Datasets {
		if len(r.Times) == 0 {
			continue
		}
		srv := "-"
		if r.ServerMS > 0 {
			srv = durText(time.Duration(r.ServerMS * float64(time.Millisecond)))
		}
		fmt.Fprintf(w, "  %-*s  %8s  %8s  %8s  %8s\n", width, r.Label, durText(time.Duration(r.IndexedMS*float64(time.Millisecond))), srv, durText(r.Median),
			durText(time.Duration(r.CPUMS*float64(time.Millisecond))))
	}
	var kept bool
	for _, r := range res.Datasets {
		kept = kept || r.HistoryMS > 0
	}
	if kept {
		fmt.Fprintf(w, "\nmedian of a run's data kept in the server's history (which waits for transfers to be quiet; CPU time used by then, all hosts):\n")
		for _, r := range res.Datasets {
			if r.HistoryMS > 0 {
				fmt.Fprintf(w, "  %-*s  %8s  %8s\n", width, r.Label, durText(time.Duration(r.HistoryMS*float64(time.Millisecond))),
					durText(time.Duration(r.HistoryCPUMS*float64(time.Millisecond))))
			}
		}
	}
	for _, r := range res.Datasets {
		if len(r.Transfers) > 0 {
			med := func(f func(transfer) int64) string {
				var v []int64
				for _, t := range r.Transfers {
					v = append(v, f(t))
				}
				slices.Sort(v)
				return sizeText(v[len(v)/2])
			}
			fmt.Fprintf(w, "\n%s: block bytes per run (median): server fetched %s from alice; bob fetched %s from the server and reused %s of his copy\n",
				r.Name, med(func(t transfer) int64 { return t.Server }), med(func(t transfer) int64 { return t.Target }), med(func(t transfer) int64 { return t.TargetCopied }))
		}
	}
	for _, r := range res.Datasets {
		if len(r.RestCPU) > 0 {
			var v []string
			for _, c := range r.RestCPU {
				v = append(v, fmt.Sprintf("%.2f%%", 100*c))
			}
			fmt.Fprintf(w, "\n%s: CPU at rest in the 10 s after each run, all hosts: %s of a core\n", r.Name, strings.Join(v, " "))
		}
	}
	for _, r := range res.Datasets {
		if r.Error != "" {
			fmt.Fprintf(w, "\n%s FAILED: %s\n", r.Name, r.Error)
		}
	}
	fmt.Fprintf(w, "\npeak RSS is the whole process (server + both agents); since start: %s\n", sizeText(res.PeakRSS))
	if res.Floor != nil {
		var big *datasetResult
		for _, r := range res.Datasets {
			if r.Name == "big" && r.Error == "" {
				big = r
			}
		}
		writeFloor(w, res.Floor, big)
	}
}

// sizeText writes n bytes in binary units.
func sizeText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// countText writes n with thousands separators.
func countText(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// durText writes d in seconds from 1 s, else in milliseconds.
func durText(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.0f ms", ms(d))
}
