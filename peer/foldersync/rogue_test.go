package foldersync

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/peer/wire"
	"github.com/baton-sync/baton/syncfs"
)

// rogue is a member device with no engine: a raw libp2p host that speaks
// the folder protocols by hand. It serves the index a test gives it,
// signed with its key but not checked (so it may hold anything), and the
// blocks of the files it announced; a test may replace either answer.
type rogue struct {
	*testNode
	n *testNet

	mu     sync.Mutex
	seq    uint64
	files  []syncfs.FileInfo      // the index served, in name order
	blocks map[syncfs.Hash][]byte // the blocks served
	index  func(s Stream)         // answers index requests instead, if set
	block  func(s Stream)         // answers block requests instead, if set

	indexRequests, blockRequests atomic.Int32
	settled                      int
}

// newRogue adds a member called name to the folder, with right, as a
// device connected to the server.
func (n *testNet) newRogue(name string, right collections.Right) *rogue {
	n.t.Helper()
	r := &rogue{testNode: n.newNode(name), n: n, blocks: map[syncfs.Hash][]byte{}}
	n.access.SetUser(r.host.ID(), name)
	fo, _ := n.access.Folder(n.folder)
	fo.Members[name] = right
	n.access.SetFolder(fo)
	r.host.SetHandler(ProtoIndex, func(s Stream, _ lpeer.ID) { r.handleIndex(s) })
	r.host.SetHandler(ProtoBlock, func(s Stream, _ lpeer.ID) { r.handleBlock(s) })
	n.connect(r.testNode)
	return r
}

// setIndex makes r answer index requests with s (nil: the index served).
func (r *rogue) setIndex(s func(Stream)) {
	r.mu.Lock()
	r.index = s
	r.mu.Unlock()
}

// setBlock makes r answer block requests with s (nil: the blocks served).
func (r *rogue) setBlock(s func(Stream)) {
	r.mu.Lock()
	r.block = s
	r.mu.Unlock()
}

func (r *rogue) handleIndex(s Stream) {
	r.indexRequests.Add(1)
	r.mu.Lock()
	h, seq, files := r.index, r.seq, slices.Clone(r.files)
	r.mu.Unlock()
	if h != nil {
		h(s)
		return
	}
	defer s.Close()
	var req indexRequest
	if wire.ReadMsg(bufio.NewReader(s), maxRequest, &req) != nil {
		_ = s.Reset()
		return
	}
	page := r.page(syncfs.Index{Folder: r.n.folder, Device: r.host.ID().String(), Sequence: seq, Files: files})
	_ = wire.WriteMsg(s, indexHeader{Status: statusFull, Session: 1, Sequence: seq, Pages: 1})
	_ = wire.WriteFrame(s, page)
}

func (r *rogue) handleBlock(s Stream) {
	r.blockRequests.Add(1)
	r.mu.Lock()
	h := r.block
	r.mu.Unlock()
	if h != nil {
		h(s)
		return
	}
	defer s.Close()
	var req blockRequest
	if wire.ReadMsg(bufio.NewReader(s), maxRequest, &req) != nil {
		_ = s.Reset()
		return
	}
	for _, ref := range req.Blocks {
		r.mu.Lock()
		data, ok := r.blocks[ref.Hash]
		r.mu.Unlock()
		frame := []byte{blockMissing}
		if ok && len(data) == int(ref.Size) {
			frame = append([]byte{blockOK}, data...)
		}
		if wire.WriteFrame(s, frame) != nil {
			return
		}
	}
}

// page signs idx as r, as it is: SignIndex would refuse a malformed one.
func (r *rogue) page(idx syncfs.Index) []byte {
	r.n.t.Helper()
	payload, err := canon.Marshal(idx)
	if err != nil {
		r.n.t.Fatal(err)
	}
	env, err := identity.Seal(identity.PurposeIndex, payload, r.key)
	if err != nil {
		r.n.t.Fatal(err)
	}
	b, err := env.Marshal()
	if err != nil {
		r.n.t.Fatal(err)
	}
	return b
}

