package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
)

// hostileText holds what a terminal acts on instead of showing: an escape
// sequence that clears the screen, a C1 control sequence introducer (a
// valid file name on Linux, passed by syncfs.CheckName), a bell, a
// right-to-left override that reorders what follows, a newline that would
// start a line of its own, and a byte that is not UTF-8 (which the
// daemon's JSON turns into U+FFFD, a printable replacement).
const hostileText = "evil\x1b[2J\u009b31m\a\u202etxt.exe\nforged: in sync\xff"

// shown reports the first rune of out a terminal would not simply show
// (newlines aside), if any: out must be UTF-8 and printable.
func shown(out string) (rune, bool) {
	if !utf8.ValidString(out) {
		return utf8.RuneError, false
	}
	for _, r := range strings.ReplaceAll(out, "\n", "") {
		if r != ' ' && !unicode.IsPrint(r) {
			return r, false
		}
	}
	return 0, true
}

// Text that comes from other hosts (an error naming a file a peer sent,
// a message of the hosting server) is printed escaped: no terminal control
// reaches the terminal, and it cannot start a line of its own.
func TestHostileTextEscaped(t *testing.T) {
	c, d := agentCLI(t, nil)
	photos := filepath.Join(t.TempDir(), "Photos")
	c.ok("folder", "create", "Photos", photos)
	failing := foldersync.FolderStatus{Root: photos, Role: "rw", State: "syncing", NeedFiles: 1, NeedBytes: 10,
		LastError: "1 changes not applied: fetch docs/" + hostileText + ": block unavailable"}
	check := func(what, out string) {
		t.Helper()
		if r, ok := shown(out); !ok {
			t.Errorf("%s printed %q, with %U in it", what, out, r)
		}
		if strings.Contains(out, "\nforged") {
			t.Errorf("%s printed %q: the text starts a line of its own", what, out)
		}
		if !strings.Contains(out, `evil\x1b[2J\u009b31m\a\u202etxt.exe`) {
			t.Errorf("%s printed %q; want the text shown with Go escapes", what, out)
		}
	}

	d.set(func(f *fakeDaemon) { f.statuses = []foldersync.FolderStatus{failing} })
	check("folder status", c.ok("folder", "status", "Photos"))
	d.set(func(f *fakeDaemon) {
		f.statuses = []foldersync.FolderStatus{failing, {Root: photos, Role: "rw", State: "idle", InSync: true}}
	})
	check("folder status --wait", c.ok("folder", "status", "Photos", "--wait"))
	d.set(func(f *fakeDaemon) {
		f.statuses = []foldersync.FolderStatus{failing, {Root: photos, Role: "rw", State: "idle", InSync: true}}
	})
	c.ttyOut = true
	out := c.ok("folder", "status", "Photos", "--wait")
	c.ttyOut = false
	// The progress bar's own controls are the only ones.
	check("folder status --wait on a terminal", strings.ReplaceAll(strings.ReplaceAll(out, "\r\033[K", ""), "\r", ""))

	// An error or a warning from the hosting server.
	d.set(func(f *fakeDaemon) { f.agentErr = errors.New("refused: " + hostileText) })
	r := c.run("folder", "share", "Photos", "bob", "--rights", "ro")
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("folder share refused: exit %d, stderr %q; want 1 and one line", r.code, r.stderr)
	}
	check("an error", r.stderr)

	// Devices, as the daemon lists them.
	var b bytes.Buffer
	printDevices(&b, []peer.DeviceInfo{{ID: "12D3KooWx", User: "ann", Name: hostileText, ServerName: "s1", Expires: testNow.Add(time.Hour), Valid: true}}, testNow)
	check("the device list", b.String())
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"Photos 2025 (ann's)": "Photos 2025 (ann's)",
		"Fotos ñ 写真 é":        "Fotos ñ 写真 é",
		"a\x1b[31mred":        `a\x1b[31mred`,
		"two\nlines\r":        `two\nlines\r`,
		"csi\u009b2J":         `csi\u009b2J`,
		"\u202eexe.txt":       `\u202eexe.txt`,
		"nul\x00 bell\a":      `nul\x00 bell\a`,
		"not utf-8 \xff\xfe":  `not utf-8 \xff\xfe`,
		"nbsp\u00a0here":      `nbsp\u00a0here`,
	} {
		got := printable(in)
		if got != want {
			t.Errorf("printable(%q) = %q; want %q", in, got, want)
		}
		if r, ok := shown(got); !ok {
			t.Errorf("printable(%q) = %q, with %U in it", in, got, r)
		}
	}
}
