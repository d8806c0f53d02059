package syncfs_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/baton-sync/baton/syncfs"
)

func TestCheckSymlinkTarget(t *testing.T) {
	for _, tc := range []struct {
		name, target string
		inside       bool
	}{
		{"l", "x", true},
		{"l", ".", true},
		{"l", "a/b/../c", true},
		{"a/b", "../c", true},
		{"a/b", "c/../../d", true},
		{"a/b/c", "../../x", true},
		{"a/b", `..\c`, true},
		{"a/b", "./../c/", true},
		{"l", "...", true},
		{"l", "ab:c", true},

		{"l", "", false},
		{"l", "x\x00y", false},
		{"l", "/etc/passwd", false},
		{"a/b", "/", false},
		{"l", "..", false},
		{"l", "../outside", false},
		{"a/l", "../../outside", false},
		{"a/b", "../../x", false},
		{"l", "a/../../x", false},
		{"l", "a/../b/../../x", false},
		{"a/b", `..\..\x`, false},
		{"l", `C:\Windows`, false},
		{"l", `c:x`, false},
		{"l", "a:b", false},
		{"l", `C:/Windows`, false},
		{"l", `\\server\share`, false},
		{"l", `\x`, false},
		{"l", `//server/share`, false},
	} {
		err := syncfs.CheckSymlinkTarget(tc.name, tc.target)
		if got := err == nil; got != tc.inside {
			t.Errorf("CheckSymlinkTarget(%q, %q) = %v; want inside %v", tc.name, tc.target, err, tc.inside)
		}
		if err != nil && !errors.Is(err, syncfs.ErrSymlinkOutside) {
			t.Errorf("CheckSymlinkTarget(%q, %q) = %v; want ErrSymlinkOutside", tc.name, tc.target, err)
		}
	}
}

// Remote symlinks pointing outside the folder are skipped with the reason,
// and the local entries they were to replace stay; the rest of the plan is
// made. With PlanOptions.OutsideSymlinks they are taken.
func TestPlanOutsideSymlinks(t *testing.T) {
	vl := syncfs.Vector{}.Update(devL)
	vr := vl.Update(devR)
	fresh := syncfs.Vector{}.Update(devR)
	link := func(name, target string, v syncfs.Vector) syncfs.FileInfo {
		return syncfs.FileInfo{Name: name, Type: syncfs.TypeSymlink, SymlinkTarget: target, ModTime: 1, Version: v}
	}
	local := syncfs.Snapshot{
		"keep":   {Name: "keep", Type: syncfs.TypeFile, Mode: 0o644, ModTime: 1, Version: vl},
		"dir":    {Name: "dir", Type: syncfs.TypeDir, Mode: 0o755, ModTime: 1, Version: vl},
		"mine":   link("mine", "/etc", vl), // made here: not looked at
		"a":      {Name: "a", Type: syncfs.TypeDir, Mode: 0o755, ModTime: 1, Version: vl},
		"a/conc": {Name: "a/conc", Type: syncfs.TypeFile, Mode: 0o644, ModTime: 1, Version: vl},
	}
	remote := syncfs.Snapshot{
		"keep":   link("keep", "/etc/passwd", vr),
		"dir":    link("dir", "../../outside", vr),
		"a":      local["a"],
		"a/up":   link("a/up", "a/../../x", fresh),
		"a/win":  link("a/win", `C:\Windows`, fresh),
		"a/unc":  link("a/unc", `\\server\share`, fresh),
		"a/conc": link("a/conc", "/", syncfs.Vector{}.Update(devR).Update(devR)),
		"a/in":   link("a/in", "../keep", fresh),
		"up":     link("up", "a/../../x", fresh),
		"a/out":  link("a/out", "../../outside", fresh),
		"file":   {Name: "file", Type: syncfs.TypeFile, Mode: 0o644, ModTime: 1, FileHash: syncfs.FileHashOf(nil), Version: fresh},
	}
	summary := func(plan []syncfs.Action) map[string]string {
		out := map[string]string{}
		for _, a := range plan {
			out[a.Name] = strings.TrimPrefix(out[a.Name]+" "+a.Kind.String(), " ")
			if a.Kind == syncfs.ActSkip && !strings.Contains(a.Reason, "symlink points outside the folder") {
				t.Errorf("%s skipped: %q; want a reason naming the outside target", a.Name, a.Reason)
			}
		}
		return out
	}
	got := summary(syncfs.Plan(local, remote, devL))
	want := map[string]string{"keep": "skip", "dir": "skip", "a/up": "symlink", "up": "skip", "a/out": "skip", "a/win": "skip", "a/unc": "skip", "a/conc": "skip", "a/in": "symlink", "file": "fetch"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Plan with outside symlinks (-want +got):\n%s", d)
	}
	got = summary(syncfs.PlanWith(local, remote, devL, syncfs.PlanOptions{OutsideSymlinks: true}))
	want = map[string]string{"keep": "symlink", "dir": "delete symlink", "a/up": "symlink", "up": "symlink", "a/out": "symlink", "a/win": "symlink", "a/unc": "symlink", "a/conc": "conflict", "a/in": "symlink", "file": "fetch"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("PlanWith OutsideSymlinks (-want +got):\n%s", d)
	}
}

