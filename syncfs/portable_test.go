package syncfs_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/text/unicode/norm"

	"github.com/baton-sync/baton/syncfs"
)

func TestCheckWindowsName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
		why  string // part of the error
	}{
		{"a", true, ""},
		{"a/b.txt", true, ""},
		{"COM", true, ""},
		{"COM10", true, ""},
		{"LPT", true, ""},
		{"console", true, ""},
		{"nulx", true, ""},
		{"xCON", true, ""},
		{"CON_", true, ""},
		{".CON", true, ""},
		{"a.b.c", true, ""},
		{".hidden", true, ""},
		{"...a", true, ""},
		{" lead", true, ""},
		{"naïve/ünïcödé", true, ""},
		{"COM¼", true, ""},
		{"CONIN", true, ""},

		{"CON", false, "reserved device name"},
		{"con", false, "reserved device name"},
		{"Prn", false, "reserved device name"},
		{"AUX", false, "reserved device name"},
		{"nul", false, "reserved device name"},
		{"CONIN$", false, "reserved device name"},
		{"conout$.txt", false, "reserved device name"},
		{"COM0", false, "reserved device name"},
		{"COM1", false, "reserved device name"},
		{"com9", false, "reserved device name"},
		{"COM¹", false, "reserved device name"},
		{"LPT²", false, "reserved device name"},
		{"lpt³.log", false, "reserved device name"},
		{"LPT1", false, "reserved device name"},
		{"LPT9.log", false, "reserved device name"},
		{"CON.txt", false, "reserved device name"},
		{"NUL.tar.gz", false, "reserved device name"},
		{"CON .txt", false, "reserved device name"},
		{"a/com1.txt", false, `"com1.txt" is a reserved device name`},
		{"a/CON/b", false, `"CON" is a reserved device name`},
		{"b.", false, "ends in a dot"},
		{"dir./b", false, "ends in a dot"},
		{"...", false, "ends in a dot"},
		{"c ", false, "ends in a space"},
		{"a/c /d", false, "ends in a space"},
		{"a<b", false, `holds '<'`},
		{"a>b", false, `holds '>'`},
		{"a:b", false, `holds ':'`},
		{`a"b`, false, `holds '"'`},
		{"a|b", false, `holds '|'`},
		{"x?", false, `holds '?'`},
		{"*", false, `holds '*'`},
		{`a\b`, false, `holds '\\'`},
		{"a\x01b", false, "control character"},
		{"a\x1fb", false, "control character"},
		{"a/b\tc", false, "control character"},
	} {
		err := syncfs.CheckWindowsName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckWindowsName(%q) = %v; want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, syncfs.ErrUnportableName) {
			t.Errorf("CheckWindowsName(%q) = %v; want ErrUnportableName", tc.name, err)
		}
		if !strings.Contains(err.Error(), tc.why) {
			t.Errorf("CheckWindowsName(%q) = %v; want a reason with %q", tc.name, err, tc.why)
		}
	}
}

func TestNameRulesPathLength(t *testing.T) {
	root := `C:\Users\someone\Baton` // 22 code units
	rules := syncfs.WindowsNameRules(root)
	room := syncfs.MaxWindowsPath - len(root) - 1
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{strings.Repeat("a", room), true},
		{strings.Repeat("a", room+1), false},
		{"d/" + strings.Repeat("a", room-2), true},
		{"d/" + strings.Repeat("a", room-1), false},
		// é is one UTF-16 code unit (two bytes of UTF-8); 😀 is two.
		{strings.Repeat("é", room), true},
		{strings.Repeat("é", room+1), false},
		{strings.Repeat("😀", room/2), true},
		{strings.Repeat("😀", room/2) + "ab", false},
	} {
		err := rules.Check(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("WindowsNameRules(%q).Check(%d code units) = %v; want ok=%v", root, len([]rune(tc.name)), err, tc.ok)
		}
		if err != nil && !errors.Is(err, syncfs.ErrUnportableName) {
			t.Errorf("Check = %v; want ErrUnportableName", err)
		}
	}
	// Without a root (a folder elsewhere keeping to Windows' names) the
	// name alone counts.
	if err := syncfs.WindowsNameRules("").Check(strings.Repeat("a", syncfs.MaxWindowsPath)); err != nil {
		t.Errorf("WindowsNameRules(\"\").Check(259 letters) = %v; want nil", err)
	}
	if err := syncfs.WindowsNameRules("").Check(strings.Repeat("a", syncfs.MaxWindowsPath+1)); err == nil {
		t.Errorf("WindowsNameRules(\"\").Check(260 letters) = nil; want an error")
	}
	if err := (syncfs.NameRules{}).Check("CON"); err != nil {
		t.Errorf("NameRules{}.Check(CON) = %v; want nil", err)
	}
}

