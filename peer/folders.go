package peer

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/peer/foldersync"
)

// Folder sync: the node runs a foldersync.Engine on its host. An agent
// syncs the folders it is told (Config.Folders, SetFolders); a server syncs
// every folder it hosts (collections.FolderHosts: it is the folder's home
// server or one of the replicas its Catalog record names), each in
// DataDir/folders/ID. When the hosting set changes, a server that joins it
// starts syncing the folder and one that leaves it stops, keeping its copy
// and history on disk. The
// engine reads the collections through folderView, a snapshot the driver
// rebuilds after updates are applied (and every viewRefresh, as device
// certificates come and go with time), so it never waits for the driver.

// viewRefresh bounds how stale the engine's view of the collections may get
// when nothing changes (certificates that become valid), and
// viewDebounce how soon after an applied update the view is rebuilt
// (the updates applied meanwhile go into the same rebuild).
const (
	viewRefresh  = 30 * time.Second
	viewDebounce = 200 * time.Millisecond
)

// folderRuntime is the node's folder sync, shared by the Node and its
// driver (through Config.folders, set by New).
type folderRuntime struct {
	mu     sync.Mutex
	engine *foldersync.Engine
	wanted map[string]string // an agent's folders: ID -> directory
	hosted map[string]string // a server's folders: ID -> directory
	// history is a server's store of its folders' versions while it
	// runs (history.go), archiver what writes to it; nil on agents.
	// historyMu guards them: read-held while the store is used, so that
	// it is closed only when unused.
	historyMu sync.RWMutex
	history   *folderstore.Store
	archiver  *archiver

	view  atomic.Pointer[folderView]
	dirty chan struct{} // an update was applied since the view was made (one slot)
}

func newFolderRuntime(wanted map[string]string) *folderRuntime {
	return &folderRuntime{wanted: maps.Clone(wanted), hosted: map[string]string{}, dirty: make(chan struct{}, 1)}
}

// markDirty says that an update was applied: the view is rebuilt within
// viewDebounce (refreshViews).
func (fr *folderRuntime) markDirty() {
	select {
	case fr.dirty <- struct{}{}:
	default: // already said
	}
}

// refreshViews calls refresh viewDebounce after each mark on dirty (the
// marks meanwhile go with it), and every refreshEvery when there is none,
// until ctx ends. It waits on nothing else: a folder at rest wakes it
// every refreshEvery only.
func refreshViews(ctx context.Context, dirty <-chan struct{}, debounce, refreshEvery time.Duration, refresh func()) {
	every := time.NewTimer(refreshEvery)
	defer every.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-every.C:
		case <-dirty:
			t := time.NewTimer(debounce)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			select { // the marks while it waited are covered by this refresh
			case <-dirty:
			default:
			}
		}
		refresh()
		every.Reset(refreshEvery)
	}
}

// access returns the current view for the engine.
func (fr *folderRuntime) access() foldersync.Access {
	if v := fr.view.Load(); v != nil {
		return v
	}
	return &folderView{now: time.Now}
}

// apply gives the engine the folders to sync, if it runs.
func (fr *folderRuntime) apply() {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.engine == nil {
		return
	}
	m := maps.Clone(fr.wanted)
	if m == nil {
		m = map[string]string{}
	}
	maps.Copy(m, fr.hosted)
	fr.engine.SetFolders(m)
}

// outsideSymlinks is the engine's OutsideSymlinks: a folder takes other
// hosts' symlinks pointing outside it if its Catalog record allows them
// (collections.FolderOptions) or local, the host's own choice, does.
func (fr *folderRuntime) outsideSymlinks(local func(string) bool) func(string) bool {
	return func(id string) bool {
		if local != nil && local(id) {
			return true
		}
		f, ok := fr.access().Folder(id)
		return ok && f.OutsideSymlinks
	}
}

