package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
		`'baton demo --keep' keeps the domain running after the story, each host with its web console to open\.`,
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

// TestDemoKeep: with --keep the domain runs on after the story, each
// host serving its web console, and the demo says how to open each (the
// URL, the token file, 'baton gui'); Ctrl-C then ends it normally and the
// directory stays. With --verbose the nodes log to stderr.
func TestDemoKeep(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a domain of three servers and two agents")
	}
	c, tmp := demoCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var stdout, stderr syncBuffer
	env := &cliEnv{
		stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr,
		getenv: func(k string) string { return c.vars[k] },
	}
	exited := make(chan int, 1)
	go func() { exited <- execute(ctx, env, []string{"demo", "--keep", "--verbose"}) }()
	for !strings.Contains(stdout.String(), "Ctrl-C stops the domain") {
		select {
		case code := <-exited:
			t.Fatalf("baton demo --keep --verbose: exit %d before serving the consoles\nstderr: %.3000s\nstdout:\n%s", code, stderr.String(), stdout.String())
		case <-ctx.Done():
			t.Fatalf("baton demo --keep: no consoles within the deadline; output:\n%s", stdout.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Each host's console: its URL answers with the host's status to the
	// token in the file the demo names, and 'baton gui' in the home it
	// names prints the same URL.
	lines := regexp.MustCompile(`(?m)^   (\S+) +(http://127\.0\.0\.1:\d+/)\n +log in with the token in (\S+), or run: baton --home (\S+) gui$`).FindAllStringSubmatch(stdout.String(), -1)
	var hosts []string
	for _, m := range lines {
		name, url, tokFile, home := m[1], m[2], m[3], m[4]
		hosts = append(hosts, name)
		if tokFile != filepath.Join(home, "gui.token") {
			t.Errorf("%s: token file %s is not in the home %s", name, tokFile, home)
		}
		tok, err := os.ReadFile(tokFile)
		if err != nil {
			t.Errorf("%s's console token: %v", name, err)
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s's console at %s: %v", name, url, err)
			continue
		}
		var st struct {
			Name string `json:"name"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil || st.Name != name {
			t.Errorf("%s's console: GET /v1/status: %s, name %q (%v); want 200 and %s", name, resp.Status, st.Name, err, name)
		}
		if strings.HasSuffix(name, "-laptop") {
			// The laptop's page lists Projects as synced there.
			req, _ := http.NewRequestWithContext(ctx, "GET", url+"v1/agent/folders", nil)
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
			var folders []struct {
				Name, Owner, Path string
			}
			if resp, err := http.DefaultClient.Do(req); err != nil {
				t.Errorf("%s's console: %v", name, err)
			} else {
				err = json.NewDecoder(resp.Body).Decode(&folders)
				resp.Body.Close()
				if err != nil || len(folders) != 1 || folders[0].Name != "Projects" || folders[0].Owner != "alice" || !strings.HasSuffix(folders[0].Path, name+"/folders/Projects") {
					t.Errorf("%s's console: GET /v1/agent/folders: %+v (%v); want alice's Projects synced in %s/folders/Projects", name, folders, err, name)
				}
			}
		}
		if r := newCLI(t).run("--home", home, "gui", "--no-browser"); r.code != exitOK || !strings.Contains(r.stdout, "Console: "+url+"\n") {
			t.Errorf("%s: baton --home %s gui --no-browser: exit %d, %q; want the console's URL %s", name, home, r.code, r.stdout, url)
		}
	}
	if want := []string{"s1", "s2", "s3", "alice-laptop", "bob-laptop"}; !slices.Equal(hosts, want) {
		t.Errorf("consoles of %v; want %v; output:\n%s", hosts, want, stdout.String())
	}

	cancel() // as Ctrl-C does: the normal end of a --keep run
	if code := <-exited; code != exitOK {
		t.Fatalf("baton demo --keep after Ctrl-C: exit %d; want %d\nstderr: %.2000s", code, exitOK, stderr.String())
	}
	out := stdout.String()
	m := regexp.MustCompile(`kept (\S+):`).FindStringSubmatch(out)
	if m == nil || filepath.Dir(m[1]) != tmp {
		t.Fatalf("no 'kept DIR' in %s under %s; output:\n%s", m, tmp, out)
	}
	for _, p := range []string{"s1", "s2", "s3", "alice-laptop/folders/Projects/plans/budget.csv", "bob-laptop/folders/Projects/todo.txt", "consoles/s1/gui.token"} {
		if _, err := os.Stat(filepath.Join(m[1], p)); err != nil {
			t.Errorf("kept directory: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(m[1], "consoles/s1/gui.url")); err == nil {
		t.Errorf("consoles/s1/gui.url is still there after the consoles stopped")
	}
	if !strings.Contains(stderr.String(), "host=s1") || !strings.Contains(stderr.String(), "host=bob-laptop") {
		t.Errorf("--verbose: stderr has no logs of s1 and bob-laptop:\n%.2000s", stderr.String())
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
