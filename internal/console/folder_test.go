package console

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/baton-sync/baton/internal/control"
)

func TestConflictOriginal(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"notes.sync-conflict-20261204-150405-ABCDEFG.txt", "notes.txt"},
		{"dir/sub/notes.sync-conflict-20261204-150405-ABCDEFG-2.tar.gz", "dir/sub/notes.tar.gz"},
		{"Makefile.sync-conflict-20261204-150405-ABCDEFG", "Makefile"},
		{".bashrc.sync-conflict-20261204-150405-ABCDEFG", ".bashrc"},
	} {
		got, ok := conflictOriginal(tc.in)
		if !ok || got != tc.want {
			t.Errorf("conflictOriginal(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	for _, in := range []string{"notes.txt", ".sync-conflict-20261204-150405-ABCDEFG", "dir.sync-conflict-x/plain.txt"} {
		if got, ok := conflictOriginal(in); ok {
			t.Errorf("conflictOriginal(%q) = %q; want no conflict copy", in, got)
		}
	}
}

func TestConflictSide(t *testing.T) {
	cp := "d/a.sync-conflict-20261204-150405-ABCDEFG.txt"
	for _, tc := range []struct {
		copy, side, want string
		ok               bool
	}{
		{cp, sideCopy, cp, true},
		{cp, sideCurrent, "d/a.txt", true},
		{cp, "other", "", false},
		{"d/a.txt", sideCopy, "", false}, // not a conflict copy
		{"../a.sync-conflict-20261204-150405-ABCDEFG.txt", sideCopy, "", false},      // leaves the folder
		{"/etc/a.sync-conflict-20261204-150405-ABCDEFG.txt", sideCurrent, "", false}, // absolute
		{"d/../../a.sync-conflict-20261204-150405-ABCDEFG.txt", sideCopy, "", false},
	} {
		got, err := conflictSide(tc.copy, tc.side)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("conflictSide(%q, %q) = %q, %v; want %q (ok %v)", tc.copy, tc.side, got, err, tc.want, tc.ok)
		}
	}
}

func TestFindConflicts(t *testing.T) {
	fsys := fstest.MapFS{
		"a.txt": {Data: []byte("now")},
		"a.sync-conflict-20261204-150405-ABCDEFG.txt":  {Data: []byte("then!")},
		"d/gone.sync-conflict-20261204-150405-ABCDEFG": {Data: []byte("x")},
		"d/b.txt": {Data: []byte("b")},
		"e/c.sync-conflict-20261204-150405-ABCDEFG.md": {Data: []byte("c")},
	}
	got, more, err := findConflicts(fsys, 10, 100)
	if err != nil || more {
		t.Fatalf("findConflicts: more %v, %v", more, err)
	}
	want := []conflictPair{
		{Copy: "a.sync-conflict-20261204-150405-ABCDEFG.txt", Original: "a.txt", OriginalHere: true, Size: 5},
		{Copy: "d/gone.sync-conflict-20261204-150405-ABCDEFG", Original: "d/gone", Size: 1},
		{Copy: "e/c.sync-conflict-20261204-150405-ABCDEFG.md", Original: "e/c.md", Size: 1},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("findConflicts (-want +got):\n%s", d)
	}
	if got, more, _ := findConflicts(fsys, 2, 100); len(got) != 2 || !more {
		t.Errorf("findConflicts with a limit of 2: %d, more %v; want 2 and more", len(got), more)
	}
	if _, _, err := findConflicts(fsys, 10, 3); err == nil || !strings.Contains(err.Error(), "first 3 entries") {
		t.Errorf("findConflicts looking at 3 entries: %v; want it to say it stopped", err)
	}
}