// With Windows' naming rules, a remote entry Windows cannot hold is not
// created, changed nor deleted (a local one stays as it is), each skip
// says why, and the rest of the folder syncs: entries beside it, and a
// move between two good names.
func TestPlanWindowsNames(t *testing.T) {
	vl := syncfs.Vector{}.Update(devL)
	vr := vl.Update(devR)
	fresh := syncfs.Vector{}.Update(devR)
	dir := func(name string, v syncfs.Vector) syncfs.FileInfo {
		return syncfs.FileInfo{Name: name, Type: syncfs.TypeDir, Mode: 0o755, ModTime: 1, Version: v}
	}
	gone := func(f syncfs.FileInfo) syncfs.FileInfo {
		return syncfs.FileInfo{Name: f.Name, Type: f.Type, Deleted: true, ModTime: f.ModTime, Version: vr}
	}
	local := syncfs.Snapshot{
		"aux.log":   fileInfo("aux.log", "old log", 1, vl), // from before the folder kept to Windows' names
		"moved":     fileInfo("moved", "content of a move", 1, vl),
		"trail.":    fileInfo("trail.", "x", 1, vl),
		"ok.txt":    fileInfo("ok.txt", "ok", 1, vl),
		"kept":      dir("kept", vl),
		"kept/NUL":  fileInfo("kept/NUL", "null", 1, vl),
		"kept/gone": fileInfo("kept/gone", "bye", 1, vl),
	}
	remote := syncfs.Snapshot{
		"aux.log":     fileInfo("aux.log", "new log", 2, vr),
		"moved":       gone(local["moved"]),
		"there":       fileInfo("there", "content of a move", 1, fresh),
		"trail.":      gone(local["trail."]),
		"ok.txt":      fileInfo("ok.txt", "ok, changed", 2, vr),
		"CON":         dir("CON", fresh),
		"CON/inside":  fileInfo("CON/inside", "in", 1, fresh),
		"what?":       fileInfo("what?", "q", 1, fresh),
		"fine":        fileInfo("fine", "fine", 1, fresh),
		"kept":        gone(local["kept"]),
		"kept/NUL":    gone(local["kept/NUL"]),
		"kept/gone":   gone(local["kept/gone"]),
		"link":        {Name: "link", Type: syncfs.TypeSymlink, SymlinkTarget: "ok.txt", ModTime: 1, Version: fresh},
		"link:stream": {Name: "link:stream", Type: syncfs.TypeSymlink, SymlinkTarget: "ok.txt", ModTime: 1, Version: fresh},
	}
	summary := func(plan []syncfs.Action) map[string]string {
		out := map[string]string{}
		for _, a := range plan {
			out[a.Name] = strings.TrimPrefix(out[a.Name]+" "+a.Kind.String(), " ")
			if a.Kind == syncfs.ActSkip && !strings.Contains(a.Reason, "on Windows") {
				t.Errorf("%s skipped: %q; want a reason naming Windows", a.Name, a.Reason)
			}
		}
		return out
	}
	got := summary(syncfs.PlanWith(local, remote, devL, syncfs.PlanOptions{Names: syncfs.WindowsNameRules("")}))
	want := map[string]string{
		"aux.log": "skip", "trail.": "skip", "CON": "skip", "CON/inside": "skip", "what?": "skip",
		"kept/NUL": "skip", "link:stream": "skip",
		"there": "rename", "ok.txt": "fetch", "fine": "fetch", "link": "symlink",
		"kept/gone": "delete",
		"kept":      "record", // holds kept/NUL still: not deleted
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("PlanWith Windows names (-want +got):\n%s", d)
	}
	got = summary(syncfs.Plan(local, remote, devL))
	want = map[string]string{
		"aux.log": "fetch", "trail.": "delete", "CON": "mkdir", "CON/inside": "fetch", "what?": "fetch",
		"kept/NUL": "delete", "link:stream": "symlink",
		"there": "rename", "ok.txt": "fetch", "fine": "fetch", "link": "symlink",
		"kept/gone": "delete", "kept": "delete",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Plan without name rules (-want +got):\n%s", d)
	}
}

