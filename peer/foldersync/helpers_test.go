package foldersync

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer/foldersync/foldersynctest"
	"github.com/baton-sync/baton/peer/foldersync/memnet"
	"github.com/baton-sync/baton/syncfs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/libp2p/go-flow-metrics.(*sweeper).run"))
}

// testNet is a folder's server and member devices on an in-memory network
// (memnet), each a host with an engine.
type testNet struct {
	t      testing.TB
	net    *memnet.Net
	access *foldersynctest.Access
	folder string
	server *testNode
	nodes  map[string]*testNode
	// conf adjusts every engine's configuration.
	conf func(*Config)
}

type testNode struct {
	name    string
	key     *identity.PrivateKey
	host    *memnet.Host
	tr      Transport // the engine's: host
	dataDir string
	root    string
	eng     *Engine
	cancel  context.CancelFunc
	done    chan error
}

// newTestNet starts a server hosting folder "f1" and devices, one per
// user, with the given rights.
func newTestNet(t testing.TB, rights map[string]collections.Right, conf func(*Config)) *testNet {
	t.Helper()
	n := &testNet{
		t:      t,
		net:    memnet.New(),
		folder: "f1",
		access: &foldersynctest.Access{},
		nodes:  map[string]*testNode{},
		conf:   conf,
	}
	n.server = n.newNode("server")
	n.access.SetServer(n.server.host.ID())
	members := map[string]collections.Right{}
	owner := ""
	for user, r := range rights {
		members[user] = r
		if r == collections.RightOwner {
			owner = user
		}
	}
	n.access.SetFolder(collections.Folder{ID: n.folder, Name: "shared", Owner: owner, Server: n.server.host.ID().String(), Members: members})
	n.start(n.server)
	for user := range rights {
		d := n.newNode(user)
		n.access.SetUser(d.host.ID(), user)
		n.connect(d)
		n.start(d)
	}
	return n
}

