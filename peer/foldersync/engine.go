package foldersync

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/syncfs"
)

// Errors callers branch on.
var (
	// ErrUnknownFolder: the folder is not one this host syncs (or the
	// engine is not running).
	ErrUnknownFolder = errors.New("folder not synced here")
	// ErrNotReadOnly: Revert is for read-only members, whose local changes
	// nobody accepts; a read-write member's changes go to the server.
	ErrNotReadOnly = errors.New("not a read-only member of the folder")
	// ErrQuota: the folder owner's quota is full; the hosting servers do
	// not take a device's changes that would add bytes.
	ErrQuota = errors.New("quota exceeded")
)

// Access is what the engine needs to know of the replicated collections.
// Its methods are called from many goroutines and must not block: the
// caller implements it over a snapshot of its state.
type Access interface {
	// Folder returns the Catalog's folder with id.
	Folder(id string) (collections.Folder, bool)
	// UserOf returns the user whose valid device p is.
	UserOf(p lpeer.ID) (user string, ok bool)
	// Server reports whether p is a server of the domain's chain.
	Server(p lpeer.ID) bool
	// Hosts lists the servers that host the folder f: its home server
	// (f.Server) first, then its replicas (collections.FolderHosts).
	Hosts(f collections.Folder) []lpeer.ID
}

// Config configures an Engine. Transport, Key, DataDir and Access are
// required.
type Config struct {
	// Transport is the network the engine serves and fetches on.
	Transport Transport
	// Key is the host's key: it signs this host's indexes. Its ID must be
	// the Transport's.
	Key *identity.PrivateKey
	// DataDir holds the engine's state (the index database).
	DataDir string
	// Access returns the current view of the collections. It is called
	// often and must return quickly (an atomic load of a snapshot).
	Access func() Access
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// RescanInterval is how often every folder is rescanned in full, as a
	// safety net under the watcher (default 1 min); a folder whose full
	// scan takes long is rescanned less often, so that rescans take at
	// most 0.1% of the time (1% if the folder is not watched), and at
	// least every hour.
	RescanInterval time.Duration
	// PullInterval is how often a device asks the hosting server and the
	// connected devices of writers for their index, and a server asks the
	// connected member devices for theirs, catching notifications that
	// were lost (default 10 s).
	PullInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Chunking sets the blocks (syncfs.DefaultChunking if zero). Every
	// host of a domain must use the same.
	Chunking syncfs.Chunking
	// Aggregator sets how watcher events are batched
	// (syncfs.DefaultAggregatorConfig if zero).
	Aggregator syncfs.AggregatorConfig
	// Fetches bounds the block requests in flight per folder (default 8).
	Fetches int
	// Prefetch bounds the bytes of blocks fetched ahead of the applier per
	// folder (default 64 MiB).
	Prefetch int64
	// StuckAfter is how many attempts in a row at applying one change
	// may fail before the folder says it is stuck (FolderStatus.Stuck;
	// default 5). Retries go on, at the longest wait.
	StuckAfter int
	// OutsideSymlinks reports whether the folder takes other hosts'
	// symlinks whose target is absolute or leaves the folder, for teams
	// that trust every member (syncfs.PlanOptions.OutsideSymlinks). By
	// default (nil, or false) they are not created and are listed in
	// FolderStatus.Skipped. It is called at every apply and must return
	// quickly.
	OutsideSymlinks func(folder string) bool
	// WindowsNames reports whether the folder keeps to the names Windows
	// can hold on a system that holds more (syncfs.NativeNameRules): other
	// hosts' entries with other names are neither created nor deleted
	// here, and are listed in FolderStatus.Skipped. On Windows the rules
	// always apply. It is called at every apply and must return quickly.
	WindowsNames func(folder string) bool

	// Quota, if set, returns user's quota in bytes (0: none). A server
	// hosting a folder (its home server or its replica) refuses a member
	// device's change that would take the owner's bytes (their folders'
	// current files, as this host holds them) past it, and says so to the
	// device; changes that add nothing are always taken. It is called at
	// every apply of a device's changes and must return quickly.
	Quota func(user string) int64

	// Archive, if set, is told on the folder's goroutine of every index
	// this host publishes for a folder: the folder, its directory, the
	// index (whose entries changed after the previous index's sequence are
	// the change; every entry at the first index of a session, which
	// begins when the folder starts), and who asked for the change when
	// this host made it on their behalf (a restore's Requester; zero
	// otherwise). A server keeps its hosted folders' history with it (see
	// archive.go). It must return quickly: it may keep the index and read
	// it later, on any goroutine.
	Archive func(folder, root string, ix Published, by Requester)
	// Activity, if set, is told of every block this engine sends or
	// receives (a server's history waits for transfers to be quiet).
	Activity *Activity

	// wrapFS, if set, wraps the disk a folder's applier writes through
	// (a test seam: failures of the file system, such as Windows'
	// sharing violations, on any system).
	wrapFS func(syncfs.WriteFS) syncfs.WriteFS
	// planWindow, if set, is the most entries of a peer's index one plan
	// takes (a test seam: planWindow by default).
	planWindow int
	// scopeNames, if set, is the most names a plan's scope or an index's
	// delta notes (a test seam: maxScopeNames by default).
	scopeNames int
	// localWhole, if set, is the most entries a folder's Local holds in
	// memory whole (a test seam: syncfs.DefaultLocalWhole by default).
	localWhole int
	// stagedWindow, if set, is the most entries of a peer's index delta
	// held in memory until verified (a test seam: stagedInMemory by
	// default).
	stagedWindow int
}

