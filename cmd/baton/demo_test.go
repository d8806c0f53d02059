package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// demoCLI is a cli whose TMPDIR is a fresh directory, where the demo makes
// its sandbox.
func demoCLI(t *testing.T) (*cli, string) {
	c := newCLI(t)
	tmp := t.TempDir()
	c.vars["TMPDIR"] = tmp
	return c, tmp
}

// TestDemo runs 'baton demo' in-process and checks that it tells the whole
// story and leaves nothing behind.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a domain of three servers and two agents")
	}
	c, tmp := demoCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r := c.runCtx(ctx, "demo")
	if r.code != exitOK {
		t.Fatalf("baton demo: exit %d\nstderr: %s\nstdout:\n%s", r.code, r.stderr, r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("stderr without --verbose: %q", r.stderr)
	}
	// The story, in order.
	want := []string{
		`(?m)^1\. Starting three servers, chain s1 -> s2 -> s3`,
		`(?m)^   s1  12D3KooW\w+$`,
		`private /ip4/127\.0\.0\.1/tcp/\d+ \(servers\)   public /ip4/127\.0\.0\.1/tcp/\d+ \(agents\)`,
		`s1 is master at epoch (\d+); s2 and s3 are its slaves`,
		`alice added at the master s1 \(committed at term \d+, index \d+\); password "alice-demo-password" set at s1`,
		`bob added at the master s1 .* set at s2`,
		`alice-laptop \(device 12D3KooW\w+\) logged in as alice at s1: certificate signed by s1`,
		`bob-laptop \(device 12D3KooW\w+\) logged in as bob at s1, which sent it on to bob's home server s2: certificate signed by s2`,
		`created Projects \(id [0-9a-f]{16}\), hosted on s1`,
		`shared with bob, read-write`,
		`bob accepted it; bob's copy: .*bob-laptop/folders/Projects`,
		`alice wrote README\.txt \(\d+ bytes\): on bob-laptop [\d.]+m?s later`,
		`alice wrote plans/2026\.txt \(\d+ bytes\), plans/budget\.csv \(\d+ bytes\): on bob-laptop`,
		`bob wrote README\.txt \(\d+ bytes\): on alice-laptop`,
		`(?m)^7\. Stopping the master s1`,
		`s2, next in the chain, is master at epoch (\d+)`,
		`carol \(home server s3\) added at the new master s2 \(committed at term \d+`,
		`bob writes todo\.txt: Projects' home server s1 is down, and the change reaches alice's laptop in [\d.]+m?s, through s2, Projects' replica`,
		`s1 caught up from s2 \(it has carol\) and is master again at epoch (\d+)`,
		`bob's todo\.txt arrived on alice's laptop`,
		`s1, s2 and s3 hold the same users`,
		`stopped 2 agents and 3 servers, removed ` + regexp.QuoteMeta(tmp),
		`Done in .*: every step worked\.`,
	}
	rest := r.stdout
	var epochs []string
	for _, re := range want {
		loc := regexp.MustCompile(re).FindStringSubmatchIndex(rest)
		if loc == nil {
			t.Fatalf("demo output lacks %q after what came before; output:\n%s", re, r.stdout)
		}
		if len(loc) == 4 {
			epochs = append(epochs, rest[loc[2]:loc[3]])
		}
		rest = rest[loc[1]:]
	}
	if len(epochs) != 3 || !(less(epochs[0], epochs[1]) && less(epochs[1], epochs[2])) {
		t.Errorf("epochs of s1, s2, s1 again: %v; want increasing", epochs)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("the demo left %v in %s", ents, tmp)
	}
}

// less compares two decimal numbers.
func less(a, b string) bool { return len(a) < len(b) || len(a) == len(b) && a < b }

// TestDemoKeep: with --keep the directory stays and the demo says where;
// with --verbose the nodes log to stderr.
func TestDemoKeep(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a domain of three servers and two agents")
	}
	c, tmp := demoCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r := c.runCtx(ctx, "demo", "--keep", "--verbose")
	if r.code != exitOK {
		t.Fatalf("baton demo --keep --verbose: exit %d\nstderr: %s\nstdout:\n%s", r.code, r.stderr, r.stdout)
	}
	m := regexp.MustCompile(`kept (\S+):`).FindStringSubmatch(r.stdout)
	if m == nil || filepath.Dir(m[1]) != tmp {
		t.Fatalf("no 'kept DIR' in %s under %s; output:\n%s", m, tmp, r.stdout)
	}
	for _, p := range []string{"s1", "s2", "s3", "alice-laptop/folders/Projects/plans/budget.csv", "bob-laptop/folders/Projects/todo.txt"} {
		if _, err := os.Stat(filepath.Join(m[1], p)); err != nil {
			t.Errorf("kept directory: %v", err)
		}
	}
	if !strings.Contains(r.stderr, "host=s1") || !strings.Contains(r.stderr, "host=bob-laptop") {
		t.Errorf("--verbose: stderr has no logs of s1 and bob-laptop:\n%.2000s", r.stderr)
	}
}

// syncBuffer is a buffer written by the demo while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDemoInterrupted: Ctrl-C half way stops every node, removes the
// directory and exits 130.
func TestDemoInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a domain of three servers")
	}
	c, tmp := demoCLI(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout syncBuffer
	var stderr bytes.Buffer
	env := &cliEnv{
		stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr,
		getenv: func(k string) string { return c.vars[k] },
	}
	go func() {
		deadline := time.Now().Add(2 * time.Minute)
		for !strings.Contains(stdout.String(), "2. Users") && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		cancel() // as SIGINT does
	}()
	code := execute(ctx, env, []string{"demo"})
	if code != exitInterrupted || !strings.Contains(stderr.String(), "baton: interrupted") {
		t.Errorf("interrupted demo: exit %d, stderr %q; want %d and 'baton: interrupted'", code, stderr.String(), exitInterrupted)
	}
	if !strings.Contains(stdout.String(), "agents and 3 servers, removed "+tmp) {
		t.Errorf("no clean-up narrated:\n%s", stdout.String())
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("the interrupted demo left %v in %s", ents, tmp)
	}
}
