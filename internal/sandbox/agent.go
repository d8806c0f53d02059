package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
)

// Agent is a desktop agent of the sandbox: a device that logged in as User
// and runs with the certificate its home server issued. Its data and its
// synced folders are in a directory of its own.
type Agent struct {
	Name string // the device's name, e.g. "alice-laptop"
	User string
	Key  *identity.PrivateKey
	// LoginServer is the server the agent logged in at; HomeServer the
	// user's home server, which issued the certificate (the login was
	// redirected there if the two differ). Both are server names.
	LoginServer, HomeServer string
	// DataDir is the node's data; FoldersDir holds the synced folders, one
	// directory per folder, named as the folder.
	DataDir, FoldersDir string

	sb   *Sandbox
	proc Proc

	mu      sync.Mutex
	cert    []byte
	folders map[string]string // folder ID -> directory
}

// ID is the agent's peer ID (its device ID).
func (a *Agent) ID() lpeer.ID { return a.Key.ID() }

// Node is the agent's running node, or nil once the sandbox is closed.
func (a *Agent) Node() *peer.Node { return a.proc.Node() }

// Cert is the agent's current device certificate (renewals replace it).
func (a *Agent) Cert() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cert
}

// AddAgent makes a desktop agent named name with a fresh key, logs it in
// as user with password at the first running server of the chain (which
// redirects it to the user's home server if that is another one), starts
// its node with the device certificate and the genesis it got, and waits
// until its copy of the Catalog accepts it as user's device.
func (sb *Sandbox) AddAgent(ctx context.Context, name, user, password string) (*Agent, error) {
	a, at, err := sb.newAgent(name, user)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, loginTimeout)
	res, err := peer.Login(lctx, a.Key, at.PublicP2P(), user, []byte(password), name)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("logging %s in as %s at %s: %w", name, user, at.Name, err)
	}
	g, err := collections.OpenGenesis(res.Genesis)
	if err != nil {
		return nil, fmt.Errorf("%s: the genesis from the login: %w", name, err)
	}
	if g.Hash() != sb.genesis.Hash() {
		return nil, fmt.Errorf("%s: the login gave the genesis of another domain", name)
	}
	a.HomeServer = sb.ServerName(res.HomeServer.String())
	a.cert = res.Cert

	cfg := peer.Config{
		Key: a.Key, Name: name, Role: identity.RoleAgent, Genesis: g, DataDir: a.DataDir,
		Listen:     []string{"/ip4/127.0.0.1/tcp/0"},
		DeviceCert: res.Cert,
		OnDeviceCert: func(cert []byte) {
			a.mu.Lock()
			a.cert = cert
			a.mu.Unlock()
		},
	}
	if err := sb.startNode(ctx, &a.proc, cfg); err != nil {
		return nil, err
	}
	if err := a.waitAccepted(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// newAgent adds the agent name of user, with its directories and key,
// and returns it with the server it logs in at: the first running one.
func (sb *Sandbox) newAgent(name, user string) (*Agent, *Host, error) {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") || slices.ContainsFunc(sb.hosts, func(h *Host) bool { return h.Name == name }) {
		return nil, nil, fmt.Errorf("agent name %q: want a plain name, not a host's", name)
	}
	if sb.isClosed() {
		return nil, nil, ErrClosed
	}
	running := sb.Running()
	if len(running) == 0 {
		return nil, nil, errors.New("no server is running to log in at")
	}
	at := sb.hosts[running[0]]
	dir := filepath.Join(sb.root, name)
	a := &Agent{
		Name: name, User: user, LoginServer: at.Name,
		DataDir: filepath.Join(dir, "data"), FoldersDir: filepath.Join(dir, "folders"),
		sb: sb, folders: map[string]string{},
	}
	sb.mu.Lock()
	switch {
	case sb.closed:
		sb.mu.Unlock()
		return nil, nil, ErrClosed
	case sb.agentLocked(name) != nil:
		sb.mu.Unlock()
		return nil, nil, fmt.Errorf("there is already an agent named %s", name)
	}
	sb.agents = append(sb.agents, a) // Close stops it, whatever happens next
	sb.mu.Unlock()

	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, nil, err
	}
	for _, d := range []string{a.DataDir, a.FoldersDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, nil, err
		}
	}
	key, err := sb.key(name)
	if err != nil {
		return nil, nil, err
	}
	a.Key = key
	return a, at, nil
}

