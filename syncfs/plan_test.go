package syncfs_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/syncfs"
	"github.com/baton-sync/baton/syncfs/syncfstest"
)

const (
	devL = "12D3KooWLocalDeviceAAAA"
	devR = "12D3KooWRemoteDeviceBBB"
	devB = "12D3KooWBaseDeviceCCCCC"
)

// mutator makes random user changes to a device.
type mutator struct {
	r     *rand.Rand
	names []string // candidate top-level and nested names
	clock int64
}

func newMutator(seed uint64, names []string) *mutator {
	return &mutator{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), names: names, clock: 1_700_000_000_000_000_000}
}

func (m *mutator) content(d *syncfstest.Device) []byte {
	// Sometimes derive from an existing file so blocks can be reused.
	if m.r.IntN(3) == 0 {
		for _, n := range d.Nodes() {
			if n.Type == syncfs.TypeFile && len(n.Data) > 0 && m.r.IntN(2) == 0 {
				at := m.r.IntN(len(n.Data))
				out := append([]byte{}, n.Data[:at]...)
				out = append(out, fmt.Sprintf("edit %d", m.r.Uint32())...)
				return append(out, n.Data[at:]...)
			}
		}
	}
	n := []int{0, 10, 3000, 9000}[m.r.IntN(4)]
	return randBytes(m.r.Uint64(), n)
}

func (m *mutator) pick() string {
	parts := 1 + m.r.IntN(3)
	var b []string
	for range parts {
		b = append(b, m.names[m.r.IntN(len(m.names))])
	}
	return strings.Join(b, "/")
}

// mutate applies n random changes; invalid ones (a missing parent, say) are
// simply not made.
func (m *mutator) mutate(d *syncfstest.Device, n int) {
	for range n {
		m.clock += int64(time.Second)
		name := m.pick()
		existing := d.Nodes()
		var some string
		if len(existing) > 0 {
			some = existing[m.r.IntN(len(existing))].Name
		}
		switch m.r.IntN(10) {
		case 0, 1, 2:
			_ = d.WriteFile(name, m.content(d), 0o644, m.clock)
		case 3:
			if some != "" {
				_ = d.WriteFile(some, m.content(d), 0o600, m.clock) // fails harmlessly on a dir
			}
		case 4:
			_ = d.Mkdir(name, 0o755)
		case 5:
			if some != "" {
				_ = d.Remove(some)
			}
		case 6:
			if some != "" {
				_ = d.Rename(some, name)
			}
		case 7:
			if some != "" {
				_ = d.Chmod(some, []uint32{0o600, 0o644, 0o755}[m.r.IntN(3)])
			}
		case 8:
			_ = d.Symlink(name, "target-"+m.names[m.r.IntN(len(m.names))])
		case 9:
			if some != "" {
				_ = d.SetModTime(some, m.clock)
			}
		}
	}
}

var lowerNames = []string{"a", "b", "c.txt", "d.bin", "e"}

func checkActions(t *testing.T, acts []syncfs.Action) {
	t.Helper()
	for _, a := range acts {
		for _, n := range []string{a.Name, a.From, a.ConflictName} {
			if n != "" && syncfs.CheckName(n) != nil {
				t.Fatalf("action %v names invalid path %q", a, n)
			}
		}
	}
}

