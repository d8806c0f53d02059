package syncfs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baton-sync/baton/syncfs"
)

func TestCheckName(t *testing.T) {
	long := strings.Repeat("x", syncfs.MaxComponentLen)
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"a/b/c.txt", true},
		{"..a", true},
		{"a..", true},
		{"a/.hidden", true},
		{"...", true},
		{"COM1", true}, // safe on Unix; see CheckWindowsName
		{"naïve/ünïcödé", true},
		{long, true},
		{long + "/" + long, true},
		{"", false},
		{"/etc/passwd", false},
		{"/", false},
		{"..", false},
		{".", false},
		{"../x", false},
		{"a/../../x", false},
		{"a/..", false},
		{"a/./b", false},
		{"./a", false},
		{"a/", false},
		{"a//b", false},
		{"a\x00b", false},
		{"a\\..\\b", false},
		{`..\x`, false},
		{"a\nb", false},
		{"a\x7fb", false},
		{"a\x1bb", false},
		{"\xff\xfe", false},
		{long + "x", false},
		{strings.Repeat("abcdefg/", 600), false},
	}
	for _, tt := range tests {
		err := syncfs.CheckName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v; want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, syncfs.ErrBadName) {
			t.Errorf("CheckName(%q) = %v; want ErrBadName", tt.name, err)
		}
	}
}

func TestClashes(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"README", "readme", true},
		{"dir/File.txt", "DIR/file.TXT", true},
		{"caf\u00e9", "cafe\u0301", true}, // NFC vs NFD
		{"CAF\u00c9", "cafe\u0301", true},
		{"stra\u00dfe", "STRASSE", true}, // full case folding
		{"\u13a0", "\uab70", true},       // Cherokee folds to upper case
		{"\u13f0", "\u13f8", true},
		{"a", "a", false}, // the same name is not a clash
		{"a", "b", false},
		{"a/b", "a.b", false},
	}
	for _, tt := range tests {
		if got := syncfs.Clashes(tt.a, tt.b); got != tt.want {
			t.Errorf("Clashes(%q, %q) = %v; want %v", tt.a, tt.b, got, tt.want)
		}
	}
	idx := syncfs.NewClashIndex()
	if _, ok := idx.Add("Docs/Report.txt"); !ok {
		t.Fatal("first Add clashed")
	}
	if _, ok := idx.Add("Docs/Report.txt"); !ok {
		t.Error("re-adding the same name clashed")
	}
	if prev, ok := idx.Add("docs/report.TXT"); ok || prev != "Docs/Report.txt" {
		t.Errorf("Add(clashing) = %q, %v; want Docs/Report.txt, false", prev, ok)
	}
}

func TestSafeJoin(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	got, err := syncfs.SafeJoin(root, "a/b.txt")
	if err != nil || got != filepath.Join(root, "a", "b.txt") {
		t.Errorf("SafeJoin(root, a/b.txt) = %q, %v", got, err)
	}
	for _, n := range []string{"../x", "a/../../x", "/etc/passwd", "", "..", "a/..", "a\\..\\b"} {
		if got, err := syncfs.SafeJoin(root, n); err == nil {
			t.Errorf("SafeJoin(root, %q) = %q, nil; want an error", n, got)
		}
	}
}

func TestCheckNoSymlinkTraversal(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "real/sub"), 0o755))
	must(t, os.Symlink(outside, filepath.Join(root, "link")))
	must(t, os.Symlink(outside, filepath.Join(root, "real/sub/link")))
	must(t, os.WriteFile(filepath.Join(root, "file"), nil, 0o644))
	tests := []struct {
		name string
		want error
	}{
		{"real/sub/new.txt", nil},
		{"real/missing/deeper/x", nil},
		{"link", nil}, // the last component is replaced, not followed
		{"real/sub/link", nil},
		{"link/x", syncfs.ErrSymlinkTraversal},
		{"real/sub/link/deeper/x", syncfs.ErrSymlinkTraversal},
		{"file/x", syncfs.ErrNotDirectoryChain},
		{"../x", syncfs.ErrBadName},
	}
	for _, tt := range tests {
		err := syncfs.CheckNoSymlinkTraversal(root, tt.name)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("CheckNoSymlinkTraversal(root, %q) = %v; want %v", tt.name, err, tt.want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzCheckName checks that any name CheckName accepts joins to a path
// strictly inside the root, and that Canonical never panics.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{
		"../x", "a/../../x", "/etc/passwd", "a\x00b", "a\\..\\b", "COM1", "a/./b", "",
		"a/b/c", "..", ".", "a/", "//", "caf\u00e9", "\xff", "a/..b/c", "...", "a/.../b",
	} {
		f.Add(s)
	}
	root := filepath.FromSlash("/srv/folder")
	f.Fuzz(func(t *testing.T, name string) {
		_ = syncfs.Canonical(name)
		if syncfs.CheckName(name) != nil {
			return
		}
		p, err := syncfs.SafeJoin(root, name)
		if err != nil {
			t.Fatalf("CheckName(%q) ok but SafeJoin = %v", name, err)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
			t.Fatalf("SafeJoin(%q, %q) = %q, outside the root (rel %q)", root, name, p, rel)
		}
		if filepath.ToSlash(rel) != name {
			t.Fatalf("SafeJoin(%q, %q) = %q; name was not clean", root, name, p)
		}
	})
}