// quota is the engine's Quota: user's quota in the Domain (0: none).
func (fr *folderRuntime) quota(user string) int64 {
	if v := fr.view.Load(); v != nil {
		return v.quotas[user]
	}
	return 0
}

func (fr *folderRuntime) running() *foldersync.Engine {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return fr.engine
}

// folderView is a snapshot of what folder sync needs of the collections.
type folderView struct {
	folders map[string]collections.Folder
	devices map[lpeer.ID]collections.DeviceCert // valid when the view was made
	servers map[lpeer.ID]bool
	chain   collections.Chain
	quotas  map[string]int64 // user -> quota in bytes, for the users that have one
	now     func() time.Time
}

func (v *folderView) Folder(id string) (collections.Folder, bool) {
	f, ok := v.folders[id]
	return f, ok
}

func (v *folderView) UserOf(p lpeer.ID) (string, bool) {
	c, ok := v.devices[p]
	if !ok || !c.Current(v.now()) {
		return "", false
	}
	return c.User, true
}

func (v *folderView) Server(p lpeer.ID) bool { return v.servers[p] }

func (v *folderView) Hosts(f collections.Folder) []lpeer.ID {
	return collections.FolderHosts(v.chain, f)
}

// refreshFolderView rebuilds the engine's view from the state and, on a
// server, the set of folders it hosts.
func (d *driver) refreshFolderView() {
	fr := d.cfg.folders
	now := d.cfg.Now()
	v := &folderView{folders: map[string]collections.Folder{}, devices: map[lpeer.ID]collections.DeviceCert{}, servers: map[lpeer.ID]bool{}, now: d.cfg.Now}
	for _, f := range d.state.Folders() {
		v.folders[f.ID] = f
	}
	v.quotas = map[string]int64{}
	for _, u := range d.state.Users() {
		if u.Quota > 0 {
			v.quotas[u.Name] = u.Quota
		}
	}
	for _, c := range d.state.ValidDevices(now) {
		v.devices[c.DeviceID()] = c
	}
	if d.auth != nil && d.auth.certInfo.Device != "" {
		// This agent's own certificate, before its Catalog record arrives.
		c := d.auth.certInfo
		if home, ok := d.state.HomeServer(c.User); ok && home == c.ServerID() && c.Current(now) {
			v.devices[c.DeviceID()] = c
		}
	}
	v.chain = d.state.Chain()
	for _, id := range v.chain.IDs() {
		v.servers[id] = true
	}
	fr.view.Store(v)

	if d.cfg.Role != identity.RoleServer {
		return
	}
	hosted := map[string]string{}
	for id, f := range v.folders {
		// The home server and the replicas sync the folder alike.
		if !slices.Contains(v.Hosts(f), d.self) {
			continue
		}
		dir := filepath.Join(d.cfg.DataDir, "folders", id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			d.log.Error("cannot make the directory of a hosted folder", "folder", id, "err", err)
			continue
		}
		hosted[id] = dir
	}
	fr.mu.Lock()
	before := fr.hosted
	same := maps.Equal(hosted, before)
	fr.hosted = hosted
	fr.mu.Unlock()
	if !same {
		d.logHosting(before, hosted)
		fr.apply()
	}
}

// logHosting says which folders this server started and stopped hosting
// (its hosting set in the Catalog changed, or the chain did). A folder it
// stops hosting keeps its copy and its history on disk.
func (d *driver) logHosting(before, after map[string]string) {
	for _, id := range slices.Sorted(maps.Keys(after)) {
		if _, ok := before[id]; !ok {
			d.log.Info("hosting folder", "folder", id, "dir", after[id])
		}
	}
	for _, id := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[id]; !ok {
			d.log.Info("no longer hosting folder: its copy and history stay on disk", "folder", id, "dir", before[id])
		}
	}
}