// agentWithHistory is an agent (alice) with F1, her own folder, and F3,
// bob's, shared with her read-only; both have a history.
func agentWithHistory(t *testing.T, root string) *fakeSource {
	src := newFakeServer()
	t0 := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	src.set(func(f *fakeSource) {
		f.status.Role, f.status.Chain = "agent", nil
		f.folders = append(f.folders, consoleFolder("F3", "music", "bob", consoleMember("bob", "owner"), consoleMember("alice", "ro")))
		st := f.fstatus["F1"]
		st.Root = root
		f.fstatus["F1"] = st
		f.fstatus["F3"] = consoleStatus("F3", "idle", 0)
		f.notHere = map[string]bool{"F2": true}
		f.history = map[string][]control.HistoryVersion{
			"F1": {
				{Version: 1, Time: t0, Path: "a.txt", Type: "file", Size: 11, User: "alice", Device: "12D3KooWLaptopLaptop"},
				{Version: 2, Time: t0.Add(time.Hour), Path: "dir/b.txt", Type: "file", Size: 2048, User: "bob", Device: "12D3KooWDeskDesk"},
				{Version: 3, Time: t0.Add(2 * time.Hour), Path: "a.txt", Type: "file", Deleted: true, User: "bob", Device: "12D3KooWDeskDesk"},
			},
			"F3": {{Version: 1, Time: t0, Path: "song.ogg", Type: "file", Size: 100, User: "bob"}},
		}
	})
	return src
}

