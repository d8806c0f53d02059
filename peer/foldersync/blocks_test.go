package foldersync

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer/wire"
	"github.com/baton-sync/baton/syncfs"
)

// A peer that sends wrong bytes for a block is treated as not having it:
// the block is asked from the next peer, and only verified bytes reach
// the caller.
func TestWrongBlockAskedFromNextPeer(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	content := randomBytes(300 << 10)
	alice.write(t, "f.bin", string(content))
	n.waitEqual(alice, server, bob)
	ent, ok := n.running(server).pub.Load().get("f.bin")
	if !ok {
		t.Fatal("f.bin is not in the server's published index")
	}
	blocks := ent.fi.Blocks
	if len(blocks) == 0 {
		t.Fatal("f.bin has no blocks")
	}

	// The server now answers every block with garbage of the right size.
	var lied atomic.Int32
	server.host.SetHandler(ProtoBlock, func(s Stream, _ lpeer.ID) {
		defer s.Close()
		var req blockRequest
		if wire.ReadMsg(bufio.NewReader(s), maxRequest, &req) != nil {
			_ = s.Reset()
			return
		}
		for _, ref := range req.Blocks {
			lied.Add(1)
			if wire.WriteFrame(s, append([]byte{blockOK}, randomBytes(int(ref.Size))...)) != nil {
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := bob.host.Connect(alice.host.ID()); err != nil {
		t.Fatal(err)
	}
	src := n.running(bob).newSource(ctx, []lpeer.ID{server.host.ID(), alice.host.ID()}, nil)
	defer src.close()
	b := blocks[0]
	vb, err := src.Block(ctx, b.Hash, b.Size)
	if err != nil {
		t.Fatalf("Block from a lying server, then alice: %v", err)
	}
	defer vb.Release()
	if lied.Load() == 0 {
		t.Fatal("the server was not asked: the test is not exercising a wrong block")
	}
	if !bytes.Equal(vb.Data(), content[b.Offset:b.Offset+int64(b.Size)]) || vb.Hash() != b.Hash {
		t.Errorf("Block returned %d bytes that are not the block", len(vb.Data()))
	}

	// With only the lying server, the block is unavailable.
	only := n.running(bob).newSource(ctx, []lpeer.ID{server.host.ID()}, nil)
	defer only.close()
	if vb, err := only.Block(ctx, b.Hash, b.Size); err == nil {
		vb.Release()
		t.Error("Block from only a lying server succeeded")
	}
}

// A published file is served only while it may still be what the index
// says: its blocks are sent unhashed while its size and mtime are the
// indexed ones, hashed first when only the mtime differs (a filesystem
// with coarser times), and not at all once its size changed.
func TestOpenPublishedChecksStat(t *testing.T) {
	dir := t.TempDir()
	data := []byte("published content")
	mtime := time.Unix(1700000000, 123456789)
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	blocks, sum, err := syncfs.HashFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	v := syncfs.Vector{}.Update("dev")
	files := syncfs.Snapshot{
		"f":    {Name: "f", Type: syncfs.TypeFile, Size: int64(len(data)), Mode: 0o644, ModTime: mtime.UnixNano(), Version: v, Blocks: blocks, FileHash: sum},
		"gone": {Name: "gone", Type: syncfs.TypeFile, Deleted: true, Version: v},
	}
	pub, _ := newPublished(nil, "f1", "dev", 1, 1, files, nil, true, nil)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	open := func(name string) (served, same bool) {
		fh := openPublished(root, pub, name)
		if fh == nil {
			return false, false
		}
		fh.f.Close()
		return true, fh.same
	}
	if served, same := open("f"); !served || !same {
		t.Fatalf("openPublished(unchanged file): served %v, same %v; want both", served, same)
	}
	if served, _ := open("gone"); served {
		t.Error("openPublished(tombstone) served a file")
	}
	if err := os.Chtimes(p, mtime.Add(time.Second), mtime.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if served, same := open("f"); !served || same {
		t.Errorf("openPublished(file with another mtime): served %v, same %v; want served, hashed first", served, same)
	}
	if err := os.WriteFile(p, append(data, '!'), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if served, _ := open("f"); served {
		t.Error("openPublished(file with another size) served it")
	}
}

// A received block shared by the prefetch cache and the applier goes back
// to the pool only when its last holder releases it.
func TestFetchedBlockSharing(t *testing.T) {
	content := randomBytes(200 << 10)
	ref := blockRef{Hash: syncfs.HashBytes(content), Size: uint32(len(content))}
	var frame bytes.Buffer
	if err := wire.WriteFrame(&frame, append([]byte{blockOK}, content...)); err != nil {
		t.Fatal(err)
	}
	fb, ok, err := readBlockFrame(bufio.NewReader(&frame), ref, 2<<20)
	if err != nil || !ok {
		t.Fatalf("readBlockFrame = %v, %v; want the block", ok, err)
	}
	a, b := fb.share(), fb.share()
	fb.vb.Release() // the cache lets go
	a.Release()
	if fb.buf.refs.Load() != 1 || !bytes.Equal(b.Data(), content) {
		t.Fatalf("after two of three releases: %d references, data intact %v; want 1, true", fb.buf.refs.Load(), bytes.Equal(b.Data(), content))
	}
	b.Release()
	if n := fb.buf.refs.Load(); n != 0 {
		t.Fatalf("after every release: %d references; want 0", n)
	}
	defer func() {
		if recover() == nil {
			t.Error("releasing once too often did not panic")
		}
	}()
	b.Release()
}

// A frame holding the wrong bytes, or a missing block, is skipped without
// breaking the stream: the next frame is read.
func TestReadBlockFrameSkipsWrong(t *testing.T) {
	good := randomBytes(100 << 10)
	ref := blockRef{Hash: syncfs.HashBytes(good), Size: uint32(len(good))}
	var in bytes.Buffer
	for _, f := range [][]byte{append([]byte{blockOK}, randomBytes(len(good))...), {blockMissing}, append([]byte{blockOK}, good[:10]...), append([]byte{blockOK}, good...)} {
		if err := wire.WriteFrame(&in, f); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(&in)
	for i := range 3 {
		if fb, ok, err := readBlockFrame(br, ref, 2<<20); ok || err != nil {
			fb.vb.Release()
			t.Fatalf("frame %d: ok %v, err %v; want skipped", i, ok, err)
		}
	}
	fb, ok, err := readBlockFrame(br, ref, 2<<20)
	if !ok || err != nil || !bytes.Equal(fb.vb.Data(), good) {
		t.Fatalf("last frame: ok %v, err %v; want the block", ok, err)
	}
	fb.vb.Release()
	if _, _, err := readBlockFrame(br, ref, 2<<20); err == nil {
		t.Error("reading past the end: no error")
	}
}

// A large transfer cut off midway is taken up where it stopped: the
// blocks in the partial file are verified and kept, and the retry fetches
// only the others, with the engine running on, after a restart of the
// receiving engine, and after a restart of the sending one (whose index
// then comes in a new session).
func TestInterruptedTransferFetchesTheRest(t *testing.T) {
	for _, mode := range []string{"retry", "restart", "sender restart"} {
		restart := mode == "restart"
		t.Run(mode, func(t *testing.T) {
			// One prefetch worker: the blocks are asked for in order, so
			// the first requests, which get through, are the ones the
			// applier writes first.
			n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner}, func(c *Config) { c.Fetches = 2 })
			alice, server := n.nodes["alice"], n.server
			waitFor(t, 30*time.Second, "alice's engine", func() bool { return n.running(alice) != nil })
			broken := breakBlocksAfter(alice, 2)
			const size = 32 << 20
			alice.write(t, "big.bin", string(randomBytes(size)))
			waitFor(t, 30*time.Second, "the transfer to fail", func() bool {
				return broken.Load() && strings.Contains(n.status(server).LastError, "not applied")
			})
			if restart {
				n.stop(server)
			}
			st := n.status(server)
			fetched, copied, resumed := st.Fetched, st.Copied, st.Resumed

			// What the partial file holds, block by block, verified.
			ent, ok := n.running(alice).pub.Load().get("big.bin")
			if !ok {
				t.Fatal("big.bin is not in alice's published index")
			}
			var kept int64
			ents, _ := os.ReadDir(server.root)
			for _, de := range ents {
				if !syncfs.IsTemp(de.Name()) {
					continue
				}
				data, err := os.ReadFile(filepath.Join(server.root, de.Name()))
				if err != nil {
					t.Fatal(err)
				}
				for _, b := range ent.fi.Blocks {
					if end := b.Offset + int64(b.Size); end <= int64(len(data)) && syncfs.HashBytes(data[b.Offset:end]) == b.Hash {
						kept += int64(b.Size)
					}
				}
			}
			if kept == 0 || kept == size {
				t.Fatalf("the partial file holds %d of %d bytes; want some", kept, size)
			}

			alice.host.SetHandler(ProtoBlock, alice.eng.handleBlock)
			if restart {
				n.start(server)
				fetched, copied, resumed = 0, 0, 0 // a new engine counts from zero
			}
			if mode == "sender restart" {
				session := n.running(alice).session
				n.stop(alice)
				n.start(alice) // serves blocks itself again
				waitFor(t, 30*time.Second, "alice's engine", func() bool { return n.running(alice) != nil })
				if n.running(alice).session == session {
					t.Fatal("alice's restarted folder has the session of the first")
				}
			}
			n.waitEqual(alice, server)
			st = n.status(server)
			again, taken := st.Fetched-fetched, st.Resumed-resumed
			t.Logf("cut off with %.1f of %.0f MiB in the partial file, the server fetched %.1f MiB more", float64(kept)/(1<<20), float64(size)/(1<<20), float64(again)/(1<<20))
			// The rest, and at most a block or so more for a request
			// that failed.
			if again < size-kept || again > size-kept+2<<20 {
				t.Errorf("the retry fetched %d bytes; want the %d the partial file lacked", again, size-kept)
			}
			if st.Resumed <= 0 || taken < kept {
				t.Errorf("the retry counted %d bytes resumed (%d in all); want at least the %d kept", taken, st.Resumed, kept)
			}
			if again+taken < size || again > size-kept/2 {
				t.Errorf("the retry fetched %d and resumed %d bytes of the %d-byte file; want them to cover it, with less fetched than the file by the bytes kept", again, taken, size)
			}
			if c := st.Copied - copied; c != 0 {
				t.Errorf("the retry counted %d bytes copied from local files; want 0 (what was resumed is not copied)", c)
			}
			if tmp := tempNames(t, server.root); len(tmp) > 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}
}

// tempNames lists the applier temporary files in root's top directory.
func tempNames(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range ents {
		if syncfs.IsTemp(de.Name()) {
			out = append(out, de.Name())
		}
	}
	return out
}

// A plan of many small blocks that the applier does not take yet holds at
// most maxHeld fetched blocks and indexes at most queueAhead more, not an
// entry and a fetched block for every block of the plan; every block
// still comes once the applier asks, in plan order.
func TestSourceMemoryBounded(t *testing.T) {
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	bob, server := n.nodes["bob"], n.server
	const blocks = 3 * (queueAhead + maxHeld)
	data := map[syncfs.Hash][]byte{}
	actions := make([]syncfs.Action, blocks)
	for i := range actions {
		b := randomBytes(512)
		h := syncfs.HashBytes(b)
		data[h] = b
		actions[i] = syncfs.Action{Kind: syncfs.ActFetch, Name: fmt.Sprintf("f%05d", i), Need: []syncfs.Block{{Hash: h, Size: uint32(len(b))}}}
	}
	var served atomic.Int64
	server.host.SetHandler(ProtoBlock, func(s Stream, _ lpeer.ID) {
		defer s.Close()
		var req blockRequest
		if wire.ReadMsg(bufio.NewReader(s), maxRequest, &req) != nil {
			_ = s.Reset()
			return
		}
		for _, ref := range req.Blocks {
			served.Add(1)
			if wire.WriteFrame(s, append([]byte{blockOK}, data[ref.Hash]...)) != nil {
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src := n.running(bob).newSource(ctx, []lpeer.ID{server.host.ID()}, actions)
	defer src.close()
	state := func() (held, entries int) {
		src.mu.Lock()
		defer src.mu.Unlock()
		return src.heldN, len(src.entries)
	}
	// The workers stop once they hold maxHeld blocks.
	for {
		if held, _ := state(); held >= maxHeld {
			break
		}
		select {
		case <-ctx.Done():
			held, entries := state()
			t.Fatalf("the workers hold %d blocks (%d entries); want them to reach %d", held, entries, maxHeld)
		case <-time.After(10 * time.Millisecond): // polls the source's state
		}
	}
	if held, entries := state(); held > maxHeld || entries > maxHeld+queueAhead {
		t.Errorf("holding %d fetched blocks and %d entries of a plan of %d; want at most %d and %d", held, entries, blocks, maxHeld, maxHeld+queueAhead)
	}
	if s := served.Load(); s > maxHeld+maxBatch {
		t.Errorf("%d blocks fetched ahead of the applier; want at most %d", s, maxHeld+maxBatch)
	}
	for i, a := range actions {
		b := a.Need[0]
		vb, err := src.Block(ctx, b.Hash, b.Size)
		if err != nil {
			t.Fatalf("block of action %d: %v", i, err)
		}
		if !bytes.Equal(vb.Data(), data[b.Hash]) {
			t.Fatalf("block of action %d: wrong bytes", i)
		}
		vb.Release()
		src.done(i)
	}
	if held, entries := state(); held != 0 || entries != 0 {
		t.Errorf("after the plan: %d blocks held, %d entries; want none", held, entries)
	}
}
