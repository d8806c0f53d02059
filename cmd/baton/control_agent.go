package main

// The control API's user, device and agent folder endpoints.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer"
)

// Wire types. The field names are stable: scripts read them with --json.
type (
	setPasswordRequest struct {
		Password []byte `json:"password"`
	}
	// okResult answers a change that is not a Catalog or Domain update
	// of this host's (or whose certification the daemon already checked).
	okResult struct {
		Done string `json:"done"`
	}

	// agentFolderJSON is a folder this agent's user may sync.
	agentFolderJSON struct {
		ID         string       `json:"id"`
		Name       string       `json:"name"`
		Owner      string       `json:"owner"`
		Server     string       `json:"server"`
		ServerName string       `json:"server_name"`
		Right      string       `json:"right"` // the user's: owner, rw or ro
		Members    []memberJSON `json:"members"`
		Path       string       `json:"path"` // where it is synced here; "" if not
		// OutsideSymlinks: the folder option (members' symlinks pointing
		// outside it are created).
		OutsideSymlinks bool `json:"outside_symlinks,omitempty"`
	}
	agentCreateRequest struct {
		Name            string `json:"name"`
		Path            string `json:"path"`                       // absolute
		OutsideSymlinks bool   `json:"outside_symlinks,omitempty"` // the folder option
	}
	agentOptionsRequest struct {
		Folder          string `json:"folder"` // ID, name or OWNER/NAME
		OutsideSymlinks bool   `json:"outside_symlinks"`
	}
	agentShareRequest struct {
		Folder string `json:"folder"` // ID, name or OWNER/NAME
		User   string `json:"user"`
		Rights string `json:"rights"` // ro or rw (share)
	}
	agentAcceptRequest struct {
		Folder string `json:"folder"`
		Path   string `json:"path"` // absolute
		// OutsideSymlinks: take other hosts' symlinks whose target is
		// absolute or leaves the folder.
		OutsideSymlinks bool `json:"outside_symlinks,omitempty"`
		// WindowsNames: keep to the names Windows can hold.
		WindowsNames bool `json:"windows_names,omitempty"`
	}
	agentFolderRequest struct {
		Folder string `json:"folder"`
	}
	// agentResult answers an agent folder change.
	agentResult struct {
		Done   string          `json:"done"`
		Queued bool            `json:"queued"` // the hosting server waits for the master
		Folder agentFolderJSON `json:"folder"`
		// Warning: the change is made but syncing it here is not (the
		// sync engine refused the set of folders).
		Warning string `json:"warning,omitempty"`
	}
)

func (s *controlServer) setPassword(r *http.Request) (any, error) {
	var req setPasswordRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	defer clear(req.Password)
	name := r.PathValue("name")
	if len(req.Password) == 0 || len(req.Password) > peer.MaxPasswordSize {
		return nil, errInvalid("a password must be 1 to %d bytes", peer.MaxPasswordSize)
	}
	if err := s.d.SetPassword(r.Context(), name, req.Password); err != nil {
		return nil, err
	}
	return okResult{Done: fmt.Sprintf("password of %s set", name)}, nil
}

