package main

import (
	"bufio"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	digests := map[string]string{} // collection -> replica A's digest
	kind := ""
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	n := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[1] == "A":
			kind = f[0]
			digests[kind] = f[2]
		case len(f) == 2 && f[0] == "B":
			n++
			if digests[kind] != f[1] {
				t.Errorf("%s digests differ: A %s, B %s", kind, digests[kind], f[1])
			}
		}
	}
	if n != 3 {
		t.Errorf("found %d digest pairs; want 3\n%s", n, out.String())
	}
	if !strings.HasSuffix(out.String(), "identical\n") {
		t.Errorf("output does not end with identical:\n%s", out.String())
	}
}