// startFolders makes the node's folder sync engine on h and runs it (and
// the refreshing of its view) on wg until ctx ends.
func (d *driver) startFolders(ctx context.Context, wg *sync.WaitGroup, h host.Host) error {
	fr := d.cfg.folders
	var archive func(folder, root string, ix foldersync.Published, by foldersync.Requester)
	engineDone := make(chan struct{})
	transfers := new(foldersync.Activity)
	if d.cfg.Role == identity.RoleServer {
		a, err := d.openHistory(ctx, wg, engineDone, transfers)
		if err != nil {
			close(engineDone)
			return err
		}
		archive = a.archive
	}
	e, err := foldersync.New(foldersync.Config{
		Transport: FolderTransport(h),
		Key:       d.cfg.Key,
		DataDir:   d.cfg.DataDir,
		Access:    fr.access,
		Logger:    d.log.With("part", "folders"),
		Now:       d.cfg.Now,

		OutsideSymlinks: fr.outsideSymlinks(d.cfg.OutsideSymlinks),
		WindowsNames:    d.cfg.WindowsNames,
		Quota:           fr.quota,
		Archive:         archive,
		Activity:        transfers,
	})
	if err != nil {
		close(engineDone)
		return fmt.Errorf("folder sync: %w", err)
	}
	user := d.cfg.OnApplied
	d.cfg.OnApplied = func(c collections.Certified) {
		fr.markDirty()
		if user != nil {
			user(c)
		}
	}
	fr.mu.Lock()
	fr.engine = e
	fr.mu.Unlock()
	d.refreshFolderView()
	fr.apply()

	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(engineDone)
		if err := e.Run(ctx); err != nil {
			d.log.Error("folder sync stopped", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		refreshViews(ctx, fr.dirty, viewDebounce, viewRefresh, func() {
			d.post(func(context.Context, *driver) { d.refreshFolderView() })
		})
	}()
	return nil
}

// SetFolders sets the folders this agent syncs: folder ID -> directory. It
// replaces the previous set (Config.Folders at first); folders left out
// stop syncing, their files stay. A server syncs the folders it hosts
// whatever it is told.
func (n *Node) SetFolders(_ context.Context, folders map[string]string) error {
	fr := n.cfg.folders
	fr.mu.Lock()
	fr.wanted = maps.Clone(folders)
	fr.mu.Unlock()
	fr.apply()
	return nil
}

// FolderStatus returns the sync state of a folder this host syncs.
func (n *Node) FolderStatus(_ context.Context, id string) (foldersync.FolderStatus, error) {
	e := n.cfg.folders.running()
	if e == nil {
		return foldersync.FolderStatus{}, ErrStopped
	}
	st, ok := e.Status(id)
	if !ok {
		return foldersync.FolderStatus{}, fmt.Errorf("%w: %s", foldersync.ErrUnknownFolder, id)
	}
	return st, nil
}

// FolderStatuses returns the sync state of every folder this host syncs,
// by folder ID.
func (n *Node) FolderStatuses(context.Context) (map[string]foldersync.FolderStatus, error) {
	e := n.cfg.folders.running()
	if e == nil {
		return nil, ErrStopped
	}
	return e.Statuses(), nil
}

// RevertFolder undoes this device's local changes to a folder it may only
// read, making it the server's copy again (changed local content is kept
// as conflict copies). It returns when done.
func (n *Node) RevertFolder(ctx context.Context, id string) error {
	e := n.cfg.folders.running()
	if e == nil {
		return ErrStopped
	}
	return e.Revert(ctx, id)
}

// RescanFolder asks for a full rescan of a folder soon. It is also how a
// user confirms that a folder stopped with foldersync.ErrEmptied (its
// directory found empty and without its marker file) was emptied on
// purpose: the rescan then deletes its files everywhere.
func (n *Node) RescanFolder(_ context.Context, id string) error {
	e := n.cfg.folders.running()
	if e == nil {
		return ErrStopped
	}
	return e.Rescan(id)
}
