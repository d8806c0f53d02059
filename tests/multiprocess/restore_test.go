package multiprocess

// Folder history with real binaries: the hosting server keeps every
// version; 'folder history', 'folder restore' and 'folder export' on the
// server and on agents (asked of the hosting server).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// historyJSON is 'folder history --json'.
type historyJSON struct {
	ID       string `json:"id"`
	Versions []struct {
		Version uint64    `json:"version"`
		Time    time.Time `json:"time"`
		Path    string    `json:"path"`
		Deleted bool      `json:"deleted"`
		Size    int64     `json:"size"`
		Hash    string    `json:"hash"`
		Device  string    `json:"device"`
		User    string    `json:"user"`
	} `json:"versions"`
}

// history runs 'folder history NAME PATH --json' on n.
func (d *syncDomain) history(n *node, name, path string) (historyJSON, result) {
	d.t.Helper()
	r := d.cli(n, "folder", "history", name, path, "--json")
	var h historyJSON
	if r.code == 0 {
		if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
			d.t.Fatalf("folder history --json on %s printed %q: %v", n.name, r.stdout, err)
		}
	}
	return h, r
}

// A file of a shared folder deleted on alice's laptop is listed in the
// history on bob's, restored from there and arrives everywhere; a
// read-only member's restore is refused; the whole folder is restored to
// a time before a mass deletion; an export on the read-only member's
// laptop equals the tree at that time.
func TestFolderRestore(t *testing.T) {
	skipIfShort(t)
	d, alice, bob := newPairDomain(t)
	s1 := d.servers[0]
	before := map[string]string{"a.txt": "alice's first words", "d/b.txt": "B", "d/e/c.txt": "C, deep"}
	p := d.sharePair(alice, bob, "docs", "rw", before)
	carol := d.addAgent("carol-laptop", "carol", d.addUser("carol", s1), s1, s1)
	cDir := filepath.Join(d.dir, "carol-docs")
	d.share(alice, "docs", p.id, "carol", "ro")
	d.accept(carol, "docs", p.id, "alice", "ro", cDir)
	want := d.mustTree(p.aDir)
	all := []string{p.aDir, p.bDir, cDir}
	d.waitTree(arriveTimeout, "the folder on carol's laptop", want, all...)

	// The server's history holds a.txt, made on alice's laptop.
	d.waitFor(settleTimeout, "a.txt in the server's history", func() (bool, string) {
		h, r := d.history(s1.node, "docs", "a.txt")
		return r.code == 0 && len(h.Versions) == 1, r.String()
	})
	h, _ := d.history(s1.node, "docs", "a.txt")
	first := h.Versions[0]
	if first.Deleted || first.Size != int64(len(before["a.txt"])) || first.User != "alice" || first.Device != alice.node.id || len(first.Hash) != 64 {
		t.Errorf("a.txt's first version on the server: %+v; want a live file of %d bytes by alice's laptop", first, len(before["a.txt"]))
	}

	// Deleted on alice's laptop, gone everywhere; bob's laptop sees both
	// versions, asking the server.
	if err := os.Remove(filepath.Join(p.aDir, "a.txt")); err != nil {
		t.Fatal(err)
	}
	gone := tree{}
	for k, v := range want {
		if k != "a.txt" {
			gone[k] = v
		}
	}
	d.waitTree(arriveTimeout, "a.txt deleted everywhere", gone, all...)
	d.waitFor(settleTimeout, "the deletion in the history on bob's laptop", func() (bool, string) {
		h, r := d.history(bob.node, "docs", "a.txt")
		return r.code == 0 && len(h.Versions) == 2 && h.Versions[1].Deleted, r.String()
	})
	if r := d.cli(bob.node, "folder", "history", "docs"); r.code != 0 || !strings.Contains(r.stdout, "deleted") || !strings.Contains(r.stdout, "d/e/c.txt") {
		t.Errorf("folder history docs on bob's laptop: %v; want a table with the deletion and every file", r)
	}

	// Carol may read, not restore.
	v := strconv.FormatUint(first.Version, 10)
	if r := d.cli(carol.node, "folder", "restore", "docs", "a.txt", "--version", v); r.code == 0 || !strings.Contains(r.stderr, "read-only") {
		t.Errorf("restore on carol's laptop (read-only): %v; want refused as read-only", r)
	}
	// Bob restores it: it arrives everywhere.
	if r := d.runFor(bob.node, 2*time.Minute, "folder", "restore", "docs", "a.txt", "--version", v); r.code != 0 || !strings.HasPrefix(r.stdout, "ok: restored a.txt") {
		t.Fatalf("restore on bob's laptop: %v", r)
	}
	d.waitTree(arriveTimeout, "a.txt restored everywhere", want, all...)
	d.waitFor(settleTimeout, "the restore in the server's history", func() (bool, string) {
		h, r := d.history(s1.node, "docs", "a.txt")
		return r.code == 0 && len(h.Versions) == 3 && !h.Versions[2].Deleted && h.Versions[2].Hash == first.Hash, r.String()
	})
	// Every version the history holds is kept when the whole folder is.
	d.waitFor(settleTimeout, "the server's history settled", func() (bool, string) {
		h, r := d.history(s1.node, "docs", "")
		return r.code == 0 && len(h.Versions) >= 3, r.String()
	})
	good := time.Now() // the mass deletion below is kept after it

	// A mass deletion, and a new file, on alice's laptop.
	for _, name := range []string{"a.txt", "d"} {
		if err := os.RemoveAll(filepath.Join(p.aDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	after := tree{"new.txt": d.writeFile(p.aDir, "new.txt", []byte("made after"))}
	d.waitTree(arriveTimeout, "the mass deletion everywhere", after, all...)
	d.waitFor(settleTimeout, "the mass deletion in the server's history", func() (bool, string) {
		h, r := d.history(s1.node, "docs", "d/e/c.txt")
		return r.code == 0 && len(h.Versions) > 0 && h.Versions[len(h.Versions)-1].Deleted, r.String()
	})

	at := good.UTC().Format(time.RFC3339Nano)
	// An export on carol's laptop, and one on the server, of the time before
	// the deletion, while the folder holds only new.txt.
	for _, n := range []*node{carol.node, s1.node} {
		out := filepath.Join(d.dir, "export-"+n.name)
		if r := d.runFor(n, 2*time.Minute, "folder", "export", "docs", out, "--at", at); r.code != 0 || !strings.HasPrefix(r.stdout, "ok: ") {
			t.Fatalf("export on %s: %v", n.name, r)
		}
		if diff := want.diff(d.mustTree(out)); diff != "" {
			t.Errorf("export on %s at the time before the deletion differs from the tree then:\n%s", n.name, diff)
		}
	}

	// The whole folder restored, from alice's laptop, to before it.
	if r := d.runFor(alice.node, 2*time.Minute, "folder", "restore", "docs", "--all", "--at", at); r.code != 0 || !strings.HasPrefix(r.stdout, "ok: restored the whole folder") {
		t.Fatalf("restore --all on alice's laptop: %v", r)
	}
	d.waitTree(arriveTimeout, "the whole folder restored everywhere", want, all...)
}