// newNode makes a host with a folder directory.
func (n *testNet) newNode(name string) *testNode {
	t := n.t
	t.Helper()
	key := identitytest.Key("foldersync-" + name)
	h := n.net.Host(key.ID())
	base := t.TempDir()
	nd := &testNode{name: name, key: key, host: h, tr: h, dataDir: filepath.Join(base, "data"), root: filepath.Join(base, "folder")}
	for _, d := range []string{nd.dataDir, nd.root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n.nodes[name] = nd
	return nd
}

// connect connects d to the server.
func (n *testNet) connect(d *testNode) {
	n.t.Helper()
	if err := d.host.Connect(n.server.host.ID()); err != nil {
		n.t.Fatalf("connecting %s to the server: %v", d.name, err)
	}
}

// start starts (or restarts) d's engine.
func (n *testNet) start(d *testNode) {
	t := n.t
	t.Helper()
	cfg := Config{
		Transport:    d.tr,
		Key:          d.key,
		DataDir:      d.dataDir,
		Access:       func() Access { return n.access },
		Logger:       testLogger(t, d.name),
		PullInterval: time.Minute, // notifications must do the work
	}
	if n.conf != nil {
		n.conf(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.SetFolders(map[string]string{n.folder: d.root})
	ctx, cancel := context.WithCancel(context.Background())
	d.eng, d.cancel, d.done = e, cancel, make(chan error, 1)
	go func() { d.done <- e.Run(ctx) }()
	t.Cleanup(func() { n.stop(d) })
}

// running waits until d's engine runs the test folder and returns it. The
// engine starts its folders on Run's goroutine, after opening its
// database: a test that reaches into the folder right after start must
// wait for it.
func (n *testNet) running(d *testNode) *folder {
	n.t.Helper()
	waitFor(n.t, 30*time.Second, d.name+"'s engine to run the folder", func() bool { return d.eng.folder(n.folder) != nil })
	return d.eng.folder(n.folder)
}

// stop stops d's engine and waits for it.
func (n *testNet) stop(d *testNode) {
	if d.cancel == nil {
		return
	}
	d.cancel()
	select {
	case err := <-d.done:
		if err != nil {
			n.t.Errorf("%s: Run: %v", d.name, err)
		}
	case <-time.After(30 * time.Second):
		n.t.Errorf("%s: engine did not stop", d.name)
	}
	d.cancel = nil
}

func testLogger(t testing.TB, name string) *slog.Logger {
	if os.Getenv("FOLDERSYNC_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

// status returns d's folder status.
func (n *testNet) status(d *testNode) FolderStatus {
	st, _ := d.eng.Status(n.folder)
	return st
}

// waitFor waits until cond holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitEqual waits until the trees of the nodes are equal (conflict copies
// included) and every one is in sync.
func (n *testNet) waitEqual(nodes ...*testNode) {
	n.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		last := n.equal(nodes...)
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			var st []string
			for _, d := range nodes {
				st = append(st, fmt.Sprintf("%s: %+v", d.name, n.status(d)))
			}
			n.t.Fatalf("trees not equal after 60 s: %s\n%s", last, strings.Join(st, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// equal says how the nodes' trees differ or are not in sync, "" if not.
func (n *testNet) equal(nodes ...*testNode) string {
	want := readTree(n.t, nodes[0].root)
	for _, d := range nodes[1:] {
		if diff := treeDiff(want, readTree(n.t, d.root)); diff != "" {
			return fmt.Sprintf("%s vs %s: %s", nodes[0].name, d.name, diff)
		}
	}
	for _, d := range nodes {
		if st := n.status(d); !st.InSync {
			return fmt.Sprintf("%s not in sync: %+v", d.name, st)
		}
	}
	return ""
}

// entry is one entry of a tree on disk.
type entry struct {
	kind string // file, dir, symlink
	mode fs.FileMode
	data string // content or target
}

// readTree reads the folder at root, without temporary files. An entry
// that goes while it reads (removed, or under a directory that became a
// file) is left out: callers poll a tree a sync is changing.
func readTree(t testing.TB, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	gone := func(err error) bool { return os.IsNotExist(err) || errors.Is(err, syscall.ENOTDIR) }
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if gone(err) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." || rel == MarkerFile || syncfs.IsTemp(filepath.ToSlash(rel)) {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			if gone(err) {
				return nil
			}
			return err
		}
		name := filepath.ToSlash(rel)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[name] = entry{kind: "symlink", data: target}
		case fi.IsDir():
			out[name] = entry{kind: "dir", mode: fi.Mode().Perm()}
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				if gone(err) {
					return nil
				}
				return err
			}
			out[name] = entry{kind: "file", mode: fi.Mode().Perm(), data: string(b)}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading %s: %v", root, err)
	}
	return out
}

// treeDiff describes how got differs from want, "" if not.
func treeDiff(want, got map[string]entry) string {
	var d []string
	for n, w := range want {
		g, ok := got[n]
		switch {
		case !ok:
			d = append(d, "missing "+n)
		case g != w:
			d = append(d, fmt.Sprintf("%s differs (%s %o %d bytes, want %s %o %d bytes)", n, g.kind, g.mode, len(g.data), w.kind, w.mode, len(w.data)))
		}
		if len(d) > 5 {
			break
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok && len(d) <= 5 {
			d = append(d, "extra "+n)
		}
	}
	return strings.Join(d, "; ")
}

// write writes data to name under d's folder, making directories.
func (d *testNode) write(t testing.TB, name, data string) {
	t.Helper()
	p := filepath.Join(d.root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// read returns the content of name under d's folder, "" if absent.
func (d *testNode) read(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.root, filepath.FromSlash(name)))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// breakBlocksAfter makes d serve its first n block requests and reset
// every later one; the flag it returns is set from the first reset on.
func breakBlocksAfter(d *testNode, n int32) *atomic.Bool {
	var requests atomic.Int32
	broken := new(atomic.Bool)
	d.host.SetHandler(ProtoBlock, func(s Stream, p lpeer.ID) {
		if broken.Load() || requests.Add(1) > n {
			broken.Store(true)
			_ = s.Reset()
			return
		}
		d.eng.handleBlock(s, p)
	})
	return broken
}

// openPeerStore returns a peer index store for an engine that is not run
// (Run opens its own), closed when the test ends.
func openPeerStore(t *testing.T) *syncfs.PeerStore {
	t.Helper()
	ps, err := syncfs.OpenPeerStore(filepath.Join(t.TempDir(), "peers.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	return ps
}
