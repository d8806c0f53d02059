package syncfs_test

import (
	"strings"
	"testing"

	"github.com/baton-sync/baton/syncfs"
)

func TestIgnoreMatch(t *testing.T) {
	type probe struct {
		path  string
		isDir bool
		want  bool
	}
	tests := []struct {
		patterns string
		probes   []probe
	}{
		{"", []probe{{"a", false, false}}},
		{"# comment\n\n   \n", []probe{{"# comment", false, false}}},
		{`\#notcomment`, []probe{{"#notcomment", false, true}}},
		{"*.o", []probe{{"a.o", false, true}, {"x/y/a.o", false, true}, {"a.c", false, false}, {"a.o/b.c", false, true}}},
		{"build/", []probe{{"build", true, true}, {"build", false, false}, {"src/build", true, true}, {"build/x.c", false, true}, {"src/build/x", false, true}}},
		{"/build", []probe{{"build", true, true}, {"build", false, true}, {"src/build", true, false}}},
		{"doc/frotz", []probe{{"doc/frotz", false, true}, {"a/doc/frotz", false, false}}},
		{"doc/frotz/", []probe{{"doc/frotz", true, true}, {"doc/frotz", false, false}}},
		{"foo?", []probe{{"food", false, true}, {"foo", false, false}, {"foo/", false, false}}},
		{"[abc].txt", []probe{{"a.txt", false, true}, {"d.txt", false, false}}},
		{"[!abc].txt", []probe{{"a.txt", false, false}, {"d.txt", false, true}}},
		{"[a-c]x", []probe{{"bx", false, true}, {"dx", false, false}}},
		{"**/foo", []probe{{"foo", false, true}, {"a/b/foo", true, true}, {"a/foox", false, false}}},
		{"**/foo/bar", []probe{{"foo/bar", false, true}, {"x/foo/bar", false, true}, {"x/foo/baz", false, false}}},
		{"abc/**", []probe{{"abc", true, false}, {"abc/x", false, true}, {"abc/x/y", false, true}, {"x/abc/y", false, false}}},
		{"a/**/b", []probe{{"a/b", false, true}, {"a/x/b", false, true}, {"a/x/y/b", false, true}, {"a/x/y/c", false, false}, {"b", false, false}}},
		{"a/**/**/b", []probe{{"a/b", false, true}, {"a/x/y/b", false, true}}},
		{"*.log\n!keep.log", []probe{{"x.log", false, true}, {"keep.log", false, false}, {"d/keep.log", false, false}}},
		{"*.log\n!keep.log\nkeep.log", []probe{{"keep.log", false, true}}},
		// A directory's contents cannot be re-included once it is ignored.
		{"logs/\n!logs/keep.txt", []probe{{"logs/keep.txt", false, true}, {"logs", true, true}}},
		// But the contents pattern with a negation works.
		{"logs/*\n!logs/keep.txt", []probe{{"logs/keep.txt", false, false}, {"logs/other", false, true}, {"logs", true, false}}},
		{"trailing   ", []probe{{"trailing", false, true}}},
		{`space\ `, []probe{{"space ", false, true}, {"space", false, false}}},
		{`\!bang`, []probe{{"!bang", false, true}}},
		{"a/*/c", []probe{{"a/b/c", false, true}, {"a/b/x/c", false, false}}},
		{"/", []probe{{"a", false, false}}},
		{"*", []probe{{"a", false, true}, {"a/b", false, true}}},
		{"crlf\r\n", []probe{{"crlf", false, true}}},
	}
	for _, tt := range tests {
		m, err := syncfs.ParseIgnoreString(tt.patterns)
		if err != nil {
			t.Errorf("ParseIgnoreString(%q) = %v", tt.patterns, err)
			continue
		}
		for _, p := range tt.probes {
			if got := m.Match(p.path, p.isDir); got != p.want {
				t.Errorf("patterns %q: Match(%q, dir=%v) = %v; want %v", tt.patterns, p.path, p.isDir, got, p.want)
			}
		}
	}
}

func TestIgnoreNil(t *testing.T) {
	var m *syncfs.Matcher
	if m.Match("a", false) {
		t.Error("nil Matcher matched")
	}
}

func TestParseIgnoreErrors(t *testing.T) {
	for _, s := range []string{"ok\n[unclosed", `bad\`} {
		if _, err := syncfs.ParseIgnoreString(s); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("ParseIgnoreString(%q) error = %v; want a bad pattern with its line", s, err)
		}
	}
	big := strings.Repeat("x\n", syncfs.MaxIgnoreSize)
	if _, err := syncfs.ParseIgnoreString(big); err == nil {
		t.Error("oversized ignore file accepted")
	}
}

func FuzzParseIgnore(f *testing.F) {
	for _, s := range []string{"*.o\n!keep.o\nbuild/\n/root\n", "a/**/b\n**/c\nd/**", "[!a-z]?\n\\#x\n\\!y", "[", "**/**/**/**/x", "\\"} {
		f.Add(s, "a/b/c.o", false)
	}
	f.Fuzz(func(t *testing.T, patterns, name string, isDir bool) {
		m, err := syncfs.ParseIgnoreString(patterns)
		if err != nil {
			return
		}
		got := m.Match(name, isDir)
		// Reparsing the normalised patterns gives the same matcher.
		m2, err := syncfs.ParseIgnoreString(m.String())
		if err != nil {
			t.Fatalf("reparse of %q: %v", m.String(), err)
		}
		if m2.Match(name, isDir) != got {
			t.Fatalf("reparse changed Match(%q)", name)
		}
		// Anything inside an ignored directory is ignored.
		if syncfs.CheckName(name) == nil && m.Match(name, true) && !m.Match(name+"/child", false) {
			t.Fatalf("patterns %q ignore dir %q but not its child", patterns, name)
		}
	})
}