func (c *Config) setDefaults() {
	if c.planWindow <= 0 {
		c.planWindow = planWindow
	}
	if c.scopeNames <= 0 {
		c.scopeNames = maxScopeNames
	}
	if c.localWhole <= 0 {
		c.localWhole = syncfs.DefaultLocalWhole
	}
	if c.stagedWindow <= 0 {
		c.stagedWindow = stagedInMemory
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RescanInterval <= 0 {
		c.RescanInterval = time.Minute
	}
	if c.PullInterval <= 0 {
		c.PullInterval = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Chunking == (syncfs.Chunking{}) {
		c.Chunking = syncfs.DefaultChunking
	}
	if c.Aggregator == (syncfs.AggregatorConfig{}) {
		c.Aggregator = syncfs.DefaultAggregatorConfig
	}
	if c.Fetches <= 0 {
		c.Fetches = 8
	}
	if c.Prefetch <= 0 {
		c.Prefetch = 64 << 20
	}
	if c.StuckAfter <= 0 {
		c.StuckAfter = 5
	}
}

// Validate checks the required fields.
func (c *Config) Validate() error {
	switch {
	case c.Transport == nil:
		return errors.New("folder sync config: no transport")
	case c.Key == nil:
		return errors.New("folder sync config: no host key")
	case c.Key.ID() != c.Transport.ID():
		return fmt.Errorf("folder sync config: key %s is not the host's (%s)", c.Key.ID(), c.Transport.ID())
	case c.DataDir == "":
		return errors.New("folder sync config: no data directory")
	case c.Access == nil:
		return errors.New("folder sync config: no access view")
	}
	if err := c.Chunking.Validate(); err != nil {
		return fmt.Errorf("folder sync config: %w", err)
	}
	if err := c.Aggregator.Validate(); err != nil {
		return fmt.Errorf("folder sync config: %w", err)
	}
	return nil
}

// Engine syncs this host's folders with their hosting servers and the
// other member devices (on an agent) or with the member devices (on the
// hosting server). New builds it
// and starts nothing; Run serves the protocols and runs one goroutine per
// folder until its context ends.
type Engine struct {
	cfg     Config
	self    lpeer.ID
	log     *slog.Logger
	running atomic.Bool
	db      *syncfs.DB        // set by Run
	peers   *syncfs.PeerStore // set by Run: the entries of the peers' indexes
	pages   string            // set by Run: the cache directory of signed index pages
	chunks  *chunkStore       // set by Run: the entries of large published indexes
	peerKey atomic.Uint64     // the last key drawn for an index in peers

	mu      sync.Mutex
	want    map[string]string  // folder ID -> root, as SetFolders said
	folders map[string]*folder // running folders
	changed chan struct{}      // SetFolders was called
}

// New checks cfg and returns an engine. It does no I/O.
func New(cfg Config) (*Engine, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Engine{
		cfg:     cfg,
		self:    cfg.Transport.ID(),
		log:     cfg.Logger,
		want:    map[string]string{},
		folders: map[string]*folder{},
		changed: make(chan struct{}, 1),
	}, nil
}

// SetFolders sets the folders this host syncs: folder ID -> the folder's
// directory. Folders no longer listed stop (their files stay); new ones
// start. It may be called before or while Run runs.
func (e *Engine) SetFolders(folders map[string]string) {
	m := make(map[string]string, len(folders))
	for id, root := range folders {
		if abs, err := filepath.Abs(root); err == nil {
			root = abs
		}
		m[id] = root
	}
	e.mu.Lock()
	same := maps.Equal(m, e.want)
	e.want = m
	e.mu.Unlock()
	if !same {
		select {
		case e.changed <- struct{}{}:
		default:
		}
	}
}

// Status returns the state of a folder this host syncs.
func (e *Engine) Status(id string) (FolderStatus, bool) {
	f := e.folder(id)
	if f == nil {
		return FolderStatus{}, false
	}
	return f.status(), true
}

// Statuses returns the state of every folder this host syncs, by ID.
func (e *Engine) Statuses() map[string]FolderStatus {
	e.mu.Lock()
	fs := make([]*folder, 0, len(e.folders))
	for _, f := range e.folders {
		fs = append(fs, f)
	}
	e.mu.Unlock()
	out := make(map[string]FolderStatus, len(fs))
	for _, f := range fs {
		out[f.id] = f.status()
	}
	return out
}

// Rescan asks for a full rescan of a folder soon. It is also how a user
// says that a folder whose directory was found emptied (ErrEmptied) was
// emptied on purpose: that rescan takes its files for deleted.
func (e *Engine) Rescan(id string) error {
	f := e.folder(id)
	if f == nil {
		return fmt.Errorf("%w: %s", ErrUnknownFolder, id)
	}
	f.mu.Lock()
	f.acceptEmpty = true
	f.mu.Unlock()
	f.requestRescan()
	return nil
}

// Revert makes a folder of which this host is a read-only member equal to
// the hosting server's copy, undoing the local changes nobody accepted.
// Nothing is deleted that the server does not have: local content that
// differs from the server's, or that the server does not have, is kept
// beside it as a conflict copy. It returns when done.
func (e *Engine) Revert(ctx context.Context, id string) error {
	f := e.folder(id)
	if f == nil {
		return fmt.Errorf("%w: %s", ErrUnknownFolder, id)
	}
	errc := make(chan error, 1)
	select {
	case f.ctl <- func(ctx context.Context) { errc <- f.revert(ctx) }:
	case <-f.done:
		return fmt.Errorf("%w: %s", ErrUnknownFolder, id)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Engine) folder(id string) *folder {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.folders[id]
}

// Run serves the folder protocols and syncs the folders until ctx ends. It
// returns after every goroutine it started has exited.
func (e *Engine) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("folder sync: Run called twice")
	}
	db, err := syncfs.OpenDB(filepath.Join(e.cfg.DataDir, "folders.db"))
	if err != nil {
		return err
	}
	e.db = db
	defer db.Close()
	ps, err := syncfs.OpenPeerStore(filepath.Join(e.cfg.DataDir, "peers.db"))
	if err != nil {
		return err
	}
	e.peers = ps
	defer ps.Close()
	cs, err := openChunkStore(filepath.Join(e.cfg.DataDir, "pubchunks.db"), e.log)
	if err != nil {
		return err
	}
	e.chunks = cs
	defer cs.Close()
	if e.pages, err = resetPagesDir(e.cfg.DataDir); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tr := e.cfg.Transport
	tr.SetHandler(ProtoIndex, e.handleIndex)
	tr.SetHandler(ProtoBlock, e.handleBlock)
	tr.SetHandler(ProtoNotify, e.handleNotify)
	defer func() {
		tr.SetHandler(ProtoIndex, nil)
		tr.SetHandler(ProtoBlock, nil)
		tr.SetHandler(ProtoNotify, nil)
	}()

	connected, stopConnected, err := tr.Connected()
	if err != nil {
		return fmt.Errorf("subscribing to connection events: %w", err)
	}
	defer stopConnected()

	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		e.mu.Lock()
		clear(e.folders)
		e.mu.Unlock()
	}()
	e.reconcile(ctx, &wg)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.changed:
			e.reconcile(ctx, &wg)
		case p, ok := <-connected:
			if !ok {
				return nil
			}
			e.mu.Lock()
			for _, f := range e.folders {
				f.notify(p)
			}
			e.mu.Unlock()
		}
	}
}