func (s *controlServer) listDevices(r *http.Request) (any, error) {
	user := r.URL.Query().Get("user")
	ds, err := s.d.Devices(r.Context(), user)
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

func (s *controlServer) revokeDevice(r *http.Request) (any, error) {
	ref := r.PathValue("id")
	id, err := lpeer.Decode(ref)
	if err != nil {
		return nil, errInvalid("device %q: want a peer ID (see 'baton device list')", ref)
	}
	ctx, cancel := context.WithTimeout(r.Context(), defaultWait)
	defer cancel()
	rcpt, err := s.d.RevokeDevice(ctx, id)
	if err != nil {
		if errors.Is(err, peer.ErrNoSuchDevice) {
			return nil, errNotFound("%v", err)
		}
		return nil, err
	}
	done := fmt.Sprintf("device %s revoked", id)
	if rcpt.Queued || rcpt.Certified.IsZero() {
		return mutationResult{Done: done, Queued: true}, nil
	}
	return mutationResult{Done: done, Epoch: rcpt.Certified.Epoch(), Seq: rcpt.Certified.MasterSeq()}, nil
}

// --- agent folders ---

// agentView is what the agent folder endpoints read: the state, the
// logged-in user and the folders synced here.
type agentView struct {
	st    *collections.State
	user  string
	local []localFolder
}

func (s *controlServer) agentView(ctx context.Context) (agentView, error) {
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

func (v agentView) toJSON(f collections.Folder) agentFolderJSON {
	fj := folderToJSON(v.st, f)
	out := agentFolderJSON{ID: f.ID, Name: f.Name, Owner: f.Owner, Server: f.Server, ServerName: fj.ServerName,
		Right: string(f.Members[v.user]), Members: fj.Members, OutsideSymlinks: f.OutsideSymlinks}
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

func (s *controlServer) agentFolders(r *http.Request) (any, error) {
	v, err := s.agentView(r.Context())
	if err != nil {
		return nil, err
	}
	out := []agentFolderJSON{}
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
func (s *controlServer) syncFolders(ctx context.Context, change func([]localFolder) ([]localFolder, error)) (warning string, err error) {
	s.foldersMu.Lock()
	defer s.foldersMu.Unlock()
	list, err := newLocalFolders(s.home).update(change)
	if err != nil {
		return "", err
	}
	if s.symlinks != nil {
		s.symlinks.set(list)
	}
	if err := s.d.SetFolders(ctx, syncMap(list)); err != nil {
		return fmt.Sprintf("the folder is recorded, but the sync engine refused it: %v", err), nil
	}
	return "", nil
}

func (s *controlServer) agentCreate(r *http.Request) (any, error) {
	var req agentCreateRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel, err := s.mutationContext(r)
	if err != nil {
		return nil, err
	}
	defer cancel()
	v, err := s.agentView(ctx)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Name) == "" {
		return nil, errInvalid("the folder name is empty")
	}
	path := filepath.Clean(req.Path)
	if err := checkFolderPath(path, "", s.home, v.local); err != nil {
		return nil, err
	}
	for _, f := range v.mine() {
		if f.Owner == v.user && f.Name == req.Name {
			return nil, errConflict("%s already has a folder named %s (%s)", v.user, f.Name, f.ID)
		}
	}
	f, err := s.d.CreateFolderWith(ctx, req.Name, collections.FolderOptions{OutsideSymlinks: req.OutsideSymlinks})
	queued, err := agentChange(err)
	if err != nil {
		return nil, err
	}
	warning, err := s.syncFolders(ctx, func(list []localFolder) ([]localFolder, error) {
		if err := checkFolderPath(path, f.ID, s.home, list); err != nil {
			return nil, err
		}
		return append(list, localFolder{ID: f.ID, Name: f.Name, Owner: f.Owner, Path: path}), nil
	})
	if err != nil {
		return nil, fmt.Errorf("folder %s (%s) was created, but recording it failed: %w; run 'baton folder accept %s PATH'", f.Name, f.ID, err, f.ID)
	}
	v.local = append(v.local, localFolder{ID: f.ID, Path: path})
	return agentResult{Done: fmt.Sprintf("folder %s (%s) created, synced at %s", f.Name, f.ID, path), Queued: queued,
		Folder: v.toJSON(f), Warning: warning}, nil
}

func (s *controlServer) agentShare(r *http.Request) (any, error) { return s.agentShareOrNot(r, true) }

func (s *controlServer) agentUnshare(r *http.Request) (any, error) {
	return s.agentShareOrNot(r, false)
}

func (s *controlServer) agentShareOrNot(r *http.Request, share bool) (any, error) {
	var req agentShareRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	right := collections.Right(req.Rights)
	if share && right != collections.RightReadOnly && right != collections.RightReadWrite {
		return nil, errInvalid("rights %q: want ro or rw", req.Rights)
	}
	if err := identity.ValidateName(req.User); err != nil {
		return nil, errInvalid("user name: %v", err)
	}
	ctx, cancel, err := s.mutationContext(r)
	if err != nil {
		return nil, err
	}
	defer cancel()
	v, err := s.agentView(ctx)
	if err != nil {
		return nil, err
	}
	f, err := v.resolve(req.Folder)
	if err != nil {
		return nil, err
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
		return nil, err
	}
	return s.agentAfter(ctx, f.ID, done, queued)
}

func (s *controlServer) agentSetOptions(r *http.Request) (any, error) {
	var req agentOptionsRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel, err := s.mutationContext(r)
	if err != nil {
		return nil, err
	}
	defer cancel()
	v, err := s.agentView(ctx)
	if err != nil {
		return nil, err
	}
	f, err := v.resolve(req.Folder)
	if err != nil {
		return nil, err
	}
	opts := collections.FolderOptions{OutsideSymlinks: req.OutsideSymlinks}
	queued, err := agentChange(s.d.SetFolderOptions(ctx, f.ID, opts))
	if err != nil {
		return nil, err
	}
	return s.agentAfter(ctx, f.ID, fmt.Sprintf("folder %s (%s) options set: %s", f.Name, f.ID, optionsText(opts)), queued)
}

// agentAfter answers a change to folder id with the folder as this agent
// now sees it.
func (s *controlServer) agentAfter(ctx context.Context, id, done string, queued bool) (any, error) {
	v, err := s.agentView(ctx)
	if err != nil {
		return nil, err
	}
	res := agentResult{Done: done, Queued: queued}
	if f, ok := v.st.Folder(id); ok {
		res.Folder = v.toJSON(f)
	}
	return res, nil
}

func (s *controlServer) agentAccept(r *http.Request) (any, error) {
	var req agentAcceptRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	ctx := r.Context()
	v, err := s.agentView(ctx)
	if err != nil {
		return nil, err
	}
	f, err := v.resolve(req.Folder)
	if err != nil {
		return nil, err
	}
	path := filepath.Clean(req.Path)
	warning, err := s.syncFolders(ctx, func(list []localFolder) ([]localFolder, error) {
		for _, l := range list {
			if l.ID == f.ID {
				return nil, errConflict("folder %s (%s) is already synced here, at %s", f.Name, f.ID, l.Path)
			}
		}
		if err := checkFolderPath(path, f.ID, s.home, list); err != nil {
			return nil, err
		}
		return append(list, localFolder{ID: f.ID, Name: f.Name, Owner: f.Owner, Path: path, OutsideSymlinks: req.OutsideSymlinks, WindowsNames: req.WindowsNames}), nil
	})
	if err != nil {
		return nil, err
	}
	v.local = append(v.local, localFolder{ID: f.ID, Path: path})
	return agentResult{Done: fmt.Sprintf("folder %s (%s, %s's, %s) synced at %s", f.Name, f.ID, f.Owner, f.Members[v.user], path),
		Folder: v.toJSON(f), Warning: warning}, nil
}

func (s *controlServer) agentLeave(r *http.Request) (any, error) {
	var req agentFolderRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel, err := s.mutationContext(r)
	if err != nil {
		return nil, err
	}
	defer cancel()
	v, err := s.agentView(ctx)
	if err != nil {
		return nil, err
	}
	f, err := v.resolve(req.Folder)
	if err != nil {
		return nil, err
	}
	if f.Owner == v.user {
		return nil, errConflict("%s owns folder %s and cannot leave it", v.user, f.Name)
	}
	queued, err := agentChange(s.d.LeaveFolder(ctx, f.ID))
	if err != nil {
		return nil, err
	}
	// Stop syncing it here; the files stay.
	var path string
	warning, err := s.syncFolders(ctx, func(list []localFolder) ([]localFolder, error) {
		return slices.DeleteFunc(list, func(l localFolder) bool {
			if l.ID == f.ID {
				path = l.Path
				return true
			}
			return false
		}), nil
	})
	if err != nil {
		return nil, err
	}
	done := fmt.Sprintf("%s left folder %s (%s)", v.user, f.Name, f.ID)
	if path != "" {
		done += "; no longer synced at " + path + " (the files stay)"
	}
	if path == "" {
		warning = ""
	}
	res := agentResult{Done: done, Queued: queued, Folder: v.toJSON(f), Warning: warning}
	res.Folder.Path, res.Folder.Right = "", ""
	return res, nil
}

// syncedFolder resolves ref to a folder synced here.
func (s *controlServer) syncedFolder(ctx context.Context, ref string) (collections.Folder, localFolder, error) {
	v, err := s.agentView(ctx)
	if err != nil {
		return collections.Folder{}, localFolder{}, err
	}
	f, err := v.resolve(ref)
	if err != nil {
		return collections.Folder{}, localFolder{}, err
	}
	for _, l := range v.local {
		if l.ID == f.ID {
			return f, l, nil
		}
	}
	return f, localFolder{}, errConflict("folder %s (%s) is not synced on this device: 'baton folder accept %s PATH' starts syncing it", f.Name, f.ID, ref)
}

func (s *controlServer) agentRevert(r *http.Request) (any, error) {
	var req agentFolderRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	f, l, err := s.syncedFolder(r.Context(), req.Folder)
	if err != nil {
		return nil, err
	}
	if err := s.d.RevertFolder(r.Context(), f.ID); err != nil {
		return nil, fmt.Errorf("reverting folder %s: %w", f.Name, err)
	}
	return agentResult{Done: fmt.Sprintf("folder %s (%s) at %s reverted to the server's copy (local changes kept as conflict copies)", f.Name, f.ID, l.Path)}, nil
}
