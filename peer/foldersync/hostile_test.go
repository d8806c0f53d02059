package foldersync

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer/wire"
	"github.com/baton-sync/baton/syncfs"
)

// A read-write member that is hostile announces entries with names that
// leave the folder or are not file names at all: the server refuses each
// index that holds one, writes nothing anywhere, and goes on syncing the
// honest members. Names of the engine's own files (the applier's
// temporary files, the folder's marker) in an otherwise valid index are
// not synced, on the server or on any device.
func TestHostileIndexNames(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	mallory := n.newRogue("mallory", collections.RightReadWrite)
	alice.write(t, "a.txt", "from alice")
	n.waitEqual(alice, server, bob)
	base := filepath.Dir(server.root)
	escaped := filepath.Join(t.TempDir(), "escaped")

	empty := func(name string) syncfs.FileInfo { return mallory.file(name, nil, mallory.version(syncfs.Vector{})) }
	for _, name := range []string{
		"../x", "a/../../x", "../../escaped", escaped, "/etc/baton-x",
		`a\..\..\x`, "x\x00y", "a\nb", "\x1b]0;title\x07", "./x", "x/", "a//b", "",
		strings.Repeat("n", syncfs.MaxComponentLen+1), strings.Repeat("d/", syncfs.MaxNameLen/2) + "x",
	} {
		mallory.serve(empty("fine.txt"), empty(name))
		requests := mallory.indexRequests.Load()
		mallory.round(bob)
		if mallory.indexRequests.Load() == requests {
			t.Fatalf("%q: the server did not ask for mallory's index", name)
		}
	}
	if ents, _ := os.ReadDir(base); len(ents) != 2 {
		t.Errorf("beside the server's folder: %v; want its data and folder directories only", ents)
	}
	for _, p := range []string{escaped, "/etc/baton-x", filepath.Join(base, "x"), filepath.Join(filepath.Dir(base), "escaped")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was created", p)
		}
	}
	n.waitEqual(alice, server, bob)
	if _, err := os.Lstat(filepath.Join(server.root, "fine.txt")); err == nil {
		t.Errorf("fine.txt is on the server: an entry of an index holding an invalid name was taken")
	}

	// The engine's own names in a valid index.
	v := mallory.version(syncfs.Vector{})
	mallory.serve(
		mallory.file("ok.txt", []byte("from mallory"), v),
		mallory.file(syncfs.TempPrefix+"0123456789abcdef", []byte("not a partial file"), v),
		mallory.dir("d", v),
		mallory.symlink("d/"+syncfs.TempPrefix+"link", "/", v),
		mallory.dir("d/"+syncfs.TempPrefix+"dir", v),
		mallory.file("d/"+syncfs.TempPrefix+"dir/f", []byte("inside"), v),
		mallory.file(MarkerFile, []byte("not the marker"), v),
	)
	mallory.round(bob)
	n.waitEqual(alice, server, bob)
	for _, d := range []*testNode{server, alice, bob} {
		if got := d.read(t, "ok.txt"); got != "from mallory" {
			t.Errorf("%s: ok.txt = %q; want mallory's valid entry taken", d.name, got)
		}
		for _, name := range namesUnder(t, d.root) {
			if strings.Contains(name, syncfs.TempPrefix) {
				t.Errorf("%s: %s is in the folder", d.name, name)
			}
		}
		if got := d.read(t, MarkerFile); got != markerText {
			t.Errorf("%s: the marker file holds %q; want its own text", d.name, got)
		}
	}
	for e := range n.running(server).pub.Load().tree.all() {
		if strings.Contains(e.fi.Name, syncfs.TempPrefix) || e.fi.Name == MarkerFile {
			t.Errorf("the server's index holds %q", e.fi.Name)
		}
	}
}