// TestPlanFastForward: when the remote has seen everything local has, the
// plan makes the local tree equal to the remote, and planning again finds
// nothing to do.
func TestPlanFastForward(t *testing.T) {
	for seed := range uint64(propSeeds) {
		m := newMutator(seed, lowerNames)
		base := syncfstest.NewDevice(devB, testChunking)
		m.mutate(base, 15)
		local := base.Clone(devL)
		m.mutate(local, 5)
		remote := local.Clone(devR)
		m.mutate(remote, 1+int(seed%12))

		acts := syncfs.Plan(local.Index, remote.Index, devL)
		checkActions(t, acts)
		if err := local.Apply(acts, remote.Block); err != nil {
			t.Fatalf("seed %d: Apply: %v\nplan:\n%s", seed, err, planString(acts))
		}
		if diff := syncfstest.Diff(local, remote); diff != "" {
			t.Fatalf("seed %d: after the plan local != remote:\n%s\nplan:\n%s", seed, diff, planString(acts))
		}
		if again := syncfs.Plan(local.Index, remote.Index, devL); len(again) != 0 {
			t.Fatalf("seed %d: second plan not empty:\n%s", seed, planString(again))
		}
		if self := syncfs.Plan(remote.Index, remote.Index, devR); len(self) != 0 {
			t.Fatalf("seed %d: Plan(remote, remote) not empty:\n%s", seed, planString(self))
		}
	}
}

// TestPlanConverges: two devices change the same tree independently, then
// each applies the plan against the other until nothing is left to do. They
// must end identical, and every change either made must survive, at its
// name or as a conflict copy.
func TestPlanConverges(t *testing.T) {
	conflicts := 0
	for seed := range uint64(propSeeds) {
		m := newMutator(seed, lowerNames)
		base := syncfstest.NewDevice(devB, testChunking)
		m.mutate(base, 15)
		l := base.Clone(devL)
		r := base.Clone(devR)
		m.mutate(l, 1+int(seed%8))
		m.mutate(r, 1+int(seed%7))
		mustKeep := changedContent(l, devL)
		for h, n := range changedContent(r, devR) {
			mustKeep[h] = n
		}

		for round := 0; ; round++ {
			if round == 4 {
				t.Fatalf("seed %d: no convergence after %d rounds:\n%s", seed, round, syncfstest.Diff(l, r))
			}
			pl := syncfs.Plan(l.Index, r.Index, devL)
			pr := syncfs.Plan(r.Index, l.Index, devR)
			checkActions(t, pl)
			checkActions(t, pr)
			for _, a := range append(pl, pr...) {
				if a.Kind == syncfs.ActConflict || strings.Contains(a.Reason, "conflict") {
					conflicts++
				}
			}
			if len(pl) == 0 && len(pr) == 0 {
				break
			}
			l2, r2 := l.Clone(devL), r.Clone(devR)
			if err := l2.Apply(pl, r.Block); err != nil {
				t.Fatalf("seed %d round %d: Apply on L: %v\nplan:\n%s", seed, round, err, planString(pl))
			}
			if err := r2.Apply(pr, l.Block); err != nil {
				t.Fatalf("seed %d round %d: Apply on R: %v\nplan:\n%s", seed, round, err, planString(pr))
			}
			l, r = l2, r2
		}
		if diff := syncfstest.Diff(l, r); diff != "" {
			t.Fatalf("seed %d: converged plans but trees differ:\n%s", seed, diff)
		}
		have := map[syncfs.Hash]bool{}
		for _, n := range l.Nodes() {
			if n.Type == syncfs.TypeFile {
				have[l.FileHash(n.Data)] = true
			}
		}
		for h, name := range mustKeep {
			if !have[h] {
				t.Fatalf("seed %d: content of %s written on one device was lost", seed, name)
			}
		}
	}
	if conflicts == 0 {
		t.Error("no conflicts generated; the test is not exercising them")
	}
	t.Logf("%d conflict actions", conflicts)
}

// changedContent returns the file contents d itself wrote that are live.
// Contents a later change on d replaced are d's own choice to lose.
func changedContent(d *syncfstest.Device, dev string) map[syncfs.Hash]string {
	out := map[syncfs.Hash]string{}
	for _, f := range d.Index {
		if !f.Deleted && f.Type == syncfs.TypeFile && f.Version.LastDevice() == dev {
			out[f.FileHash] = f.Name
		}
	}
	return out
}

func planString(acts []syncfs.Action) string {
	var b strings.Builder
	for _, a := range acts {
		fmt.Fprintf(&b, "  %v\n", a)
	}
	return b.String()
}