func TestSkipUnportableNames(t *testing.T) {
	v := syncfs.Vector{}.Update(devR)
	acts := []syncfs.Action{
		{Kind: syncfs.ActDelete, Name: "PRN", File: syncfs.FileInfo{Name: "PRN", Deleted: true, Version: v}},
		{Kind: syncfs.ActRecord, Name: "LPT1", File: syncfs.FileInfo{Name: "LPT1", Version: v}},
		{Kind: syncfs.ActConflict, Name: "a", ConflictName: "a.", File: syncfs.FileInfo{Name: "a", Version: v}},
		{Kind: syncfs.ActRename, Name: "b", From: "c?", File: syncfs.FileInfo{Name: "b", Version: v}},
		{Kind: syncfs.ActMeta, Name: "ok", File: syncfs.FileInfo{Name: "ok", Version: v}},
	}
	var got []string
	for _, a := range syncfs.SkipUnportableNames(acts, syncfs.WindowsNameRules("")) {
		got = append(got, a.Kind.String()+" "+a.Name)
	}
	want := []string{"skip PRN", "record LPT1", "skip a", "skip b", "meta ok"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("SkipUnportableNames (-want +got):\n%s", d)
	}
}

// FuzzNameMapping checks, for any name, that the Windows name check and
// the clash form agree with what they promise: a name Windows takes has
// no forbidden character, no reserved component and no trailing dot or
// space; the canonical form ignores case and normalization (NFC or NFD);
// and neither panics.
func FuzzNameMapping(f *testing.F) {
	for _, s := range []string{"a", "CON", "con.txt", "a/b.", "Ä", "A\u0308", "ß", "ﬁle", "COM¹", "x:y", "a/ b ", "ǅ", "\u0130"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := syncfs.CheckWindowsName(name)
		if err != nil && !errors.Is(err, syncfs.ErrUnportableName) {
			t.Fatalf("CheckWindowsName(%q) = %v; want ErrUnportableName", name, err)
		}
		if err == nil {
			for c := range strings.SplitSeq(name, "/") {
				if strings.ContainsAny(c, `<>:"|?*\`) || strings.HasSuffix(c, ".") || strings.HasSuffix(c, " ") {
					t.Fatalf("CheckWindowsName(%q) = nil; component %q is not allowed", name, c)
				}
				for _, r := range c {
					if r < 0x20 {
						t.Fatalf("CheckWindowsName(%q) = nil; %q holds a control character", name, c)
					}
				}
				base, _, _ := strings.Cut(c, ".")
				switch strings.ToUpper(strings.TrimRight(base, " ")) {
				case "CON", "PRN", "AUX", "NUL", "COM1", "LPT1", "COM9", "LPT9":
					t.Fatalf("CheckWindowsName(%q) = nil; %q is a device", name, c)
				}
			}
		}
		if !utf8.ValidString(name) {
			return
		}
		c := syncfs.Canonical(name)
		if syncfs.Canonical(c) != c {
			t.Fatalf("Canonical(Canonical(%q)) = %q; want %q", name, syncfs.Canonical(c), c)
		}
		for _, other := range []string{norm.NFD.String(name), norm.NFC.String(name), strings.ToUpper(name), strings.ToLower(name)} {
			if syncfs.Canonical(other) != c && utf8.ValidString(other) && strings.EqualFold(other, name) {
				t.Fatalf("Canonical(%q) = %q, Canonical(%q) = %q; want equal", name, c, other, syncfs.Canonical(other))
			}
		}
		if syncfs.Canonical(norm.NFD.String(name)) != c {
			t.Fatalf("Canonical(NFD(%q)) = %q; want %q", name, syncfs.Canonical(norm.NFD.String(name)), c)
		}
	})
}
