package foldersync

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
)

// Hosts that keep to Windows' names (Config.WindowsNames, as on Windows)
// take none of another host's entries that Windows cannot hold: each is
// listed in FolderStatus.Skipped with why, nothing is created in its
// place, and the rest of the folder syncs both ways.
func TestWindowsNamesSkipped(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner},
		func(c *Config) { c.WindowsNames = func(string) bool { return true } })
	alice, server := n.nodes["alice"], n.server
	// Made on the server's own disk (a Linux server): names Windows
	// cannot hold, beside good ones.
	server.write(t, "nul.log", "a device name")
	server.write(t, "report.", "a trailing dot")
	server.write(t, "q?/in.txt", "under a directory Windows cannot hold")
	server.write(t, "ok.txt", "from the server")
	n.running(server).requestRescan()
	alice.write(t, "mine.txt", "from alice")

	waitFor(t, 60*time.Second, "alice to take ok.txt and skip the rest, the server to take mine.txt", func() bool {
		return alice.read(t, "ok.txt") == "from the server" && server.read(t, "mine.txt") == "from alice" &&
			n.status(alice).SkippedCount == 4
	})
	for _, name := range []string{"nul.log", "report.", "q?", "q?/in.txt"} {
		if _, err := os.Lstat(filepath.Join(alice.root, filepath.FromSlash(name))); err == nil {
			t.Errorf("alice: %s was created", name)
		}
	}
	want := map[string]string{
		"nul.log":   `"nul.log" is a reserved device name on Windows`,
		"report.":   `"report." ends in a dot`,
		"q?":        `holds '?'`,
		"q?/in.txt": `"q?" holds '?'`,
	}
	st := n.status(alice)
	for _, s := range st.Skipped {
		if w, ok := want[s.Path]; !ok || !strings.Contains(s.Reason, w) {
			t.Errorf("alice skipped %s: %q; want a reason with %q", s.Path, s.Reason, w)
		}
		delete(want, s.Path)
	}
	for p := range want {
		t.Errorf("alice: %s not listed as skipped (%v)", p, st.Skipped)
	}
	// The server's own entries stay on its disk.
	if got := server.read(t, "nul.log"); got != "a device name" {
		t.Errorf("server: nul.log = %q; want its own content kept", got)
	}
}