// serve makes files r's index, at a new sequence.
func (r *rogue) serve(files ...syncfs.FileInfo) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b syncfs.FileInfo) int { return strings.Compare(a.Name, b.Name) })
	r.mu.Lock()
	r.files = files
	r.seq++
	r.mu.Unlock()
}

// version is a new version of r's: v (zero: none) updated by r.
func (r *rogue) version(v syncfs.Vector) syncfs.Vector {
	return v.Update(r.host.ID().String())
}

// file returns the entry of a file r holds, at version v, and serves its
// blocks.
func (r *rogue) file(name string, data []byte, v syncfs.Vector) syncfs.FileInfo {
	r.n.t.Helper()
	blocks, sum, err := syncfs.HashFile(bytes.NewReader(data))
	if err != nil {
		r.n.t.Fatal(err)
	}
	r.mu.Lock()
	for _, b := range blocks {
		r.blocks[b.Hash] = data[b.Offset : b.Offset+int64(b.Size)]
	}
	r.mu.Unlock()
	return syncfs.FileInfo{Name: name, Type: syncfs.TypeFile, Size: int64(len(data)), Mode: 0o644,
		ModTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano(), Version: v, Blocks: blocks, FileHash: sum}
}

// dir returns the entry of a directory at version v.
func (r *rogue) dir(name string, v syncfs.Vector) syncfs.FileInfo {
	return syncfs.FileInfo{Name: name, Type: syncfs.TypeDir, Mode: 0o755, Version: v}
}

// symlink returns the entry of a symlink to target at version v.
func (r *rogue) symlink(name, target string, v syncfs.Vector) syncfs.FileInfo {
	return syncfs.FileInfo{Name: name, Type: syncfs.TypeSymlink, SymlinkTarget: target, Version: v}
}

// notify tells the server that r's index changed, as a member device
// does, and waits for the receipt.
func (r *rogue) notify() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.mu.Lock()
	seq := r.seq
	r.mu.Unlock()
	s, err := r.host.NewStream(ctx, r.n.server.host.ID(), ProtoNotify, true)
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wire.WriteMsg(s, notifyMsg{Folder: r.n.folder, Session: 1, Sequence: seq}); err != nil {
		return err
	}
	_ = s.CloseWrite()
	b, err := wire.ReadFrame(bufio.NewReader(s), 16)
	if err != nil {
		return fmt.Errorf("no receipt: %w", err)
	}
	if len(b) > 0 {
		return fmt.Errorf("receipt %v: the folder is not synced on the server", b)
	}
	return nil
}

// round announces r's index to the server and returns once the server
// has dealt with it: its folder took the notification, and then the
// honest device's next change reached it (the folder takes the devices'
// changes one at a time, in the order they come).
func (r *rogue) round(honest *testNode) {
	t := r.n.t
	t.Helper()
	if err := r.notify(); err != nil {
		t.Fatalf("%s notifying the server: %v", r.name, err)
	}
	f := r.n.running(r.n.server)
	waitFor(t, 30*time.Second, "the server to take "+r.name+"'s notification", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return !f.notified[r.host.ID()]
	})
	r.settled++
	name, data := fmt.Sprintf("settle-%s-%d.txt", r.name, r.settled), fmt.Sprintf("round %d", r.settled)
	honest.write(t, name, data)
	waitFor(t, 60*time.Second, name+" on the server", func() bool { return r.n.server.read(t, name) == data })
}

// request opens a stream of protocol p to the server, sends raw and
// returns what the server answers before it closes or resets the stream.
func (r *rogue) request(p protocol.ID, raw []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := r.host.NewStream(ctx, r.n.server.host.ID(), p, true)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := s.Write(raw); err != nil {
		return nil, err
	}
	_ = s.CloseWrite()
	var out bytes.Buffer
	_, err = out.ReadFrom(s)
	return out.Bytes(), err
}

// frame returns b as one frame.
func frame(b []byte) []byte {
	var buf bytes.Buffer
	_ = wire.WriteFrame(&buf, b)
	return buf.Bytes()
}

// encode returns v's canonical encoding.
func encode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := canon.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// namesUnder lists every entry under root by slash-separated name,
// temporary files included.
func namesUnder(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if rel, _ := filepath.Rel(root, p); rel != "." {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