// A hostile read-write member tries to write through symlinks: under a
// symlink of the server's that points out of the folder, under one it
// made itself, and by Syncthing's CVE-2017-1000420 sequence (a symlink,
// deleted, then a directory of its name). Files under a symlink are not
// taken; a directory that replaces a symlink (a newer version, or a
// concurrent one, which keeps the symlink as a conflict copy) is a real
// directory, and what goes in it stays in the folder. Nothing outside the
// folder ever changes. Symlinks pointing outside the folder are allowed
// (Config.OutsideSymlinks), as in a team that trusts its members, so that
// they reach every host: these defences hold without the default refusal.
func TestHostileSymlinks(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite},
		func(c *Config) { c.OutsideSymlinks = func(string) bool { return true } })
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	mallory := n.newRogue("mallory", collections.RightReadWrite)
	outside := filepath.Join(filepath.Dir(server.root), "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "keep.txt"), []byte("outside the folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := readTree(t, outside)
	// The server's own symlinks (a user's, on its disk): out of the
	// folder, and to a directory in it.
	server.write(t, "real/keep.txt", "in the real directory")
	for name, target := range map[string]string{"abs": outside, "rel": "../outside", "inlink": "real"} {
		if err := os.Symlink(target, filepath.Join(server.root, name)); err != nil {
			t.Fatal(err)
		}
	}
	n.running(server).requestRescan()
	n.waitEqual(server, alice, bob)
	rel, _ := n.running(server).pub.Load().get("rel")
	realBefore := readTree(t, filepath.Join(server.root, "real"))

	check := func(step string) {
		t.Helper()
		if d := treeDiff(before, readTree(t, outside)); d != "" {
			t.Fatalf("%s: outside the folder changed: %s", step, d)
		}
		if d := treeDiff(realBefore, readTree(t, filepath.Join(server.root, "real"))); d != "" {
			t.Fatalf("%s: written through the symlink inlink: %s", step, d)
		}
		for _, d := range []*testNode{server, alice, bob} {
			if ents, _ := os.ReadDir(filepath.Dir(d.root)); len(ents) > 3 {
				t.Fatalf("%s: beside %s's folder: %v", step, d.name, ents)
			}
		}
	}
	v := mallory.version(syncfs.Vector{})
	rounds := []struct {
		name  string
		files []syncfs.FileInfo
	}{
		{"files under the server's symlinks", []syncfs.FileInfo{
			mallory.file("abs/x", []byte("x"), v), mallory.file("rel/keep.txt", []byte("overwritten"), v),
			mallory.file("inlink/keep.txt", []byte("overwritten"), v), mallory.file("inlink/new", []byte("new"), v),
		}},
		{"a concurrent directory over a symlink", []syncfs.FileInfo{
			mallory.dir("abs", v), mallory.file("abs/x", []byte("x"), v),
		}},
		{"a newer directory over a symlink", []syncfs.FileInfo{
			mallory.dir("rel", mallory.version(rel.fi.Version)), mallory.file("rel/keep.txt", []byte("in the folder"), v),
		}},
		{"its own symlink out of the folder", []syncfs.FileInfo{
			mallory.symlink("foo", outside, v),
		}},
		{"files under its symlink", []syncfs.FileInfo{
			mallory.symlink("foo", outside, v), mallory.file("foo/bar", []byte("bar"), v), mallory.dir("foo/sub", v),
		}},
		{"the symlink deleted", []syncfs.FileInfo{
			{Name: "foo", Type: syncfs.TypeSymlink, Deleted: true, Version: mallory.version(v)},
		}},
		{"a directory where the symlink was", []syncfs.FileInfo{
			mallory.dir("foo", mallory.version(mallory.version(v))), mallory.file("foo/bar", []byte("bar"), v),
		}},
	}
	for _, r := range rounds {
		mallory.serve(r.files...)
		mallory.round(bob)
		check(r.name)
	}
	n.waitEqual(server, alice, bob)
	check("in the end")
	for _, d := range []*testNode{server, alice, bob} {
		for name, want := range map[string]string{"abs/x": "x", "rel/keep.txt": "in the folder", "foo/bar": "bar"} {
			if fi, err := os.Lstat(filepath.Join(d.root, filepath.Dir(name))); err != nil || !fi.IsDir() {
				t.Errorf("%s: %s is not a directory: %v", d.name, filepath.Dir(name), err)
			}
			if got := d.read(t, name); got != want {
				t.Errorf("%s: %s = %q; want %q", d.name, name, got, want)
			}
		}
		if cc := conflictCopies(t, d, "abs"); len(cc) != 1 || cc[outside] == "" {
			t.Errorf("%s: conflict copies of abs %v; want the server's symlink to %s", d.name, cc, outside)
		}
	}
}

