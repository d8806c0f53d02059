package control

// The control API's user, device and agent folder endpoints.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer"
)

// Wire types. The field names are stable: scripts read them with --json.
type (
	SetPasswordRequest struct {
		Password []byte `json:"password"`
	}
	// OKResult answers a change that is not a Catalog or Domain update
	// of this host's (or whose certification the daemon already checked).
	OKResult struct {
		Done string `json:"done"`
	}

	// AgentDevice is an agent's device and its login: the certificate
	// 'baton login' got from the user's home server, renewed while the
	// daemon runs.
	AgentDevice struct {
		// LoggedIn: the agent has a device certificate; the other
		// fields are empty without one.
		LoggedIn       bool      `json:"logged_in"`
		User           string    `json:"user,omitempty"`
		Device         string    `json:"device,omitempty"` // its peer ID
		Name           string    `json:"name,omitempty"`
		HomeServer     string    `json:"home_server,omitempty"`
		HomeServerName string    `json:"home_server_name,omitempty"`
		Issued         time.Time `json:"issued,omitzero"`
		Expires        time.Time `json:"expires,omitzero"`
		RenewAt        time.Time `json:"renew_at,omitzero"`
		// Accepted: this agent's copy of the Catalog holds the device as
		// valid (not revoked).
		Accepted bool `json:"accepted"`
		// Expired: the certificate expired (at the daemon's clock): the
		// device logs in again with 'baton login'.
		Expired bool `json:"expired"`
	}

	// AgentFolder is a folder this agent's user may sync.
	AgentFolder struct {
		ID         string   `json:"id"`
		Name       string   `json:"name"`
		Owner      string   `json:"owner"`
		Server     string   `json:"server"`
		ServerName string   `json:"server_name"`
		Right      string   `json:"right"` // the user's: owner, rw or ro
		Members    []Member `json:"members"`
		Path       string   `json:"path"` // where it is synced here; "" if not
		// OutsideSymlinks: the folder option (members' symlinks pointing
		// outside it are created).
		OutsideSymlinks bool `json:"outside_symlinks,omitempty"`
		// Keep: the folder's retention policy of its history ("" the
		// default).
		Keep string `json:"keep,omitempty"`
		// Hosts: the servers hosting it, the home server first, then its
		// replicas; Replicas: the folder option (Folder's).
		Hosts    []string `json:"hosts"`
		Replicas int      `json:"replicas"`
	}
	AgentCreateRequest struct {
		Name            string `json:"name"`
		Path            string `json:"path"`                       // absolute
		OutsideSymlinks bool   `json:"outside_symlinks,omitempty"` // the folder option
		Keep            string `json:"keep,omitempty"`             // the retention policy; "" the default
		Replicas        *int   `json:"replicas,omitempty"`         // servers beside the home server; nil the default
	}
	// AgentOptionsRequest sets the options given; one left out (null, "")
	// stays as it is.
	AgentOptionsRequest struct {
		Folder          string `json:"folder"` // ID, name or OWNER/NAME
		OutsideSymlinks *bool  `json:"outside_symlinks,omitempty"`
		Keep            string `json:"keep,omitempty"` // a retention policy, or "default"
		Replicas        *int   `json:"replicas,omitempty"`
	}
	AgentShareRequest struct {
		Folder string `json:"folder"` // ID, name or OWNER/NAME
		User   string `json:"user"`
		Rights string `json:"rights"` // ro or rw (share)
	}
	AgentAcceptRequest struct {
		Folder string `json:"folder"`
		Path   string `json:"path"` // absolute
		// OutsideSymlinks: take other hosts' symlinks whose target is
		// absolute or leaves the folder.
		OutsideSymlinks bool `json:"outside_symlinks,omitempty"`
		// WindowsNames: keep to the names Windows can hold.
		WindowsNames bool `json:"windows_names,omitempty"`
	}
	AgentFolderRequest struct {
		Folder string `json:"folder"`
	}
	// AgentResult answers an agent folder change.
	AgentResult struct {
		Done   string      `json:"done"`
		Queued bool        `json:"queued"` // the hosting server waits for the master
		Folder AgentFolder `json:"folder"`
		// Warning: the change is made but syncing it here is not (the
		// sync engine refused the set of folders).
		Warning string `json:"warning,omitempty"`
	}
)