func TestSkipOutsideSymlinks(t *testing.T) {
	v := syncfs.Vector{}.Update(devR)
	acts := []syncfs.Action{
		{Kind: syncfs.ActDelete, Name: "d", File: syncfs.FileInfo{Name: "d", Type: syncfs.TypeDir, Deleted: true, Version: v}},
		{Kind: syncfs.ActSymlink, Name: "d", File: syncfs.FileInfo{Name: "d", Type: syncfs.TypeSymlink, SymlinkTarget: "/etc", Version: v}},
		{Kind: syncfs.ActSymlink, Name: "in", File: syncfs.FileInfo{Name: "in", Type: syncfs.TypeSymlink, SymlinkTarget: "d", Version: v}},
	}
	var got []string
	for _, a := range syncfs.SkipOutsideSymlinks(acts) {
		got = append(got, a.Kind.String()+" "+a.Name)
	}
	if want := []string{"skip d", "symlink in"}; !slices.Equal(got, want) {
		t.Errorf("SkipOutsideSymlinks = %v; want %v", got, want)
	}
}

// Where this device cannot create symlinks (PlanOptions.NoSymlinks: on
// Windows without the privilege), every symlink of another device is
// skipped with that reason, inside the folder or not, also as the remote
// side of a conflict or a conflict copy; the local entry it was to
// replace stays, and the rest of the plan is made.
func TestPlanNoSymlinks(t *testing.T) {
	const why = "symlinks need a privilege"
	vl := syncfs.Vector{}.Update(devL)
	vr := vl.Update(devR)
	fresh := syncfs.Vector{}.Update(devR)
	link := func(name, target string, v syncfs.Vector) syncfs.FileInfo {
		return syncfs.FileInfo{Name: name, Type: syncfs.TypeSymlink, SymlinkTarget: target, ModTime: 1, Version: v}
	}
	local := syncfs.Snapshot{
		"keep": {Name: "keep", Type: syncfs.TypeFile, Mode: 0o644, ModTime: 1, Version: vl},
		"dir":  {Name: "dir", Type: syncfs.TypeDir, Mode: 0o755, ModTime: 1, Version: vl},
		"conc": fileInfo("conc", "mine", 1, syncfs.Vector{}.Update(devL).Update(devL)),
	}
	remote := syncfs.Snapshot{
		"keep": link("keep", "dir", vr),
		"dir":  link("dir", "keep", vr),
		"in":   link("in", "keep", fresh),
		"out":  link("out", "/etc", fresh),
		"conc": link("conc", "keep", syncfs.Vector{}.Update(devR).Update(devR)),
		"file": {Name: "file", Type: syncfs.TypeFile, Mode: 0o644, ModTime: 1, FileHash: syncfs.FileHashOf(nil), Version: fresh},
	}
	got := map[string]string{}
	for _, a := range syncfs.PlanWith(local, remote, devL, syncfs.PlanOptions{NoSymlinks: why, OutsideSymlinks: true}) {
		got[a.Name] = strings.TrimPrefix(got[a.Name]+" "+a.Kind.String(), " ")
		if a.Kind == syncfs.ActSkip && a.Reason != why {
			t.Errorf("%s skipped: %q; want %q", a.Name, a.Reason, why)
		}
		if a.Kind != syncfs.ActSkip && a.File.Type == syncfs.TypeSymlink && !a.File.Deleted {
			t.Errorf("%v creates a symlink", a)
		}
	}
	// conc: the remote symlink wins or loses by the tie-break; either way
	// it is skipped, and the local file stays recorded or untouched.
	delete(got, "conc")
	for name := range got {
		if strings.HasPrefix(name, "conc") {
			t.Errorf("%s: %s; want no conflict copy of a symlink", name, got[name])
			delete(got, name)
		}
	}
	want := map[string]string{"keep": "skip", "dir": "skip", "in": "skip", "out": "skip", "file": "fetch"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("PlanWith NoSymlinks (-want +got):\n%s", d)
	}
	acts := syncfs.SkipSymlinks([]syncfs.Action{
		{Kind: syncfs.ActDelete, Name: "d", File: syncfs.FileInfo{Name: "d", Type: syncfs.TypeFile, Deleted: true, Version: fresh}},
		{Kind: syncfs.ActSymlink, Name: "d", File: link("d", "in", fresh)},
	}, why)
	if len(acts) != 1 || acts[0].Kind != syncfs.ActSkip || acts[0].Reason != why {
		t.Errorf("SkipSymlinks = %v; want the symlink skipped, the deletion dropped", acts)
	}
}