// Malformed answers to the server's requests, from a hostile member: index
// responses whose lengths are huge, overflow or lie, that are not CBOR or
// nest deeply, that end early; block frames larger than any block, with
// lengths that overflow, with another block's bytes, cut short. Each is
// refused before anything is allocated for it (a frame's length is
// checked before its buffer is made), nothing of the file is written
// until its blocks can be had, and the server goes on syncing the others.
func TestHostileFrames(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	mallory := n.newRogue("mallory", collections.RightReadWrite)
	n.waitEqual(alice, server, bob)
	const huge = 1 << 62
	varint := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	overflow := bytes.Repeat([]byte{0xff}, 11)
	nested := bytes.Repeat([]byte{0x81}, maxHeader-1) // [[[[...
	header := func(h indexHeader) []byte { return frame(encode(t, h)) }
	v := mallory.version(syncfs.Vector{})
	good := mallory.page(syncfs.Index{Folder: n.folder, Device: mallory.host.ID().String(), Sequence: 9, Files: []syncfs.FileInfo{mallory.file("m.txt", []byte("m"), v)}})

	for name, answer := range map[string][]byte{
		"header of a huge length":      varint(huge),
		"header length overflows":      overflow,
		"header over its limit":        varint(maxHeader + 1),
		"header nested deeply":         frame(nested),
		"header not CBOR":              frame([]byte("not cbor at all")),
		"unknown status":               header(indexHeader{Status: 99, Session: 1, Sequence: 9, Pages: 1}),
		"too many pages":               header(indexHeader{Status: statusFull, Session: 1, Sequence: 9, Pages: math.MaxUint32}),
		"page over the index limit":    append(header(indexHeader{Status: statusFull, Session: 1, Sequence: 9, Pages: 1}), varint(syncfs.MaxIndexSize+1)...),
		"page of a huge length":        append(header(indexHeader{Status: statusFull, Session: 1, Sequence: 9, Pages: 1}), varint(huge)...),
		"page not an envelope":         append(header(indexHeader{Status: statusFull, Session: 1, Sequence: 9, Pages: 1}), frame([]byte("garbage"))...),
		"fewer pages than the header":  append(header(indexHeader{Status: statusFull, Session: 1, Sequence: 9, Pages: 2}), frame(good)...),
		"a delta over another session": append(header(indexHeader{Status: statusDelta, Session: 2, Sequence: 9, Pages: 1}), frame(good)...),
	} {
		mallory.setIndex(func(s Stream) {
			defer s.Close()
			_, _ = s.Write(answer)
		})
		requests := mallory.indexRequests.Load()
		mallory.round(bob)
		if mallory.indexRequests.Load() == requests {
			t.Fatalf("%s: the server did not ask for mallory's index", name)
		}
		if got := server.read(t, "m.txt"); got != "" {
			t.Fatalf("%s: m.txt taken from a malformed answer", name)
		}
	}

	// Blocks: an index announcing a file, whose blocks come malformed.
	mallory.setIndex(nil)
	data := randomBytes(5 << 20)
	big := mallory.file("big.bin", data, v)
	if len(big.Blocks) < 2 {
		t.Fatalf("big.bin has %d blocks; want several", len(big.Blocks))
	}
	mallory.serve(big)
	maxBlock := syncfs.DefaultChunking.MaxSize
	other := randomBytes(int(big.Blocks[0].Size))
	answers := []func(s Stream, req blockRequest){
		func(s Stream, _ blockRequest) { _, _ = s.Write(varint(huge)) },
		func(s Stream, _ blockRequest) { _, _ = s.Write(overflow) },
		func(s Stream, _ blockRequest) { _, _ = s.Write(append(varint(uint64(maxBlock)+2), blockOK)) },
		func(s Stream, req blockRequest) {
			for _, ref := range req.Blocks { // the right size, the wrong bytes
				_ = wire.WriteFrame(s, append([]byte{blockOK}, other[:min(int(ref.Size), len(other))]...))
			}
		},
		func(s Stream, req blockRequest) { // cut short
			_, _ = s.Write(append(varint(uint64(req.Blocks[0].Size)+1), blockOK, 1, 2, 3))
		},
		func(s Stream, req blockRequest) { // an unknown status
			for _, ref := range req.Blocks {
				_ = wire.WriteFrame(s, append([]byte{7}, bytes.Repeat([]byte{0}, int(ref.Size))...))
			}
		},
	}
	var answered atomic.Int32
	mallory.setBlock(func(s Stream) {
		defer s.Close()
		var req blockRequest
		if wire.ReadMsg(bufio.NewReader(s), maxRequest, &req) != nil || len(req.Blocks) == 0 {
			_ = s.Reset()
			return
		}
		i := answered.Add(1) - 1
		answers[int(i)%len(answers)](s, req)
	})
	mallory.round(bob)
	waitFor(t, 60*time.Second, "every malformed block answer to be tried", func() bool { return answered.Load() >= int32(len(answers)) })
	if got := server.read(t, "big.bin"); got != "" {
		t.Fatalf("big.bin (%d bytes) is on the server though its blocks never came", len(got))
	}
	if tmp := tempNames(t, server.root); len(tmp) > 1 {
		t.Errorf("temporary files on the server: %v; want at most big.bin's partial file", tmp)
	}
	// Once mallory answers properly, the next attempt takes the file.
	mallory.setBlock(nil)
	waitFor(t, 60*time.Second, "big.bin on the server", func() bool { return server.read(t, "big.bin") == string(data) })
	n.waitEqual(server, alice, bob)
	for _, d := range []*testNode{server, alice, bob} {
		if got := d.read(t, "big.bin"); got != string(data) {
			t.Errorf("%s: big.bin has %d bytes, not mallory's file", d.name, len(got))
		}
	}
}

