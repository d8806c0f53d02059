package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs every dataset once at a tiny scale: the command must
// finish, verify every run, clean up, and print all four rows.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a domain and syncs a few megabytes")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"--scale", "0.002", "--runs", "1", "--dir", dir}, &out, &errOut); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	got := out.String()
	for _, row := range []string{"in 16 files of", "files of 4 KiB in", "change in a", "new small file"} {
		if !strings.Contains(got, row) {
			t.Errorf("no %q row in the output:\n%s", row, got)
		}
	}
	if strings.Contains(got, "FAILED") {
		t.Errorf("a dataset failed:\n%s", got)
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("left behind in %s: %v", dir, left)
	}
}

// TestJSON runs one dataset and reads the JSON back.
func TestJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a domain")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"--scale", "0.002", "--runs", "2", "--only", "big", "--json", "--floor", "--dir", t.TempDir()}, &out, &errOut); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, errOut.String())
	}
	var res results
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("decoding the output: %v\n%s", err, out.String())
	}
	if len(res.Datasets) != 1 {
		t.Fatalf("got %d datasets; want 1:\n%s", len(res.Datasets), out.String())
	}
	d := res.Datasets[0]
	if d.Name != "big" || len(d.TimesMS) != 2 || d.MedianMS <= 0 || d.Files != 16 || d.PeakRSS <= 0 || d.Error != "" {
		t.Errorf("dataset = %+v; want big, 2 runs, 16 files, a median and a peak RSS", d)
	}
	if d.CPUMS <= 0 {
		t.Errorf("dataset CPU time = %v ms; want the median CPU time of its runs", d.CPUMS)
	}
	f := res.Floor
	if f == nil || len(f.Steps) != 5 {
		t.Fatalf("floor = %+v; want its five steps (--floor)", f)
	}
	var sum float64
	for _, s := range f.Steps {
		if s.PerMS <= 0 || s.Times < 1 {
			t.Errorf("floor step %+v: want a CPU time per GiB and how often the data goes through it", s)
		}
		sum += float64(s.Times) * s.PerMS
	}
	if math.Abs(sum-f.CPU) > 1 || f.NumCPU < 1 || math.Abs(f.Wall-f.CPU/float64(f.NumCPU)) > 1 {
		t.Errorf("floor total %v ms CPU, %v ms wall on %d CPUs; want the sum of the steps (%v ms) and it spread over the CPUs", f.CPU, f.Wall, f.NumCPU, sum)
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		args []string
		want []string // datasets; nil: a usage error
	}{
		{nil, []string{"big", "small", "edit", "newfile"}},
		{[]string{"--only", "newfile,big"}, []string{"big", "newfile"}},
		{[]string{"--skip", "big,small"}, []string{"edit", "newfile"}},
		{[]string{"--only", "big", "--skip", "big"}, nil},
		{[]string{"--only", "huge"}, nil},
		{[]string{"--runs", "0"}, nil},
		{[]string{"--scale", "2"}, nil},
		{[]string{"--scale", "0"}, nil},
		{[]string{"extra"}, nil},
		{[]string{"--transport", "mem"}, []string{"big", "small", "edit", "newfile"}},
		{[]string{"--transport", "mem", "--domain", "engine"}, []string{"big", "small", "edit", "newfile"}},
		{[]string{"--transport", "mem", "--domain", "sandbox"}, nil},
		{[]string{"--transport", "tcp"}, nil},
		{[]string{"--only", "many,small"}, []string{"small", "many"}},
		{[]string{"--only", "many", "--files", "0"}, nil},
		{[]string{"--only", "many", "--size", "0"}, nil},
	}
	for _, tt := range tests {
		var errOut bytes.Buffer
		o, err := parseFlags(tt.args, &errOut)
		if tt.want == nil {
			if !errors.Is(err, errUsage) {
				t.Errorf("parseFlags(%q) = %v; want a usage error", tt.args, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseFlags(%q) = %v\n%s", tt.args, err, errOut.String())
			continue
		}
		if slices.Contains(tt.args, "mem") && o.domain != "engine" {
			t.Errorf("parseFlags(%q) domain = %q; want engine", tt.args, o.domain)
		}
		if strings.Join(o.datasets, ",") != strings.Join(tt.want, ",") {
			t.Errorf("parseFlags(%q) datasets = %v; want %v", tt.args, o.datasets, tt.want)
		}
	}
}

// TestEngineTransports runs the engines alone over each transport: both
// must sync and verify, and say which network carried them.
func TestEngineTransports(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the sync engines")
	}
	for _, tt := range []struct{ transport, says string }{
		{"libp2p", "libp2p host on 127.0.0.1"},
		{"mem", "in-memory network"},
	} {
		t.Run(tt.transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out, errOut bytes.Buffer
			args := []string{"--domain", "engine", "--transport", tt.transport, "--scale", "0.002", "--runs", "1", "--reps", "2", "--only", "small,newfile", "--json", "--dir", t.TempDir()}
			if err := run(ctx, args, &out, &errOut); err != nil {
				t.Fatalf("run: %v\nstderr:\n%s", err, errOut.String())
			}
			var res results
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("decoding the output: %v\n%s", err, out.String())
			}
			if !strings.Contains(res.Domain, tt.says) {
				t.Errorf("domain %q; want it to say %q", res.Domain, tt.says)
			}
			if len(res.Datasets) != 2 {
				t.Fatalf("got %d datasets; want 2:\n%s", len(res.Datasets), out.String())
			}
			for _, d := range res.Datasets {
				if d.Error != "" || d.MedianMS <= 0 {
					t.Errorf("dataset %s: error %q, median %v ms; want a verified run", d.Name, d.Error, d.MedianMS)
				}
			}
		})
	}
}

// --million makes the many dataset 1,000,000 files, whatever --files says.
func TestManyFlags(t *testing.T) {
	for _, tt := range []struct {
		args        []string
		files, size int64
	}{
		{[]string{"--only", "many"}, 100000, 1024},
		{[]string{"--only", "many", "--files", "500", "--size", "4096"}, 500, 4096},
		{[]string{"--only", "many", "--million", "--files", "500"}, 1000000, 1024},
	} {
		var errOut bytes.Buffer
		o, err := parseFlags(tt.args, &errOut)
		if err != nil {
			t.Fatalf("parseFlags(%q) = %v\n%s", tt.args, err, errOut.String())
		}
		if int64(o.files) != tt.files || o.size != tt.size {
			t.Errorf("parseFlags(%q): %d files of %d bytes; want %d of %d", tt.args, o.files, o.size, tt.files, tt.size)
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{3}, 3},
		{[]time.Duration{5, 1, 3}, 3},
		{[]time.Duration{4, 1, 2, 3}, 2},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

// The many dataset runs, verifies, and reports the CPU at rest.
func TestManySmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a domain and waits 10 s at rest")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"--only", "many", "--files", "30", "--size", "100", "--runs", "1", "--dir", t.TempDir()}, &out, &errOut); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"30 files of 100 B in 30 dirs", "CPU at rest in the 10 s after each run"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in the output:\n%s", want, out.String())
		}
	}
}