func (s *Server) setPassword(ctx context.Context, req passwordChange) (OKResult, error) {
	defer clear(req.Password)
	name := req.user
	if len(req.Password) == 0 || len(req.Password) > peer.MaxPasswordSize {
		return OKResult{}, errInvalid("a password must be 1 to %d bytes", peer.MaxPasswordSize)
	}
	if err := s.d.SetPassword(ctx, name, req.Password); err != nil {
		return OKResult{}, err
	}
	return OKResult{Done: fmt.Sprintf("password of %s set", name)}, nil
}

func (s *Server) listDevices(ctx context.Context, user string) ([]peer.DeviceInfo, error) {
	ds, err := s.d.Devices(ctx, user)
	if err != nil {
		return nil, err
	}
	if ds == nil {
		ds = []peer.DeviceInfo{}
	}
	slices.SortStableFunc(ds, func(a, b peer.DeviceInfo) int {
		if c := strings.Compare(a.User, b.User); c != 0 {
			return c
		}
		return a.Issued.Compare(b.Issued)
	})
	return ds, nil
}

func (s *Server) revokeDevice(ctx context.Context, ref string) (MutationResult, error) {
	id, err := lpeer.Decode(ref)
	if err != nil {
		return MutationResult{}, errInvalid("device %q: want a peer ID (see 'baton device list')", ref)
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultWait)
	defer cancel()
	rcpt, err := s.d.RevokeDevice(ctx, id)
	if err != nil {
		if errors.Is(err, peer.ErrNoSuchDevice) {
			return MutationResult{}, errNotFound("%v", err)
		}
		return MutationResult{}, err
	}
	done := fmt.Sprintf("device %s revoked", id)
	if rcpt.Queued || rcpt.Certified.IsZero() {
		return MutationResult{Done: done, Queued: true}, nil
	}
	return MutationResult{Done: done, Epoch: rcpt.Certified.Epoch(), Seq: rcpt.Certified.MasterSeq()}, nil
}

// --- agent folders ---

// agentView is what the agent folder endpoints read: the state, the
// logged-in user and the folders synced here.
type agentView struct {
	st    *collections.State
	user  string
	local []LocalFolder
}

func (s *Server) agentView(ctx context.Context) (agentView, error) {
	if s.home == "" {
		return agentView{}, errConflict("this host is a server: agent folder commands are for desktop agents")
	}
	ds, ok, err := s.d.DeviceStatus(ctx)
	if err != nil {
		return agentView{}, err
	}
	if !ok {
		return agentView{}, peer.ErrNotLoggedIn
	}
	st, err := s.d.State(ctx)
	if err != nil {
		return agentView{}, err
	}
	local, err := newLocalFolders(s.home).load()
	if err != nil {
		return agentView{}, err
	}
	return agentView{st: st, user: ds.User, local: local}, nil
}

// agentDevice is GET /v1/agent/device.
func (s *Server) agentDevice(ctx context.Context, _ struct{}) (AgentDevice, error) {
	if s.home == "" {
		return AgentDevice{}, errConflict("this host is a server: it has no device login")
	}
	ds, ok, err := s.d.DeviceStatus(ctx)
	if err != nil || !ok {
		return AgentDevice{}, err
	}
	out := AgentDevice{LoggedIn: true, User: ds.User, Device: ds.Device, Name: ds.Name, HomeServer: ds.HomeServer,
		Issued: ds.Issued.UTC(), Expires: ds.Expires.UTC(), RenewAt: ds.RenewAt.UTC(), Accepted: ds.Accepted}
	if st, err := s.d.State(ctx); err == nil {
		out.HomeServerName = hostName(st, ds.HomeServer)
	}
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	out.Expired = !now().Before(ds.Expires)
	return out, nil
}

func (v agentView) toJSON(f collections.Folder) AgentFolder {
	fj := folderToJSON(v.st, f)
	out := AgentFolder{ID: f.ID, Name: f.Name, Owner: f.Owner, Server: f.Server, ServerName: fj.ServerName,
		Right: string(f.Members[v.user]), Members: fj.Members, OutsideSymlinks: f.OutsideSymlinks, Keep: f.Keep,
		Hosts: fj.Hosts, Replicas: fj.Replicas}
	for _, l := range v.local {
		if l.ID == f.ID {
			out.Path = l.Path
		}
	}
	return out
}