// TestFolderPage: a folder's page lists its history newest first with a
// restore button per version and for the whole folder, filters it by
// path, and lists the conflict copies with links to both sides. A
// read-only member sees the history without restore buttons.
func TestFolderPage(t *testing.T) {
	root := t.TempDir()
	for name, data := range map[string]string{
		"a.txt": "now", "a.sync-conflict-20261204-150405-ABCDEFG.txt": "then",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := agentWithHistory(t, root)
	c, _ := newTestConsole(t, src)
	base := serve(t, c)

	body := page(t, base, "/folder/F1")
	contains(t, "alice's folder page", body, `<body data-folder="F1">`, `id="stale"`, "Folder docs", "<h2>History</h2>",
		`action="/action/folder-restore"`, `action="/action/folder-restore-all"`, "Restore folder to this time",
		`name="version" value="2"`, `name="back" value="/folder/F1"`, "dir/b.txt", "2.0 KiB", `<span class="warning">deleted</span>`, "bob",
		"<h2>Conflicts</h2>", "a.sync-conflict-20261204-150405-ABCDEFG.txt", "of a.txt",
		`href="/folder/F1/conflict?copy=a.sync-conflict-20261204-150405-ABCDEFG.txt&amp;side=copy"`,
		`href="/folder/F1/conflict?copy=a.sync-conflict-20261204-150405-ABCDEFG.txt&amp;side=current"`)
	if i, j := strings.Index(body, `data-version="3"`), strings.Index(body, `data-version="1"`); i < 0 || j < 0 || i > j {
		t.Errorf("the history is not newest first (version 3 at %d, version 1 at %d)", i, j)
	}
	// The deleted version has no per-file restore (restoring a deletion
	// deletes), only the whole folder's.
	if v3 := rowOf(body, `data-version="3"`); strings.Contains(v3, "Restore this version") || !strings.Contains(v3, "Restore folder to this time") {
		t.Errorf("the deletion's row offers %q", v3)
	}

	// By path.
	body = page(t, base, "/folder/F1?path=a.txt")
	if strings.Contains(body, "dir/b.txt") || !strings.Contains(body, `value="/folder/F1?path=a.txt"`) {
		t.Error("the history of a.txt lists other paths, or its restores do not come back to it")
	}

	// A read-only member: the history, no restore.
	body = page(t, base, "/folder/F3")
	contains(t, "the read-only folder's page", body, "song.ogg", "read-only member")
	for _, not := range []string{"/action/folder-restore", "Restore"} {
		if strings.Contains(body, not) {
			t.Errorf("a read-only member's page offers %q", not)
		}
	}
	// A folder without history says why; one not synced here is not found.
	src.set(func(f *fakeSource) { delete(f.history, "F1") })
	contains(t, "a folder without history", page(t, base, "/folder/F1"), "No history: no history kept for folder F1")
	if code := getStatus(t, base+"/folder/F2"); code != http.StatusNotFound {
		t.Errorf("a folder not synced here: %d; want 404", code)
	}
	if code := getStatus(t, base+"/folder/F1?x=1"); code != http.StatusOK {
		t.Errorf("folder page: %d", code)
	}
}

func rowOf(body, marker string) string {
	i := strings.Index(body, marker)
	if i < 0 {
		return ""
	}
	rest := body[i:]
	if j := strings.Index(rest, "</tr>"); j >= 0 {
		return rest[:j]
	}
	return rest
}

func getStatus(t *testing.T, u string) int {
	t.Helper()
	resp, _ := getWith(t, u, nil)
	return resp.StatusCode
}

func getWith(t *testing.T, u string, set func(*http.Request)) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if set != nil {
		set(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestConflictFile: both sides of a conflict are served read-only from
// the folder's directory, with a type that runs nothing; nothing outside
// the directory is served, by name or through a symbolic link.
func TestConflictFile(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	files := map[string]string{
		"d/a.txt": "the file now\n",
		"d/a.sync-conflict-20261204-150405-ABCDEFG.txt": "the losing version\n",
		"p.sync-conflict-20261204-150405-ABCDEFG.html":  "<script>alert(1)</script>",
		"p.html": "<html><script>fetch('/v1/status')</script></html>",
	}
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("not yours"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A member's symbolic link pointing outside the folder, named as a
	// conflict copy, and as the original of one.
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "s.sync-conflict-20261204-150405-ABCDEFG.txt")); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "s.txt")); err != nil {
		t.Fatal(err)
	}
	src := agentWithHistory(t, root)
	c, _ := newTestConsole(t, src)
	base := serve(t, c)
	get := func(cp, side string) (*http.Response, string) {
		return getWith(t, base+"/folder/F1/conflict?"+url.Values{"copy": {cp}, "side": {side}}.Encode(), nil)
	}

	resp, body := get("d/a.sync-conflict-20261204-150405-ABCDEFG.txt", sideCopy)
	if resp.StatusCode != 200 || body != files["d/a.sync-conflict-20261204-150405-ABCDEFG.txt"] || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("the copy: %s %q %q", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	resp, body = get("d/a.sync-conflict-20261204-150405-ABCDEFG.txt", sideCurrent)
	if resp.StatusCode != 200 || body != files["d/a.txt"] || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "inline") {
		t.Errorf("the file now: %s %q %q", resp.Status, resp.Header.Get("Content-Disposition"), body)
	}
	// HTML is a download, in a sandbox, never a page of the console.
	for _, side := range []string{sideCopy, sideCurrent} {
		resp, _ = get("p.sync-conflict-20261204-150405-ABCDEFG.html", side)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" ||
			!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") ||
			!strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "sandbox") {
			t.Errorf("an HTML %s: %s %v", side, resp.Status, resp.Header)
		}
	}
	// Nothing outside the folder.
	for _, tc := range []struct{ copy, side string }{
		{"s.sync-conflict-20261204-150405-ABCDEFG.txt", sideCopy},
		{"s.sync-conflict-20261204-150405-ABCDEFG.txt", sideCurrent},
		{"../" + filepath.Base(outside) + "/secret.sync-conflict-20261204-150405-ABCDEFG.txt", sideCopy},
		{"d/a.txt", sideCopy}, // not a conflict: not served
	} {
		resp, body := get(tc.copy, tc.side)
		if resp.StatusCode == 200 || strings.Contains(body, "not yours") {
			t.Errorf("%s of %q: %s %q; want refused", tc.side, tc.copy, resp.Status, body)
		}
	}
	// Behind the console's login like every page.
	resp, err := http.Get(base + "/folder/F1/conflict?copy=d/a.sync-conflict-20261204-150405-ABCDEFG.txt&side=copy")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "losing version") || resp.Request.URL.Path != "/login" {
		t.Errorf("a conflict without a session: at %s; want sent to /login", resp.Request.URL)
	}
}