// waitAccepted waits until a's copy of the Catalog accepts it as its
// user's device.
func (a *Agent) waitAccepted(ctx context.Context) error {
	return Wait(ctx, a.Name+" to be accepted as "+a.User+"'s device", acceptTimeout, func() (bool, error) {
		n := a.Node()
		if n == nil {
			return false, ErrClosed
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		st, ok, err := n.DeviceStatus(cctx)
		if err != nil {
			return false, nil
		}
		return ok && st.Accepted, nil
	})
}

// agentLocked returns the agent named name, or nil; sb.mu is held.
func (sb *Sandbox) agentLocked(name string) *Agent {
	for _, a := range sb.agents {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Agents returns the agents, in the order they were added.
func (sb *Sandbox) Agents() []*Agent {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return append([]*Agent(nil), sb.agents...)
}

// running returns the agent's node or an error saying it is not running.
func (a *Agent) running() (*peer.Node, error) {
	if n := a.Node(); n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("%s is not running", a.Name)
}

// State returns a copy of the agent's collections.
func (a *Agent) State(ctx context.Context) (*collections.State, error) {
	n, err := a.running()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return n.State(ctx)
}

// Folders returns the folders the agent syncs: folder ID -> directory.
func (a *Agent) Folders() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.folders)
}

// syncFolder adds folder id, synced in dir, to what the agent's engine
// syncs.
func (a *Agent) syncFolder(ctx context.Context, id, dir string) error {
	n, err := a.running()
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.folders[id] = dir
	m := maps.Clone(a.folders)
	a.mu.Unlock()
	return n.SetFolders(ctx, m)
}

// CreateFolder creates a folder named name, owned by the agent's user and
// hosted on their home server, makes its directory in FoldersDir and starts
// syncing it. It returns the folder's ID and directory once the master
// certified it.
func (a *Agent) CreateFolder(ctx context.Context, name string) (id, dir string, err error) {
	n, err := a.running()
	if err != nil {
		return "", "", err
	}
	dir, err = a.folderDir(name)
	if err != nil {
		return "", "", err
	}
	cctx, cancel := context.WithTimeout(ctx, submitTimeout)
	f, err := n.CreateFolder(cctx, name)
	cancel()
	if err != nil {
		return "", "", fmt.Errorf("%s: creating folder %s: %w", a.Name, name, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", "", err
	}
	if err := a.syncFolder(ctx, f.ID, dir); err != nil {
		return "", "", fmt.Errorf("%s: syncing folder %s: %w", a.Name, name, err)
	}
	return f.ID, dir, nil
}

// folderDir is where a folder named name is synced on this agent; it must
// not exist yet.
func (a *Agent) folderDir(name string) (string, error) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return "", fmt.Errorf("folder name %q cannot be a directory name", name)
	}
	dir := filepath.Join(a.FoldersDir, name)
	if _, err := os.Lstat(dir); err == nil {
		return "", fmt.Errorf("%s: %s exists already", a.Name, dir)
	}
	return dir, nil
}

// Share gives user right (collections.RightReadOnly or RightReadWrite) in
// folder id, which the agent's user owns, and returns once the master
// certified it.
func (a *Agent) Share(ctx context.Context, id, user string, right collections.Right) error {
	n, err := a.running()
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, submitTimeout)
	defer cancel()
	if err := n.ShareFolder(cctx, id, user, right); err != nil {
		return fmt.Errorf("%s: sharing folder %s with %s: %w", a.Name, id, user, err)
	}
	return nil
}

// Accept waits until the agent's copy of the Catalog shows folder id shared
// with its user, then makes the folder's directory in FoldersDir (named as
// the folder) and starts syncing it. It returns the directory.
func (a *Agent) Accept(ctx context.Context, id string) (string, error) {
	var f collections.Folder
	err := Wait(ctx, fmt.Sprintf("%s to see folder %s shared with %s", a.Name, id, a.User), acceptTimeout, func() (bool, error) {
		st, err := a.State(ctx)
		if err != nil {
			return false, err
		}
		var ok bool
		f, ok = st.Folder(id)
		return ok && f.Members[a.User] != "", nil
	})
	if err != nil {
		return "", err
	}
	dir, err := a.folderDir(f.Name)
	if err != nil {
		return "", err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	if err := a.syncFolder(ctx, id, dir); err != nil {
		return "", fmt.Errorf("%s: syncing folder %s: %w", a.Name, f.Name, err)
	}
	return dir, nil
}

// FolderStatus returns the sync state of folder id on the agent.
func (a *Agent) FolderStatus(ctx context.Context, id string) (foldersync.FolderStatus, error) {
	n, err := a.running()
	if err != nil {
		return foldersync.FolderStatus{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return n.FolderStatus(ctx, id)
}

// WaitInSync waits until folder id is in sync on the agent: the hosting
// server's index is known, everything in it is here and nothing more is
// needed (and, on a read-write member, the server has every local change).
func (a *Agent) WaitInSync(ctx context.Context, id string) error {
	return a.WaitFolder(ctx, id, "in sync", func(st foldersync.FolderStatus) bool {
		return st.InSync && st.NeedFiles == 0 && st.NeedBytes == 0
	})
}

// WaitFolder waits until cond holds for the status of folder id on the
// agent; what describes the wait in the error.
func (a *Agent) WaitFolder(ctx context.Context, id, what string, cond func(foldersync.FolderStatus) bool) error {
	return Wait(ctx, fmt.Sprintf("folder %s to be %s on %s", id, what, a.Name), syncTimeout, func() (bool, error) {
		st, err := a.FolderStatus(ctx, id)
		if err != nil {
			if a.Node() == nil {
				return false, err
			}
			return false, nil // not started yet
		}
		return cond(st), nil
	})
}

// WaitFile waits until the file at path holds want.
func WaitFile(ctx context.Context, path string, want []byte) error {
	return Wait(ctx, path+" to arrive", syncTimeout, func() (bool, error) {
		got, err := os.ReadFile(path)
		return err == nil && bytes.Equal(got, want), nil
	})
}
