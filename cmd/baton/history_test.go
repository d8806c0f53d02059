package main

import (
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/internal/control"
)

func TestParseHistoryTime(t *testing.T) {
	loc := time.FixedZone("test", 2*3600)
	now := time.Date(2026, 12, 4, 15, 0, 0, 0, loc)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"2026-12-04T10:00:00Z", time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)},
		{"2026-12-04 13:30", time.Date(2026, 12, 4, 13, 30, 0, 0, loc)},
		{"2026-12-04 13:30:05", time.Date(2026, 12, 4, 13, 30, 5, 0, loc)},
		{"2026-12-03", time.Date(2026, 12, 3, 0, 0, 0, 0, loc)},
		{"90m", now.Add(-90 * time.Minute)},
		{"2h ago", now.Add(-2 * time.Hour)},
		{"3d", now.Add(-72 * time.Hour)},
	} {
		got, err := parseHistoryTime(tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseHistoryTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "yesterday", "-2h", "3x", "2026-13-01"} {
		if got, err := parseHistoryTime(in, now); err == nil {
			t.Errorf("parseHistoryTime(%q) = %v; want an error", in, got)
		}
	}
}

// The history commands refuse contradictory or missing arguments with a
// usage error (status 2) before asking any daemon.
func TestHistoryUsage(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"folder", "restore", "docs"}, "name the PATH"},
		{[]string{"folder", "restore", "docs", "a.txt", "--all", "--at", "2h"}, "PATH or --all"},
		{[]string{"folder", "restore", "docs", "--all"}, "--all needs --at"},
		{[]string{"folder", "restore", "docs", "a.txt", "--version", "3", "--at", "2h"}, "not both"},
		{[]string{"folder", "restore", "docs", "a.txt", "--at", "yesterday"}, "time \"yesterday\""},
		{[]string{"folder", "export", "docs", "out", "--version", "3", "--at", "2h"}, "not both"},
		{[]string{"folder", "history"}, "accepts between 1 and 2 arg"},
	} {
		c.fail(2, tc.args, tc.want)
	}
}

// 'folder history' shows a restore as made by whoever asked for it.
func TestPrintHistoryRestore(t *testing.T) {
	h := control.FolderHistory{ID: "f1", Name: "docs", Versions: []control.HistoryVersion{
		{Version: 1, Path: "a.txt", Type: "file", Size: 3, Hash: "00aa", Device: "12D3KooWAnnLaptop0001", User: "ann"},
		{Version: 2, Path: "a.txt", Type: "file", Deleted: true, Device: "12D3KooWAnnLaptop0001", User: "ann"},
		{Version: 3, Path: "a.txt", Type: "file", Size: 3, Hash: "00aa", Device: "12D3KooWServer000009", RestoredBy: "bob", RestoredByDevice: "12D3KooWBobDesk00002"},
	}}
	var b strings.Builder
	printHistory(&b, h)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("printHistory =\n%s\nwant a header and 3 lines", b.String())
	}
	if l := lines[3]; !strings.Contains(l, " bob ") || !strings.Contains(l, "BobDesk00002") || !strings.HasSuffix(l, "a.txt (restored)") || strings.Contains(l, "Server") {
		t.Errorf("the restore's line = %q; want it by bob on his desk, marked restored", l)
	}
	if l := lines[1]; !strings.Contains(l, " ann ") || strings.Contains(l, "restored") {
		t.Errorf("the first version's line = %q; want it by ann, no restore", l)
	}
}
