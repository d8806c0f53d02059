package control

// The control API's folder sync endpoints, for agents and servers alike:
// the state of a folder synced here and asking for its rescan.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer/foldersync"
)

// FolderRefRequest names a folder synced here: on an agent by ID, name or
// OWNER/NAME; on a server by name or ID, and Owner when several folders
// it hosts have that name.
type FolderRefRequest struct {
	Folder string `json:"folder"`
	Owner  string `json:"owner,omitempty"` // servers only
}

// syncedHere is a folder this host syncs.
type syncedHere struct {
	f    collections.Folder
	root string // its directory here
	user string // an agent's logged-in user; "" on a server
}

// role is what this host is to the folder, as 'folder list' says it: the
// user's right (owner, rw or ro) on an agent, "server" on the hosting
// server. The Catalog says it rather than the engine, which does not
// tell the owner from read-write members and may not have the folder's
// record yet.
func (h syncedHere) role() string {
	if h.user == "" {
		return roleServer
	}
	return string(h.f.Members[h.user])
}

// roleServer is the hosting server's role in 'folder status'.
const roleServer = "server"

// syncedHere resolves a folder this host syncs: on an agent, one of its
// user's folders synced on this device; on a server, one it hosts.
func (s *Server) syncedHere(ctx context.Context, req FolderRefRequest) (syncedHere, error) {
	if strings.TrimSpace(req.Folder) == "" {
		return syncedHere{}, errInvalid("no folder named")
	}
	if s.home != "" {
		if req.Owner != "" {
			return syncedHere{}, errInvalid("--owner is for servers; on an agent name the folder as OWNER/NAME")
		}
		v, err := s.agentView(ctx)
		if err != nil {
			return syncedHere{}, err
		}
		f, l, err := s.syncedFolder(ctx, req.Folder)
		if err != nil {
			return syncedHere{}, err
		}
		return syncedHere{f: f, root: l.Path, user: v.user}, nil
	}
	st, err := s.d.State(ctx)
	if err != nil {
		return syncedHere{}, err
	}
	f, err := replicatedFolder(st, s.d.ID(), req.Folder, req.Owner, "this server does not sync it")
	if err != nil {
		return syncedHere{}, err
	}
	return syncedHere{f: f, root: filepath.Join(s.dataDir, "folders", f.ID)}, nil
}

// rescanHint is the command that rescans the folder req names.
func rescanHint(req FolderRefRequest) string {
	cmd := "baton folder rescan " + req.Folder
	if req.Owner != "" {
		cmd += " --owner " + req.Owner
	}
	return cmd
}

func (s *Server) folderStatus(ctx context.Context, req FolderRefRequest) (FolderStatus, error) {
	h, err := s.syncedHere(ctx, req)
	if err != nil {
		return FolderStatus{}, err
	}
	fs, err := s.d.FolderStatus(ctx, h.f.ID)
	if err != nil {
		return FolderStatus{}, fmt.Errorf("folder %s: %w", h.f.Name, err)
	}
	st := newFolderStatus(fs)
	st.ID, st.Name, st.Role = h.f.ID, h.f.Name, h.role()
	if len(fs.Servers) > 0 || len(fs.Devices) > 0 {
		cs, _ := s.d.State(ctx) // nil: hosts shown by ID
		for _, id := range fs.Servers {
			name := id
			if cs != nil {
				name = hostName(cs, id)
			}
			st.Servers = append(st.Servers, FolderServer{ID: id, Name: name})
		}
		for _, d := range fs.Devices {
			fd := FolderDevice{ID: d.ID, Name: d.ID, User: d.User, LastRequest: d.LastRequest}
			if pid, err := lpeer.Decode(d.ID); err == nil && cs != nil {
				if _, cert, ok := cs.Device(pid); ok {
					fd.Name = cert.Name
				}
			}
			st.Devices = append(st.Devices, fd)
		}
	}
	if st.Root == "" {
		st.Root = h.root
	}
	if st.Emptied {
		st.Hint = fmt.Sprintf("if the files were deleted on purpose, confirm it with '%s' (they are then deleted everywhere)", rescanHint(req))
	}
	st.fillProgress()
	st.History = s.historyStatus(ctx, h.f.ID)
	return st, nil
}

func (s *Server) folderRescan(ctx context.Context, req FolderRefRequest) (OKResult, error) {
	h, err := s.syncedHere(ctx, req)
	if err != nil {
		return OKResult{}, err
	}
	if err := s.d.RescanFolder(ctx, h.f.ID); err != nil {
		if errors.Is(err, foldersync.ErrUnknownFolder) {
			return OKResult{}, errConflict("folder %s (%s) is not synced yet at %s: try again in a moment", h.f.Name, h.f.ID, h.root)
		}
		return OKResult{}, fmt.Errorf("rescanning folder %s: %w", h.f.Name, err)
	}
	return OKResult{Done: fmt.Sprintf("rescan of folder %s (%s) at %s requested", h.f.Name, h.f.ID, h.root)}, nil
}
