package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// datasetNames are the datasets in the order they run.
var datasetNames = []string{"big", "small", "edit", "newfile", "many"}

// options is the parsed command line.
type options struct {
	runs       int
	reps       int
	scale      float64
	datasets   []string
	json       bool
	dir        string
	timeout    time.Duration
	cpuprofile string
	log        bool
	domain     string
	transport  string
	floor      bool
	// files and size make the many dataset; memprofile is where heap
	// profiles go (see many.go).
	files      int
	size       int64
	memprofile string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var only, skip string
	fs := flag.NewFlagSet("baton-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: baton-bench [flags]\n\n"+
			"Times folder sync between two agents through their home server on 127.0.0.1,\n"+
			"in this process. Datasets: %s.\n\n", strings.Join(datasetNames, ", "))
		fs.PrintDefaults()
	}
	fs.IntVar(&o.runs, "runs", 3, "timed runs of each dataset (newfile: see --reps)")
	fs.IntVar(&o.reps, "reps", 20, "repetitions of the newfile dataset")
	fs.Float64Var(&o.scale, "scale", 1, "shrink the datasets (sizes, file counts, repetitions) for a quick check; targets apply at 1")
	fs.StringVar(&only, "only", "", "comma-separated datasets to run (default all but many)")
	fs.StringVar(&skip, "skip", "", "comma-separated datasets to skip")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON")
	fs.StringVar(&o.dir, "dir", "", "where to make the temporary directories (default the system's; removed at the end)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on a run after this long")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of each timed window to `PREFIX`.DATASET.RUN.pprof")
	fs.StringVar(&o.domain, "domain", "auto", "what runs: sandbox (whole nodes: catalog, login, certificates), engine (the sync engines alone, over --transport), or auto (sandbox if the node syncs folders)")
	fs.StringVar(&o.transport, "transport", transportLibp2p, "what carries the sync engines' streams with --domain engine: libp2p (hosts on 127.0.0.1: TCP, TLS, the stream multiplexer) or mem (an in-memory network: the engines without the network; implies --domain engine)")
	fs.BoolVar(&o.floor, "floor", false, "also measure, at the end, the floor: the CPU time the big dataset's unavoidable steps (hashing, TLS, writing) take on this machine, and the least time that allows")
	fs.IntVar(&o.files, "files", 100000, "files in the many dataset")
	fs.Int64Var(&o.size, "size", 1024, "bytes of each file of the many dataset")
	million := fs.Bool("million", false, "the many dataset holds 1,000,000 files (as --files 1000000): opt-in, it writes gigabytes on each host")
	fs.StringVar(&o.memprofile, "memprofile", "", "write a heap profile once the many dataset is in sync, to `PREFIX`.many.RUN.pprof")
	fs.BoolVar(&o.log, "log", false, "log the sync engines' debug messages to stderr")
	if err := fs.Parse(args); err != nil {
		return o, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "baton-bench: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return o, errUsage
	}
	bad := func(format string, a ...any) (options, error) {
		fmt.Fprintf(stderr, "baton-bench: "+format+"\n", a...)
		return o, errUsage
	}
	if o.runs < 1 {
		return bad("--runs must be at least 1")
	}
	if o.reps < 1 {
		return bad("--reps must be at least 1")
	}
	if !(o.scale > 0 && o.scale <= 1) || math.IsNaN(o.scale) {
		return bad("--scale must be in (0, 1]")
	}
	if !slices.Contains([]string{"auto", "sandbox", "engine"}, o.domain) {
		return bad("--domain must be auto, sandbox or engine")
	}
	switch {
	case o.transport != transportLibp2p && o.transport != transportMem:
		return bad("--transport must be libp2p or mem")
	case o.transport == transportMem && o.domain == "sandbox":
		return bad("--transport mem runs the sync engines alone (--domain engine): the sandbox's nodes talk over libp2p")
	case o.transport == transportMem:
		o.domain = "engine"
	}
	if *million {
		o.files = 1000000
	}
	if o.files < 1 || o.size < 1 {
		return bad("--files and --size must be at least 1")
	}
	if o.timeout <= 0 {
		return bad("--timeout must be positive")
	}
	ds, err := selectDatasets(only, skip)
	if err != nil {
		return bad("%v", err)
	}
	o.datasets = ds
	if len(o.datasets) == 0 {
		return bad("no dataset selected")
	}
	if o.dir != "" {
		fi, err := os.Stat(o.dir)
		if err != nil {
			return bad("--dir: %v", err)
		}
		if !fi.IsDir() {
			return bad("--dir %s is not a directory", o.dir)
		}
	}
	return o, nil
}

// selectDatasets are the datasets --only and --skip select (only empty:
// all), in the order they run.
func selectDatasets(only, skip string) ([]string, error) {
	// many runs only when named: 100,000 files are minutes of work.
	sel := slices.DeleteFunc(slices.Clone(datasetNames), func(s string) bool { return s == "many" })
	if only != "" {
		sel = nil
		for _, n := range strings.Split(only, ",") {
			n = strings.TrimSpace(n)
			if !slices.Contains(datasetNames, n) {
				return nil, fmt.Errorf("unknown dataset %q (have %s)", n, strings.Join(datasetNames, ", "))
			}
			sel = append(sel, n)
		}
	}
	for _, n := range strings.Split(skip, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(datasetNames, n) {
			return nil, fmt.Errorf("unknown dataset %q (have %s)", n, strings.Join(datasetNames, ", "))
		}
		sel = slices.DeleteFunc(slices.Clone(sel), func(s string) bool { return s == n })
	}
	// Keep the canonical order whatever the order given.
	var out []string
	for _, n := range datasetNames {
		if slices.Contains(sel, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// scaled returns n times the scale, at least min.
func (o options) scaled(n int64, min int64) int64 {
	return max(min, int64(math.Round(float64(n)*o.scale)))
}
