package syncfs_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/baton-sync/baton/syncfs"
	"github.com/baton-sync/baton/syncfs/syncfstest"
)

// fakeTime is when the files of the fake devices were written.
var fakeTime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeDevice is a device whose folder is a syncfstest.FakeFS: the real
// Scanner reads it, Plan decides, and the real Applier writes it.
type fakeDevice struct {
	id    string
	fsys  *syncfstest.FakeFS
	local syncfs.Local
	skips map[string]string // the last plan's skips, by name
}

func (d *fakeDevice) scan(t *testing.T) {
	t.Helper()
	sc := &syncfs.Scanner{Root: "/" + d.id, Self: d.id, FS: d.fsys, Now: func() time.Time { return fakeTime.Add(time.Hour) }}
	if _, err := sc.Update(context.Background(), &d.local); err != nil {
		t.Fatalf("%s: scan: %v", d.id, err)
	}
}

// take plans from o's index, applies with the Applier, and rescans.
func (d *fakeDevice) take(t *testing.T, o *fakeDevice, blocks blockMap) {
	t.Helper()
	plan := syncfs.Plan(&d.local, o.local.Snapshot(), d.id)
	d.skips = map[string]string{}
	for _, a := range plan {
		if a.Kind == syncfs.ActSkip {
			d.skips[a.Name] = a.Reason
		}
	}
	ap := &syncfs.Applier{Root: "/" + d.id, FS: d.fsys, Source: blocks}
	for _, r := range ap.Apply(context.Background(), &d.local, plan) {
		if r.Err != nil {
			t.Fatalf("%s: applying %v: %v", d.id, r.Action, r.Err)
		}
	}
	d.scan(t)
}

// A Linux device (exact names) and a macOS one (case-insensitive, names
// stored in NFD) sync a folder holding names that are one on macOS: NFC
// and NFD twins, names differing only in case, and names typed in NFC on
// macOS. They settle in a few rounds, and then nothing changes (no
// ping-pong); nothing is lost: every file stays on Linux under the name it
// was made with and never gets a version from macOS, macOS holds one of
// each set of twins and lists the other as skipped, and macOS' own files
// reach Linux under the NFC names they were typed with.
func TestFakeFSNormalizingConverges(t *testing.T) {
	lin := &fakeDevice{id: devL, fsys: syncfstest.NewFakeFS(false, false), local: syncfs.NewLocal()}
	mac := &fakeDevice{id: devR, fsys: syncfstest.NewFakeFS(true, true), local: syncfs.NewLocal()}
	blocks := blockMap{}
	write := func(d *fakeDevice, name, data string) {
		t.Helper()
		for _, b := range mustBlocks(t, data) {
			blocks[b.Hash] = []byte(data)[b.Offset : b.Offset+int64(b.Size)]
		}
		if err := d.fsys.WriteFile(name, []byte(data), 0o644, fakeTime); err != nil {
			t.Fatal(err)
		}
	}
	mkdir := func(d *fakeDevice, name string) {
		t.Helper()
		if err := d.fsys.MakeDir(name, 0o755, fakeTime); err != nil {
			t.Fatal(err)
		}
	}
	nfc, nfd := "caf\u00e9.txt", "cafe\u0301.txt"
	mkdir(lin, "Docs")
	write(lin, "Docs/"+nfc, "café in NFC")
	write(lin, "Docs/"+nfd, "café in NFD")
	write(lin, "Readme.md", "mixed case")
	write(lin, "README.md", "upper case")
	write(lin, "r\u00e9sum\u00e9.pdf", "résumé in NFC, alone")
	mkdir(mac, "\u00c9t\u00e9") // Été, typed in NFC, stored in NFD
	write(mac, "\u00c9t\u00e9/pla\u00e7a.txt", "from the mac")
	lin.scan(t)
	mac.scan(t)
	for name := range mac.local.All() {
		if !norm.NFC.IsNormalString(name) {
			t.Errorf("mac recorded %q, not in NFC, for a name typed in NFC", name)
		}
	}
	linFirst := lin.local.Snapshot()

	rounds := 0
	for ; rounds < 8; rounds++ {
		before := fmt.Sprint(lin.local.Snapshot(), mac.local.Snapshot())
		mac.take(t, lin, blocks)
		lin.take(t, mac, blocks)
		if fmt.Sprint(lin.local.Snapshot(), mac.local.Snapshot()) == before {
			break
		}
	}
	if rounds > 3 {
		t.Errorf("settled after %d rounds; want at most 3 (names going back and forth?)", rounds)
	}
	// Nothing made on Linux changed there, nor got a version from the mac.
	for name, f := range linFirst {
		got := lin.local.Entry(name)
		if got.Deleted || got.FileHash != f.FileHash || got.Version.Counter(devR) != 0 {
			t.Errorf("linux %s: %+v; want it as it was made (%v), untouched by the mac", name, got, f.Version)
		}
	}
	// The mac's own files reached Linux, under their NFC names.
	for _, name := range []string{"\u00c9t\u00e9", "\u00c9t\u00e9/pla\u00e7a.txt"} {
		if f, ok := lin.local.Get(name); !ok || f.Deleted {
			t.Errorf("linux: %q missing; have %q", name, lin.fsys.Stored())
		}
	}
	if got, _ := lin.fsys.ReadFile("\u00c9t\u00e9/pla\u00e7a.txt"); string(got) != "from the mac" {
		t.Errorf("linux: Été/plaça.txt = %q", got)
	}
	// The mac holds one of each set of twins, the other skipped with why.
	for _, twins := range [][2]string{{"Docs/" + nfc, "Docs/" + nfd}, {"README.md", "Readme.md"}} {
		_, ok0 := mac.local.Get(twins[0])
		_, ok1 := mac.local.Get(twins[1])
		skipped := mac.skips[twins[0]] + mac.skips[twins[1]]
		if ok0 == ok1 || !strings.Contains(skipped, "clashes") {
			t.Errorf("mac: %q recorded %v, %q recorded %v, skipped %q; want one recorded, the other skipped as a clash", twins[0], ok0, twins[1], ok1, skipped)
		}
	}
	if got, _ := mac.fsys.ReadFile("r\u00e9sum\u00e9.pdf"); string(got) != "résumé in NFC, alone" {
		t.Errorf("mac: résumé.pdf = %q; stored %q", got, mac.fsys.Stored())
	}
	if f := mac.local.Entry("r\u00e9sum\u00e9.pdf"); f.Version.Compare(lin.local.Entry("r\u00e9sum\u00e9.pdf").Version) != syncfs.Equal {
		t.Errorf("mac: résumé.pdf at %v, linux at %v; want the same version", f.Version, lin.local.Entry("r\u00e9sum\u00e9.pdf").Version)
	}
}

