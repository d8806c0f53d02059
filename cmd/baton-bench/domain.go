package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
	"github.com/baton-sync/baton/peer/foldersync/foldersynctest"
	"github.com/baton-sync/baton/peer/foldersync/memnet"
)

// domain is what the benchmark needs of a running domain: two agents,
// alice (the source) and bob (the target), syncing one read-write folder
// through their home server.
type domain interface {
	// Describe says in a few words what runs (printed with the figures).
	Describe() string
	// Source and Target are alice's and bob's folder directories.
	Source() string
	Target() string
	// SourceStatus, TargetStatus and ServerStatus are the folder's state
	// on alice, bob and the hosting server (ok false if unknown).
	SourceStatus() (foldersync.FolderStatus, bool)
	TargetStatus() (foldersync.FolderStatus, bool)
	ServerStatus() (foldersync.FolderStatus, bool)
	// HistoryBacklog is how many changes the server has yet to keep in
	// its folders' history (ok false if it keeps none).
	HistoryBacklog() (n int, ok bool)
	// Close stops everything and waits for it.
	Close() error
}

// domainOptions are the knobs every domain takes.
type domainOptions struct {
	Dir    string       // a fresh directory for every host's data and folder
	Logger *slog.Logger // nil: discard
	// Transport carries the engine domain's streams: transportLibp2p or
	// transportMem.
	Transport string
}

// The engine domain's transports.
const (
	transportLibp2p = "libp2p" // libp2p hosts on 127.0.0.1 (peer.ListenLoopback)
	transportMem    = "mem"    // an in-memory network (memnet)
)

// engineDomain is a folder's hosting server and two member devices, each
// running a folder sync engine, with a fixed Catalog view: alice owns the
// folder, bob may write it, and both sync with the server as their hub.
// It is the sync path of the real node without its catalog replication
// and login. The engines talk over libp2p hosts on 127.0.0.1 or over an
// in-memory network (folderNet).
type engineDomain struct {
	access *foldersynctest.Access
	net    folderNet
	server *engineNode
	alice  *engineNode
	bob    *engineNode
	nodes  []*engineNode
}

type engineNode struct {
	name      string
	key       *identity.PrivateKey
	tr        foldersync.Transport
	closeHost func() error
	dataDir   string
	root      string
	eng       *foldersync.Engine
	cancel    context.CancelFunc
	done      chan error
}

// folderNet makes the engines' transports and connects them.
type folderNet interface {
	// host starts a host for key and returns its transport and what
	// stops it.
	host(key *identity.PrivateKey) (foldersync.Transport, func() error, error)
	// connect connects the hosts a and b.
	connect(ctx context.Context, a, b lpeer.ID) error
	// describe says in a few words what carries the streams.
	describe() string
}

// loopbackNet is libp2p hosts on 127.0.0.1: TCP, libp2p's security
// handshake and stream multiplexer, as between real nodes.
type loopbackNet struct {
	hosts map[lpeer.ID]*peer.LoopbackHost
}

func (n *loopbackNet) host(key *identity.PrivateKey) (foldersync.Transport, func() error, error) {
	h, err := peer.ListenLoopback(key)
	if err != nil {
		return nil, nil, err
	}
	n.hosts[h.ID()] = h
	return h.Transport(), h.Close, nil
}

func (n *loopbackNet) connect(ctx context.Context, a, b lpeer.ID) error {
	return n.hosts[a].Connect(ctx, n.hosts[b])
}

func (n *loopbackNet) describe() string { return "a libp2p host on 127.0.0.1" }

// memNet is an in-memory network: no TCP, no encryption, no multiplexer;
// what the engines cost without the network.
type memNet struct{ net *memnet.Net }

func (n memNet) host(key *identity.PrivateKey) (foldersync.Transport, func() error, error) {
	return n.net.Host(key.ID()), func() error { return nil }, nil
}

func (n memNet) connect(_ context.Context, a, b lpeer.ID) error { return n.net.Connect(a, b) }

func (n memNet) describe() string { return "a host of an in-memory network (no TCP, no TLS)" }

// newFolderNet is the network the transport names.
func newFolderNet(transport string) (folderNet, error) {
	switch transport {
	case transportLibp2p, "":
		return &loopbackNet{hosts: map[lpeer.ID]*peer.LoopbackHost{}}, nil
	case transportMem:
		return memNet{memnet.New()}, nil
	}
	return nil, fmt.Errorf("unknown transport %q", transport)
}

const benchFolder = "bench"

