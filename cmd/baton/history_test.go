package main

import (
	"testing"
	"time"
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