func mustBlocks(t *testing.T, data string) []syncfs.Block {
	t.Helper()
	blocks, _, err := syncfs.HashFile(strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return blocks
}

// On a case-insensitive file system, with the real Applier: two names of
// a Linux folder differing only in case never overwrite each other (one is
// taken, the other skipped as a clash), and a file that Linux renames to
// another case of its name follows on Windows or macOS (a move onto the
// same file, not a clash with itself), without loss.
func TestFakeFSCaseClash(t *testing.T) {
	lin := &fakeDevice{id: devL, fsys: syncfstest.NewFakeFS(false, false), local: syncfs.NewLocal()}
	win := &fakeDevice{id: devR, fsys: syncfstest.NewFakeFS(true, false), local: syncfs.NewLocal()}
	blocks := blockMap{}
	write := func(name, data string) {
		t.Helper()
		for _, b := range mustBlocks(t, data) {
			blocks[b.Hash] = []byte(data)[b.Offset : b.Offset+int64(b.Size)]
		}
		if err := lin.fsys.WriteFile(name, []byte(data), 0o644, fakeTime); err != nil {
			t.Fatal(err)
		}
	}
	write("Notes.txt", "the first notes")
	write("NOTES.txt", "other notes, same name on Windows")
	write("report.txt", "a report")
	lin.scan(t)
	win.scan(t)
	settle := func(what string) {
		t.Helper()
		for rounds := 0; ; rounds++ {
			if rounds == 4 {
				t.Fatalf("%s: not settled after %d rounds", what, rounds)
			}
			before := fmt.Sprint(lin.local.Snapshot(), win.local.Snapshot())
			win.take(t, lin, blocks)
			lin.take(t, win, blocks)
			if fmt.Sprint(lin.local.Snapshot(), win.local.Snapshot()) == before {
				return
			}
		}
	}
	settle("first sync")
	got, _ := win.fsys.ReadFile("notes.txt")
	if len(win.fsys.Stored()) != 2 || string(got) != "other notes, same name on Windows" && string(got) != "the first notes" {
		t.Fatalf("windows holds %q, notes.txt = %q; want one of the twins and report.txt", win.fsys.Stored(), got)
	}
	kept := "Notes.txt"
	if string(got) == "other notes, same name on Windows" {
		kept = "NOTES.txt"
	}
	if f, ok := win.local.Get(kept); !ok || f.Version.Compare(lin.local.Entry(kept).Version) != syncfs.Equal {
		t.Errorf("windows records %s as %+v; want linux' version", kept, f)
	}
	for _, n := range []string{"Notes.txt", "NOTES.txt"} {
		if got, _ := lin.fsys.ReadFile(n); len(got) == 0 {
			t.Errorf("linux lost %s", n)
		}
	}

	// Linux renames report.txt to Report.TXT: Windows renames its file.
	if err := lin.fsys.Rename("report.txt", "Report.TXT"); err != nil {
		t.Fatal(err)
	}
	lin.scan(t)
	settle("case rename")
	if got := win.fsys.Stored(); !slices.Contains(got, "Report.TXT") || slices.Contains(got, "report.txt") {
		t.Errorf("windows stores %q; want Report.TXT, under that case", got)
	}
	if got, _ := win.fsys.ReadFile("Report.TXT"); string(got) != "a report" {
		t.Errorf("windows: Report.TXT = %q", got)
	}
	if f := win.local.Entry("report.txt"); !f.Deleted {
		t.Errorf("windows records report.txt as %+v; want it deleted (moved)", f)
	}
}