// Malformed requests from a member to the server's handlers: frames of
// huge or overflowing lengths, over the request limit, nested deeply, not
// CBOR, and block requests for too many blocks, blocks of no size or
// larger than any block, too many bytes at once. Each stream is reset with
// nothing sent; a well-formed request for blocks the server does not have
// is answered, block by block, as missing; the server goes on syncing.
func TestHostileRequests(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	mallory := n.newRogue("mallory", collections.RightReadWrite)
	alice.write(t, "a.txt", "from alice")
	n.waitEqual(alice, server, bob)
	ref := func(size uint32) blockRef { return blockRef{Hash: syncfs.HashBytes([]byte{byte(size)}), Size: size} }
	refs := func(count int, size uint32) []blockRef {
		out := make([]blockRef, count)
		for i := range out {
			out[i] = ref(size)
		}
		return out
	}
	maxBlock := syncfs.DefaultChunking.MaxSize
	malformed := map[string][]byte{
		"huge length":       binary.AppendUvarint(nil, 1<<62),
		"length overflows":  bytes.Repeat([]byte{0xff}, 11),
		"over the limit":    binary.AppendUvarint(nil, maxRequest+1),
		"nested deeply":     frame(bytes.Repeat([]byte{0x81}, 1000)),
		"not CBOR":          frame([]byte("not cbor")),
		"unknown field":     frame(encode(t, map[int]string{99: "x"})),
		"empty":             nil,
		"no folder":         frame(encode(t, blockRequest{Blocks: refs(1, 10)})),
		"too many blocks":   frame(encode(t, blockRequest{Folder: n.folder, Blocks: refs(maxBatch+1, 10)})),
		"a block of size 0": frame(encode(t, blockRequest{Folder: n.folder, Blocks: []blockRef{ref(0)}})),
		"a block too large": frame(encode(t, blockRequest{Folder: n.folder, Blocks: []blockRef{ref(maxBlock + 1)}})),
		"too many bytes":    frame(encode(t, blockRequest{Folder: n.folder, Blocks: refs(maxBatchBytes/int(maxBlock)+1, maxBlock)})),
	}
	for _, p := range []protocol.ID{ProtoIndex, ProtoBlock, ProtoNotify} {
		for name, raw := range malformed {
			if p != ProtoBlock && strings.Contains(name, "block") {
				continue
			}
			got, err := mallory.request(p, raw)
			if err == nil || len(got) > 0 {
				t.Errorf("%s, %s: answered %d bytes, error %v; want the stream reset, nothing sent", p, name, len(got), err)
			}
		}
	}
	// Well-formed, for blocks the server does not have: each is missing.
	got, err := mallory.request(ProtoBlock, frame(encode(t, blockRequest{Folder: n.folder, Blocks: refs(3, 10)})))
	if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{1, blockMissing}, 3)) {
		t.Errorf("a request for blocks the server lacks: answered %v, %v; want three missing frames", got, err)
	}
	alice.write(t, "after.txt", "still syncing")
	n.waitEqual(alice, server, bob)
}

