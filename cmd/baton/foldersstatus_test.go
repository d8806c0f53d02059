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
