package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers and waits for two failovers")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run() error = %v\noutput:\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`s1 is master, epoch \d+`),
		regexp.MustCompile(`s2 promoted to master, epoch \d+: the baton passed in \S+`),
		regexp.MustCompile(`the domain still accepts changes`),
		regexp.MustCompile(`s1 caught up \(it has bob\) and is master again, epoch \d+: handed back in \S+; s2 is a slave again`),
		regexp.MustCompile(`(?m)^   s2 slave `),
		regexp.MustCompile(`identical on s1, s2 and s3`),
		regexp.MustCompile(`ann \(home s1\)`),
		regexp.MustCompile(`bob \(home s2\)`),
	} {
		if !want.MatchString(got) {
			t.Errorf("run() output lacks %q; output:\n%s", want, got)
		}
	}
	for _, user := range []string{"ann", "bob"} {
		if n := strings.Count(got, user+" (home "); n != 3 {
			t.Errorf("user %s is listed on %d servers, want 3; output:\n%s", user, n, got)
		}
	}
}