// mine is every folder the user is a member of: their own first, then by
// owner and name.
func (v agentView) mine() []collections.Folder {
	var out []collections.Folder
	for _, f := range v.st.Folders() {
		if _, ok := f.Members[v.user]; ok {
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b collections.Folder) int {
		if (a.Owner == v.user) != (b.Owner == v.user) {
			if a.Owner == v.user {
				return -1
			}
			return 1
		}
		if c := strings.Compare(a.Owner, b.Owner); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// resolve finds a folder the user is a member of by ID, name or
// OWNER/NAME. A name that several folders have picks the user's own if
// there is exactly one.
func (v agentView) resolve(ref string) (collections.Folder, error) {
	var byName, own []collections.Folder
	for _, f := range v.mine() {
		if f.ID == ref || f.Owner+"/"+f.Name == ref {
			return f, nil
		}
		if f.Name == ref {
			byName = append(byName, f)
			if f.Owner == v.user {
				own = append(own, f)
			}
		}
	}
	switch {
	case len(byName) == 1:
		return byName[0], nil
	case len(own) == 1:
		return own[0], nil
	case len(byName) > 1:
		refs := make([]string, len(byName))
		for i, f := range byName {
			refs[i] = f.Owner + "/" + f.Name
		}
		return collections.Folder{}, errConflict("%d folders are named %s (%s): give OWNER/NAME or the ID", len(byName), ref, strings.Join(refs, ", "))
	}
	// Known but not shared with this user?
	for _, f := range v.st.Folders() {
		if f.ID == ref {
			return collections.Folder{}, errNotFound("folder %s (%s) is not shared with %s", f.Name, f.ID, v.user)
		}
	}
	return collections.Folder{}, errNotFound("no folder %s shared with %s (see 'baton folder list')", ref, v.user)
}

func (s *Server) agentFolders(ctx context.Context, _ struct{}) ([]AgentFolder, error) {
	v, err := s.agentView(ctx)
	if err != nil {
		return nil, err
	}
	out := []AgentFolder{}
	for _, f := range v.mine() {
		out = append(out, v.toJSON(f))
	}
	return out, nil
}

// agentChange runs a folder change against the hosting server within the
// mutation's deadline; ErrQueued is not an error.
func agentChange(err error) (queued bool, _ error) {
	if errors.Is(err, peer.ErrQueued) {
		return true, nil
	}
	return false, err
}

// syncFolders changes folders.toml with change and gives the engine the
// result. The file is changed even when the engine refuses the set; the
// warning says so.
func (s *Server) syncFolders(ctx context.Context, change func([]LocalFolder) ([]LocalFolder, error)) (warning string, err error) {
	s.foldersMu.Lock()
	defer s.foldersMu.Unlock()
	list, err := newLocalFolders(s.home).update(change)
	if err != nil {
		return "", err
	}
	if s.symlinks != nil {
		s.symlinks.Set(list)
	}
	if err := s.d.SetFolders(ctx, SyncMap(list)); err != nil {
		return fmt.Sprintf("the folder is recorded, but the sync engine refused it: %v", err), nil
	}
	return "", nil
}

func (s *Server) agentCreate(ctx context.Context, req AgentCreateRequest) (AgentResult, error) {
	v, err := s.agentView(ctx)
	if err != nil {
		return AgentResult{}, err
	}
	if strings.TrimSpace(req.Name) == "" {
		return AgentResult{}, errInvalid("the folder name is empty")
	}
	path := filepath.Clean(req.Path)
	if err := checkFolderPath(path, "", s.home, v.local); err != nil {
		return AgentResult{}, err
	}
	for _, f := range v.mine() {
		if f.Owner == v.user && f.Name == req.Name {
			return AgentResult{}, errConflict("%s already has a folder named %s (%s)", v.user, f.Name, f.ID)
		}
	}
	p, err := peer.ParseOptions(&req.OutsideSymlinks, req.Keep, req.Replicas)
	if err != nil {
		return AgentResult{}, errInvalid("%v", err)
	}
	f, err := s.d.CreateFolderWith(ctx, req.Name, p)
	queued, err := agentChange(err)
	if err != nil {
		return AgentResult{}, err
	}
	warning, err := s.syncFolders(ctx, func(list []LocalFolder) ([]LocalFolder, error) {
		if err := checkFolderPath(path, f.ID, s.home, list); err != nil {
			return nil, err
		}
		return append(list, LocalFolder{ID: f.ID, Name: f.Name, Owner: f.Owner, Path: path}), nil
	})
	if err != nil {
		return AgentResult{}, fmt.Errorf("folder %s (%s) was created, but recording it failed: %w; run 'baton folder accept %s PATH'", f.Name, f.ID, err, f.ID)
	}
	v.local = append(v.local, LocalFolder{ID: f.ID, Path: path})
	return AgentResult{Done: fmt.Sprintf("folder %s (%s) created, synced at %s%s", f.Name, f.ID, path, noteText(p.CappedNote(f))), Queued: queued,
		Folder: v.toJSON(f), Warning: warning}, nil
}

func (s *Server) agentShare(ctx context.Context, req AgentShareRequest) (AgentResult, error) {
	return s.agentShareOrNot(ctx, req, true)
}

func (s *Server) agentUnshare(ctx context.Context, req AgentShareRequest) (AgentResult, error) {
	return s.agentShareOrNot(ctx, req, false)
}

func (s *Server) agentShareOrNot(ctx context.Context, req AgentShareRequest, share bool) (AgentResult, error) {
	right := collections.Right(req.Rights)
	if share && right != collections.RightReadOnly && right != collections.RightReadWrite {
		return AgentResult{}, errInvalid("rights %q: want ro or rw", req.Rights)
	}
	if err := identity.ValidateName(req.User); err != nil {
		return AgentResult{}, errInvalid("user name: %v", err)
	}
	v, err := s.agentView(ctx)
	if err != nil {
		return AgentResult{}, err
	}
	f, err := v.resolve(req.Folder)
	if err != nil {
		return AgentResult{}, err
	}
	var done string
	if share {
		err = s.d.ShareFolder(ctx, f.ID, req.User, right)
		done = fmt.Sprintf("folder %s (%s) shared with %s (%s)", f.Name, f.ID, req.User, right)
	} else {
		err = s.d.UnshareFolder(ctx, f.ID, req.User)
		done = fmt.Sprintf("folder %s (%s) no longer shared with %s", f.Name, f.ID, req.User)
	}
	queued, err := agentChange(err)
	if err != nil {
		return AgentResult{}, err
	}
	return s.agentAfter(ctx, f.ID, done, queued)
}

func (s *Server) agentSetOptions(ctx context.Context, req AgentOptionsRequest) (AgentResult, error) {
	v, err := s.agentView(ctx)
	if err != nil {
		return AgentResult{}, err
	}
	f, err := v.resolve(req.Folder)
	if err != nil {
		return AgentResult{}, err
	}
	p, err := peer.ParseOptions(req.OutsideSymlinks, req.Keep, req.Replicas)
	if err != nil {
		return AgentResult{}, errInvalid("%v", err)
	}
	if p.Empty() {
		return AgentResult{}, errInvalid("no option to set")
	}
	queued, err := agentChange(s.d.SetFolderOptions(ctx, f.ID, p))
	if err != nil {
		return AgentResult{}, err
	}
	done := fmt.Sprintf("folder %s (%s) options set", f.Name, f.ID)
	if !queued {
		if v, err := s.agentView(ctx); err == nil {
			if nf, ok := v.st.Folder(f.ID); ok {
				done += ": " + optionsText(nf.FolderOptions) + noteText(p.CappedNote(nf))
			}
		}
	}
	return s.agentAfter(ctx, f.ID, done, queued)
}

// agentAfter answers a change to folder id with the folder as this agent
// now sees it.
func (s *Server) agentAfter(ctx context.Context, id, done string, queued bool) (AgentResult, error) {
	v, err := s.agentView(ctx)
	if err != nil {
		return AgentResult{}, err
	}
	res := AgentResult{Done: done, Queued: queued}
	if f, ok := v.st.Folder(id); ok {
		res.Folder = v.toJSON(f)
	}
	return res, nil
}

func (s *Server) agentAccept(ctx context.Context, req AgentAcceptRequest) (AgentResult, error) {
	v, err := s.agentView(ctx)
	if err != nil {
		return AgentResult{}, err
	}
	f, err := v.resolve(req.Folder)
	if err != nil {
		return AgentResult{}, err
	}
	path := filepath.Clean(req.Path)
	warning, err := s.syncFolders(ctx, func(list []LocalFolder) ([]LocalFolder, error) {
		for _, l := range list {
			if l.ID == f.ID {
				return nil, errConflict("folder %s (%s) is already synced here, at %s", f.Name, f.ID, l.Path)
			}
		}
		if err := checkFolderPath(path, f.ID, s.home, list); err != nil {
			return nil, err
		}
		return append(list, LocalFolder{ID: f.ID, Name: f.Name, Owner: f.Owner, Path: path, OutsideSymlinks: req.OutsideSymlinks, WindowsNames: req.WindowsNames}), nil
	})
	if err != nil {
		return AgentResult{}, err
	}
	v.local = append(v.local, LocalFolder{ID: f.ID, Path: path})
	return AgentResult{Done: fmt.Sprintf("folder %s (%s, %s's, %s) synced at %s", f.Name, f.ID, f.Owner, f.Members[v.user], path),
		Folder: v.toJSON(f), Warning: warning}, nil
}

func (s *Server) agentLeave(ctx context.Context, req AgentFolderRequest) (AgentResult, error) {
	v, err := s.agentView(ctx)
	if err != nil {
		return AgentResult{}, err
	}
	f, err := v.resolve(req.Folder)
	if err != nil {
		return AgentResult{}, err
	}
	if f.Owner == v.user {
		return AgentResult{}, errConflict("%s owns folder %s and cannot leave it", v.user, f.Name)
	}
	queued, err := agentChange(s.d.LeaveFolder(ctx, f.ID))
	if err != nil {
		return AgentResult{}, err
	}
	// Stop syncing it here; the files stay.
	var path string
	warning, err := s.syncFolders(ctx, func(list []LocalFolder) ([]LocalFolder, error) {
		return slices.DeleteFunc(list, func(l LocalFolder) bool {
			if l.ID == f.ID {
				path = l.Path
				return true
			}
			return false
		}), nil
	})
	if err != nil {
		return AgentResult{}, err
	}
	done := fmt.Sprintf("%s left folder %s (%s)", v.user, f.Name, f.ID)
	if path != "" {
		done += "; no longer synced at " + path + " (the files stay)"
	}
	if path == "" {
		warning = ""
	}
	res := AgentResult{Done: done, Queued: queued, Folder: v.toJSON(f), Warning: warning}
	res.Folder.Path, res.Folder.Right = "", ""
	return res, nil
}

// syncedFolder resolves ref to a folder synced here.
func (s *Server) syncedFolder(ctx context.Context, ref string) (collections.Folder, LocalFolder, error) {
	v, err := s.agentView(ctx)
	if err != nil {
		return collections.Folder{}, LocalFolder{}, err
	}
	f, err := v.resolve(ref)
	if err != nil {
		return collections.Folder{}, LocalFolder{}, err
	}
	for _, l := range v.local {
		if l.ID == f.ID {
			return f, l, nil
		}
	}
	return f, LocalFolder{}, errConflict("folder %s (%s) is not synced on this device: 'baton folder accept %s PATH' starts syncing it", f.Name, f.ID, ref)
}

func (s *Server) agentRevert(ctx context.Context, req AgentFolderRequest) (AgentResult, error) {
	f, l, err := s.syncedFolder(ctx, req.Folder)
	if err != nil {
		return AgentResult{}, err
	}
	if err := s.d.RevertFolder(ctx, f.ID); err != nil {
		return AgentResult{}, fmt.Errorf("reverting folder %s: %w", f.Name, err)
	}
	return AgentResult{Done: fmt.Sprintf("folder %s (%s) at %s reverted to the server's copy (local changes kept as conflict copies)", f.Name, f.ID, l.Path)}, nil
}