// newEngineDomain starts the server and the two devices and connects the
// devices to the server.
func newEngineDomain(ctx context.Context, o domainOptions) (_ *engineDomain, err error) {
	fnet, err := newFolderNet(o.Transport)
	if err != nil {
		return nil, err
	}
	d := &engineDomain{access: &foldersynctest.Access{}, net: fnet}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	for _, name := range []string{"server", "alice", "bob"} {
		n, err := newEngineNode(fnet, name, filepath.Join(o.Dir, name))
		if err != nil {
			return nil, err
		}
		d.nodes = append(d.nodes, n)
	}
	d.server, d.alice, d.bob = d.nodes[0], d.nodes[1], d.nodes[2]
	d.access.SetServer(d.server.tr.ID())
	d.access.SetUser(d.alice.tr.ID(), "alice")
	d.access.SetUser(d.bob.tr.ID(), "bob")
	d.access.SetFolder(collections.Folder{
		ID: benchFolder, Name: "bench", Owner: "alice", Server: d.server.tr.ID().String(),
		Members: map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite},
	})
	for _, n := range []*engineNode{d.alice, d.bob} {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fnet.connect(cctx, n.tr.ID(), d.server.tr.ID())
		cancel()
		if err != nil {
			return nil, fmt.Errorf("connecting %s to the server: %w", n.name, err)
		}
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	for _, n := range d.nodes {
		if err := n.start(d.access, logger.With("host", n.name)); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func newEngineNode(fnet folderNet, name, dir string) (*engineNode, error) {
	key, err := identity.Generate(rand.Reader)
	if err != nil {
		return nil, err
	}
	n := &engineNode{name: name, key: key, root: filepath.Join(dir, "folder"), dataDir: filepath.Join(dir, "data")}
	for _, p := range []string{n.dataDir, n.root} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, err
		}
	}
	if n.tr, n.closeHost, err = fnet.host(key); err != nil {
		return nil, fmt.Errorf("starting host %s: %w", name, err)
	}
	return n, nil
}

// start starts n's engine, syncing the benchmark folder.
func (n *engineNode) start(a foldersync.Access, logger *slog.Logger) error {
	e, err := foldersync.New(foldersync.Config{
		Transport: n.tr,
		Key:       n.key,
		DataDir:   n.dataDir,
		Access:    func() foldersync.Access { return a },
		Logger:    logger,
		// The watcher does the work; a full rescan in the middle of a
		// run would only add noise.
		RescanInterval: time.Hour,
	})
	if err != nil {
		return err
	}
	e.SetFolders(map[string]string{benchFolder: n.root})
	ctx, cancel := context.WithCancel(context.Background())
	n.eng, n.cancel, n.done = e, cancel, make(chan error, 1)
	go func() { n.done <- e.Run(ctx) }()
	return nil
}

// stop stops n's engine and host.
func (n *engineNode) stop() error {
	var errs []error
	if n.cancel != nil {
		n.cancel()
		select {
		case err := <-n.done:
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", n.name, err))
			}
		case <-time.After(30 * time.Second):
			errs = append(errs, fmt.Errorf("%s: the sync engine did not stop", n.name))
		}
		n.cancel = nil
	}
	if n.closeHost != nil {
		errs = append(errs, n.closeHost())
		n.closeHost = nil
	}
	return errors.Join(errs...)
}

func (n *engineNode) status() (foldersync.FolderStatus, bool) {
	if n == nil || n.eng == nil {
		return foldersync.FolderStatus{}, false
	}
	return n.eng.Status(benchFolder)
}

func (d *engineDomain) Describe() string {
	return "in-process: server + agents alice and bob, each " + d.net.describe() + " running the folder sync engine (fixed Catalog view)"
}

func (d *engineDomain) Source() string { return d.alice.root }
func (d *engineDomain) Target() string { return d.bob.root }

func (d *engineDomain) SourceStatus() (foldersync.FolderStatus, bool) { return d.alice.status() }
func (d *engineDomain) TargetStatus() (foldersync.FolderStatus, bool) { return d.bob.status() }
func (d *engineDomain) ServerStatus() (foldersync.FolderStatus, bool) { return d.server.status() }

// HistoryBacklog: the engines alone keep no history.
func (d *engineDomain) HistoryBacklog() (int, bool) { return 0, false }

// Close stops the devices, then the server.
func (d *engineDomain) Close() error {
	var errs []error
	for i := len(d.nodes) - 1; i >= 0; i-- {
		errs = append(errs, d.nodes[i].stop())
	}
	return errors.Join(errs...)
}