// TestPlanCaseClash: a case-sensitive remote with names that clash by case
// or normalization, applied to a case-insensitive device: nothing is
// clobbered, every clash is skipped with a reason, and everything else
// arrives.
func TestPlanCaseClash(t *testing.T) {
	names := []string{"a", "A", "caf\u00e9", "cafe\u0301", "b"}
	skips := 0
	for seed := range uint64(propSeeds) {
		m := newMutator(seed, names)
		remote := syncfstest.NewDevice(devR, testChunking)
		m.mutate(remote, 20)
		local := syncfstest.NewDevice(devL, testChunking)
		local.FoldCase = true
		m2 := newMutator(seed+1000, names)
		m2.mutate(local, 3)
		before := local.Clone(devL).Index
		acts := syncfs.Plan(local.Index, remote.Index, devL)
		checkActions(t, acts)
		if err := local.Apply(acts, remote.Block); err != nil {
			t.Fatalf("seed %d: Apply: %v\nplan:\n%s", seed, err, planString(acts))
		}
		skipped := map[string]bool{}
		for _, a := range acts {
			if a.Kind == syncfs.ActSkip {
				skips++
				skipped[a.Name] = true
				if a.Reason == "" {
					t.Errorf("skip of %s has no reason", a.Name)
				}
			}
		}
		for _, n := range remote.Nodes() {
			under := false
			for p := n.Name; p != ""; p = parent(p) {
				under = under || skipped[p]
			}
			if under {
				continue
			}
			if b, ok := before[n.Name]; ok && b.Version.Compare(remote.Index[n.Name].Version) == syncfs.Concurrent {
				continue // a conflict; TestPlanConverges covers those
			}
			got, ok := local.Lookup(n.Name)
			if !ok || got.Name != n.Name || !syncfstest.SameNode(*got, n) {
				t.Errorf("seed %d: %s not synced: %+v, %v; want %+v\nplan:\n%s", seed, n.Name, got, ok, n, planString(acts))
			}
		}
	}
	if skips == 0 {
		t.Error("no clashes skipped; the test is not exercising them")
	}
}

func parent(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}

func fileInfo(name string, data string, mtime int64, v syncfs.Vector) syncfs.FileInfo {
	blocks, sum, _ := syncfs.HashFile(strings.NewReader(data))
	return syncfs.FileInfo{Name: name, Type: syncfs.TypeFile, Size: int64(len(data)), Mode: 0o644, ModTime: mtime, Version: v, Blocks: blocks, FileHash: sum}
}

