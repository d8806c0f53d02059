package main

import (
	"strings"
	"testing"

	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer/foldersync"
)

// 'folder status' names the entries not taken and why, and how many more
// there are than it lists.
func TestPrintFolderStatusSkipped(t *testing.T) {
	st := control.FolderStatus{ID: "f1", Name: "docs", Root: "/d", State: "idle", InSync: true, SkippedCount: 3,
		Skipped: []foldersync.SkippedEntry{{Path: "link\x1b", Reason: `symlink points outside the folder: target "/etc" is absolute`}}}
	var b strings.Builder
	printFolderStatus(&b, st)
	for _, want := range []string{
		"  skipped:       link\\x1b: symlink points outside the folder: target \"/etc\" is absolute\n",
		"  skipped:       2 more\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("printFolderStatus(%+v) =\n%s\nwant a line %q", st, b.String(), want)
		}
	}
}

// 'folder status' shows the owner's quota at the home server, and why the
// home server did not take this device's changes.
func TestPrintFolderStatusQuota(t *testing.T) {
	st := control.FolderStatus{ID: "f1", Name: "docs", Root: "/d", State: "idle", LocalChanges: 1,
		Quota:        &foldersync.QuotaStatus{User: "ann", Used: 9 << 30, Limit: 10 << 30},
		QuotaRefused: "quota exceeded: ann's quota is full"}
	var b strings.Builder
	printFolderStatus(&b, st)
	for _, want := range []string{
		"  quota:         9.0 GiB of 10.0 GiB used (ann's)\n",
		"  refused:       quota exceeded: ann's quota is full\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("printFolderStatus(%+v) =\n%s\nwant a line %q", st, b.String(), want)
		}
	}
	b.Reset()
	st.Quota, st.QuotaRefused = nil, ""
	printFolderStatus(&b, st)
	if strings.Contains(b.String(), "quota") {
		t.Errorf("printFolderStatus without a quota =\n%s\nwant no quota line", b.String())
	}
}