// reconcile starts the folders wanted and not running, and stops those
// running and no longer wanted (or whose directory changed).
func (e *Engine) reconcile(ctx context.Context, wg *sync.WaitGroup) {
	e.mu.Lock()
	want := maps.Clone(e.want)
	var stop []*folder
	for id, f := range e.folders {
		if root, ok := want[id]; !ok || root != f.root {
			stop = append(stop, f)
			delete(e.folders, id)
		}
	}
	e.mu.Unlock()
	for _, f := range stop {
		f.cancel()
		<-f.done
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, root := range want {
		if _, ok := e.folders[id]; ok {
			continue
		}
		f := newFolder(e, id, root)
		fctx, cancel := context.WithCancel(ctx)
		f.cancel = cancel
		e.folders[id] = f
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(f.done)
			f.run(fctx)
		}()
	}
}

// access returns the current view of the collections.
func (e *Engine) access() Access { return e.cfg.Access() }

// peerRole is what a peer is to a folder.
type peerRole int

const (
	roleNone   peerRole = iota // a stranger: nothing
	roleReader                 // a read-only member's device
	roleWriter                 // an owner's or read-write member's device
	roleServer                 // a server hosting the folder (home or replica)
)

func (r peerRole) String() string {
	switch r {
	case roleReader:
		return "ro"
	case roleWriter:
		return "rw"
	case roleServer:
		return "server"
	}
	return "none"
}

// roleOf says what p is to the folder f, as a seeing now.
func roleOf(a Access, f collections.Folder, p lpeer.ID) peerRole {
	if slices.Contains(a.Hosts(f), p) {
		if a.Server(p) {
			return roleServer
		}
		return roleNone
	}
	user, ok := a.UserOf(p)
	if !ok {
		return roleNone
	}
	switch f.Members[user] {
	case collections.RightOwner, collections.RightReadWrite:
		return roleWriter
	case collections.RightReadOnly:
		return roleReader
	}
	return roleNone
}

// peerRoleIn says what p is to the folder id now (roleNone for a folder
// the Catalog does not hold).
func (e *Engine) peerRoleIn(id string, p lpeer.ID) peerRole {
	a := e.access()
	f, ok := a.Folder(id)
	if !ok {
		return roleNone
	}
	return roleOf(a, f, p)
}

// newSession returns a random non-zero session number.
func newSession() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		if s := binary.LittleEndian.Uint64(b[:]); s != 0 {
			return s
		}
	}
}