// A read-write member announces symlinks whose targets are absolute or
// leave the folder, beside a file and a symlink within it. By default none
// of them is created: the server lists them in its status as skipped, with
// why, and takes the rest. The same goes for the server's own such symlink
// on the devices, while it stays on the server's disk. With
// Config.OutsideSymlinks, every host takes them all.
func TestHostileOutsideSymlinks(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allowed=%v", allow), func(t *testing.T) {
			n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite},
				func(c *Config) { c.OutsideSymlinks = func(string) bool { return allow } })
			alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
			mallory := n.newRogue("mallory", collections.RightReadWrite)
			if err := os.Symlink("../outside-own", filepath.Join(server.root, "own")); err != nil {
				t.Fatal(err)
			}
			n.running(server).requestRescan()

			hostile := map[string]string{"passwd": "/etc/passwd", "up": "../../outside", "dotdot": "a/../../x", "win": `C:\Windows`}
			inside := map[string]string{"d/in": "../ok.txt", "own": "../outside-own"}
			v := mallory.version(syncfs.Vector{})
			files := []syncfs.FileInfo{mallory.file("ok.txt", []byte("from mallory"), v), mallory.dir("d", v), mallory.symlink("d/in", inside["d/in"], v)}
			for name, target := range hostile {
				files = append(files, mallory.symlink(name, target, v))
			}
			mallory.serve(files...)
			mallory.round(bob)

			linkIs := func(d *testNode, name, target string) bool {
				got, err := os.Readlink(filepath.Join(d.root, name))
				return err == nil && got == target
			}
			if allow {
				n.waitEqual(server, alice, bob)
				for _, d := range []*testNode{server, alice, bob} {
					for name, target := range hostile {
						if !linkIs(d, name, target) {
							t.Errorf("%s: %s is not a symlink to %s though outside symlinks are allowed", d.name, name, target)
						}
					}
					if st := n.status(d); st.SkippedCount != 0 {
						t.Errorf("%s: skipped %v; want nothing skipped", d.name, st.Skipped)
					}
				}
				return
			}
			for _, d := range []*testNode{alice, bob} {
				waitFor(t, 60*time.Second, d.name+" to take mallory's file and to deal with the server's symlink", func() bool {
					_, err := os.Lstat(filepath.Join(d.root, "own"))
					return d.read(t, "ok.txt") == "from mallory" && linkIs(d, "d/in", inside["d/in"]) &&
						(n.status(d).SkippedCount > 0 || err == nil)
				})
				if _, err := os.Lstat(filepath.Join(d.root, "own")); err == nil {
					t.Errorf("%s: the server's symlink own to ../outside-own was created", d.name)
				}
				if st := n.status(d); st.SkippedCount != 1 || len(st.Skipped) != 1 || st.Skipped[0].Path != "own" ||
					!strings.Contains(st.Skipped[0].Reason, `target "../outside-own" leaves the folder`) {
					t.Errorf("%s: skipped %d: %v; want own, its target named", d.name, st.SkippedCount, st.Skipped)
				}
			}
			if !linkIs(server, "own", inside["own"]) {
				t.Errorf("server: its own symlink own is gone")
			}
			if got := server.read(t, "ok.txt"); got != "from mallory" || !linkIs(server, "d/in", inside["d/in"]) {
				t.Errorf("server: ok.txt = %q, d/in a symlink to ../ok.txt: %v; want both taken", got, linkIs(server, "d/in", inside["d/in"]))
			}
			st := n.status(server)
			skipped := map[string]string{}
			for _, s := range st.Skipped {
				skipped[s.Path] = s.Reason
			}
			for _, d := range []*testNode{server, alice, bob} {
				for name := range hostile {
					if _, err := os.Lstat(filepath.Join(d.root, name)); err == nil {
						t.Errorf("%s: %s was created", d.name, name)
					}
					if d == server && !strings.Contains(skipped[name], "symlink points outside the folder") {
						t.Errorf("server: %s skipped for %q; want it listed, the target outside the folder", name, skipped[name])
					}
				}
			}
			if st.SkippedCount != len(hostile) || len(st.Skipped) != len(hostile) {
				t.Errorf("server: skipped %d: %v; want the %d hostile symlinks", st.SkippedCount, st.Skipped, len(hostile))
			}
		})
	}
}