func TestPlanScenarios(t *testing.T) {
	v0 := syncfs.Vector{}.Update(devB)
	vL := v0.Update(devL)
	vR := v0.Update(devR)
	dir := func(name string, v syncfs.Vector) syncfs.FileInfo {
		return syncfs.FileInfo{Name: name, Type: syncfs.TypeDir, Mode: 0o755, Version: v}
	}
	tomb := func(name string, typ syncfs.FileType, v syncfs.Vector) syncfs.FileInfo {
		return syncfs.FileInfo{Name: name, Type: typ, Deleted: true, Version: v}
	}
	snap := func(fs ...syncfs.FileInfo) syncfs.Snapshot {
		s := syncfs.Snapshot{}
		for _, f := range fs {
			s[f.Name] = f
		}
		return s
	}
	t1 := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC).UnixNano()
	t2 := t1 + int64(time.Hour)
	tests := []struct {
		name          string
		local, remote syncfs.Snapshot
		want          []string
	}{
		{"equal", snap(fileInfo("x", "1", t1, v0)), snap(fileInfo("x", "1", t1, v0)), nil},
		{"remote older", snap(fileInfo("x", "2", t2, vL)), snap(fileInfo("x", "1", t1, v0)), nil},
		{"new dir and file", snap(), snap(dir("d", v0), fileInfo("d/x", "1", t1, v0)), []string{"mkdir d", "fetch d/x"}},
		{"delete contents first", snap(dir("d", v0), fileInfo("d/x", "1", t1, v0)), snap(tomb("d", syncfs.TypeDir, vR), tomb("d/x", syncfs.TypeFile, vR)), []string{"delete d/x", "delete d"}},
		{"rename", snap(fileInfo("x", "content", t1, v0)), snap(tomb("x", syncfs.TypeFile, vR), fileInfo("y", "content", t1, vR)), []string{"rename y from x"}},
		{"metadata only", snap(fileInfo("x", "1", t1, v0)), snap(fileInfo("x", "1", t2, vR)), []string{"meta x"}},
		{"remote wins conflict", snap(fileInfo("x.txt", "mine", t1, vL)), snap(fileInfo("x.txt", "theirs", t2, vR)),
			[]string{"conflict x.txt keeping x.sync-conflict-20250607-080910-LocalDe.txt (conflict: remote version wins)"}},
		{"local wins conflict", snap(fileInfo("x.txt", "mine", t2, vL)), snap(fileInfo("x.txt", "theirs", t1, vR)),
			[]string{"fetch x.sync-conflict-20250607-080910-RemoteD.txt (conflict: local version wins)", "record x.txt (conflict: local version wins)"}},
		{"modify beats concurrent delete", snap(fileInfo("x", "mine", t1, vL)), snap(tomb("x", syncfs.TypeFile, vR)),
			[]string{"record x (local change wins over concurrent deletion)"}},
		{"remote modify beats local delete", snap(tomb("x", syncfs.TypeFile, vL)), snap(fileInfo("x", "theirs", t1, vR)),
			[]string{"fetch x (concurrent change wins over deletion)"}},
		{"non-empty dir kept", snap(dir("d", v0), fileInfo("d/new", "mine", t1, syncfs.Vector{}.Update(devL))), snap(tomb("d", syncfs.TypeDir, vR)),
			[]string{"record d (directory not empty: kept)"}},
		{"file becomes dir", snap(fileInfo("x", "1", t1, v0)), snap(dir("x", vR), fileInfo("x/y", "2", t1, vR)), []string{"delete x (replaced by a directory)", "mkdir x", "fetch x/y"}},
		{"dir becomes file", snap(dir("x", v0), fileInfo("x/y", "2", t1, v0)), snap(fileInfo("x", "1", t1, vR), tomb("x/y", syncfs.TypeFile, vR)),
			[]string{"delete x/y", "delete x (directory replaced by a file)", "fetch x"}},
		{"remote names clash", snap(), snap(fileInfo("README", "1", t1, v0), fileInfo("readme", "2", t1, v0)),
			[]string{"fetch README", `skip readme (name clashes with "README" on case-insensitive or normalizing filesystems)`}},
		{"clash with local-only file", snap(fileInfo("Notes", "mine", t1, syncfs.Vector{}.Update(devL))), snap(fileInfo("notes", "2", t1, v0)),
			[]string{`skip notes (name clashes with "Notes" on case-insensitive or normalizing filesystems)`}},
		{"case-only rename", snap(fileInfo("notes", "same", t1, v0)), snap(tomb("notes", syncfs.TypeFile, vR), fileInfo("Notes", "same", t1, vR)),
			[]string{"rename Notes from notes"}},
		{"case change with new content waits for the delete", snap(fileInfo("notes", "old", t1, v0)), snap(tomb("notes", syncfs.TypeFile, vR), fileInfo("Notes", "new", t1, vR)),
			[]string{"delete notes", "fetch Notes"}},
		{"invalid remote name ignored", snap(), snap(fileInfo("../evil", "x", t1, v0)), nil},
		// The applier's temporary files are never synced: a name of that
		// form (or inside a directory of that form) comes from a peer
		// that is not a scanner.
		{"temporary file names ignored", snap(), snap(
			fileInfo(syncfs.TempPrefix+"0123456789abcdef", "x", t1, v0),
			dir("d", v0),
			syncfs.FileInfo{Name: "d/" + syncfs.TempPrefix + "link", Type: syncfs.TypeSymlink, SymlinkTarget: "/etc", Version: v0},
			dir("d/"+syncfs.TempPrefix+"dir", v0),
			fileInfo("d/"+syncfs.TempPrefix+"dir/y", "y", t1, v0),
		), []string{"mkdir d"}},
		{"temporary file name deleted remotely", snap(fileInfo("x", "1", t1, v0)), snap(fileInfo("x", "1", t1, v0), tomb(syncfs.TempPrefix+"abc", syncfs.TypeFile, vR)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acts := syncfs.Plan(tt.local, tt.remote, devL)
			checkActions(t, acts)
			var got []string
			for _, a := range acts {
				got = append(got, a.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Plan =\n%s\nwant\n  %s", planString(acts), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestPlanReusesBlocks(t *testing.T) {
	data := randBytes(5, 200_000)
	edited := append(append(append([]byte{}, data[:100_000]...), "inserted"...), data[100_000:]...)
	hs, _ := syncfs.NewHasher(testChunking)
	b1, h1, _ := hs.HashFile(strings.NewReader(string(data)))
	b2, h2, _ := hs.HashFile(strings.NewReader(string(edited)))
	v0 := syncfs.Vector{}.Update(devB)
	local := syncfs.Snapshot{"f": {Name: "f", Type: syncfs.TypeFile, Size: int64(len(data)), Version: v0, Blocks: b1, FileHash: h1}}
	remote := syncfs.Snapshot{"f": {Name: "f", Type: syncfs.TypeFile, Size: int64(len(edited)), Version: v0.Update(devR), Blocks: b2, FileHash: h2}}
	acts := syncfs.Plan(local, remote, devL)
	if len(acts) != 1 || acts[0].Kind != syncfs.ActFetch {
		t.Fatalf("Plan = %v; want one fetch", acts)
	}
	var need int64
	for _, b := range acts[0].Need {
		need += int64(b.Size)
	}
	if need == 0 || need > 3*int64(testChunking.MaxSize) {
		t.Errorf("fetch needs %d bytes of %d; want only the blocks around the edit", need, len(edited))
	}
	if len(acts[0].Copy)+len(acts[0].Need) != len(b2) {
		t.Errorf("copy %d + need %d blocks != %d blocks", len(acts[0].Copy), len(acts[0].Need), len(b2))
	}
}

// A block is copied from a local file only from a block of the same hash
// and size: a remote entry can claim any size for a hash it knows (the
// applier would read that many bytes to verify it), so a block whose size
// differs from the local one is fetched, not copied.
func TestPlanCopiesOnlySameSizeBlocks(t *testing.T) {
	data := randBytes(6, 100_000)
	hs, _ := syncfs.NewHasher(testChunking)
	blocks, sum, _ := hs.HashFile(strings.NewReader(string(data)))
	v0 := syncfs.Vector{}.Update(devB)
	local := syncfs.Snapshot{"have": {Name: "have", Type: syncfs.TypeFile, Size: int64(len(data)), Version: v0, Blocks: blocks, FileHash: sum}}
	same := blocks[0]
	bigger := syncfs.Block{Size: 8 * same.Size, Hash: same.Hash}
	file := func(name string, b syncfs.Block) syncfs.FileInfo {
		bs := []syncfs.Block{b}
		return syncfs.FileInfo{Name: name, Type: syncfs.TypeFile, Size: int64(b.Size), Version: v0.Update(devR), Blocks: bs, FileHash: syncfs.FileHashOf(bs)}
	}
	remote := syncfs.Snapshot{"copy": file("copy", same), "claim": file("claim", bigger)}
	acts := syncfs.Plan(local, remote, devL)
	if len(acts) != 2 {
		t.Fatalf("Plan = %v; want two fetches", acts)
	}
	for _, a := range acts {
		copied, needed := len(a.Copy), len(a.Need)
		switch {
		case a.Name == "copy" && (copied != 1 || needed != 0):
			t.Errorf("%v: copy %d, need %d blocks; want its block copied from have", a, copied, needed)
		case a.Name == "claim" && (copied != 0 || needed != 1):
			t.Errorf("%v: copy %d, need %d blocks; want its block (same hash as have's, another size) fetched", a, copied, needed)
		}
	}
}

func TestConflictName(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	tests := []struct{ in, want string }{
		{"a/report.txt", "a/report.sync-conflict-20250102-020405-AbCdEfG.txt"},
		{".bashrc", ".bashrc.sync-conflict-20250102-020405-AbCdEfG"},
		{"noext", "noext.sync-conflict-20250102-020405-AbCdEfG"},
		{"a.tar.gz", "a.tar.sync-conflict-20250102-020405-AbCdEfG.gz"},
		{"r.sync-conflict-20240101-000000-OLD.txt", "r.sync-conflict-20250102-020405-AbCdEfG.txt"},
	}
	for _, tt := range tests {
		if got := syncfs.ConflictName(tt.in, at, "12D3KooWAbCdEfGhIj"); got != tt.want {
			t.Errorf("ConflictName(%q) = %q; want %q", tt.in, got, tt.want)
		}
		if !syncfs.IsConflictCopy(syncfs.ConflictName(tt.in, at, "x")) {
			t.Errorf("IsConflictCopy(ConflictName(%q)) = false", tt.in)
		}
	}
	long := strings.Repeat("\u00e9", 127) + ".txt"
	if got := syncfs.ConflictName(long, at, "dev"); syncfs.CheckName(got) != nil {
		t.Errorf("ConflictName(long) = %q fails CheckName: %v", got, syncfs.CheckName(got))
	}
}

// propSeeds is how many random scenarios each property test runs; raise it
// with -seeds when changing Plan.
var propSeeds = 400

func init() { flag.IntVar(&propSeeds, "seeds", propSeeds, "random scenarios per Plan property test") }

// A plan of a few changes costs what they change, not the local index:
// a new name that clashes and a directory whose deletion is refused
// are found without an index of every local name.
func TestPlanCostsWhatItChanges(t *testing.T) {
	const n = 20000
	v := syncfs.Vector{}.Update(devL)
	local := syncfs.Snapshot{
		"big":       {Name: "big", Type: syncfs.TypeDir, Mode: 0o755, Version: v},
		"gone":      {Name: "gone", Type: syncfs.TypeDir, Mode: 0o755, Version: v},
		"gone/kept": fileInfo("gone/kept", "x", 1, syncfs.Vector{}.Update(devL).Update(devL)),
		"readme":    fileInfo("readme", "r", 1, v),
	}
	for i := range n {
		name := fmt.Sprintf("big/f%06d", i)
		local[name] = fileInfo(name, name, 1, v)
	}
	remote := syncfs.Snapshot{
		"README": fileInfo("README", "new", 2, syncfs.Vector{}.Update(devR)),
		"new":    fileInfo("new", "n", 2, syncfs.Vector{}.Update(devR)),
		"gone":   {Name: "gone", Type: syncfs.TypeDir, Deleted: true, Version: v.Update(devR)},
	}
	var acts []syncfs.Action
	allocated := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			acts = syncfs.Plan(local, remote, devL)
		}
	}).AllocedBytesPerOp()
	got := map[string]string{}
	for _, a := range acts {
		got[a.Name] = a.Kind.String() + " " + a.Reason
	}
	for name, want := range map[string]string{"README": "clashes with", "gone": "not empty", "new": "fetch"} {
		if !strings.Contains(got[name], want) {
			t.Errorf("%s: %q; want %q in it\nplan:\n%s", name, got[name], want, planString(acts))
		}
	}
	// An index of the 20,000 local names is over a MB.
	if allocated > 256<<10 {
		t.Errorf("a plan of 3 changes over %d local entries allocated %d bytes; want it not to grow with the local index", n, allocated)
	}
}
