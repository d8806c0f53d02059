package console

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
)

// Source is what the console reads of the running host: the control API's
// operations. *control.Client is one (control.NewHandlerClient serves it in
// the daemon's process).
type Source interface {
	Status(ctx context.Context) (peer.Status, error)
	Servers(ctx context.Context) ([]control.ChainServer, error)
	Users(ctx context.Context) ([]control.User, error)
	Folders(ctx context.Context) ([]control.Folder, error)
	AgentFolders(ctx context.Context) ([]control.AgentFolder, error)
	AgentDevice(ctx context.Context) (control.AgentDevice, error)
	FolderStatus(ctx context.Context, ref control.FolderRefRequest) (control.FolderStatus, error)
	Devices(ctx context.Context, user string) ([]peer.DeviceInfo, error)
	FolderHistory(ctx context.Context, req control.HistoryRequest) (control.FolderHistory, error)
}

var _ Source = (*control.Client)(nil)

// view is what the console shows of the host at one moment.
type view struct {
	Status peer.Status
	// Servers are the chain's servers (empty if unknown).
	Servers []control.ChainServer
	// Folders are the folders synced here with their state.
	Folders []folderView
}

// folderView is one folder synced here.
type folderView struct {
	ID, Name, Owner string
	Members         []control.Member
	Right           string // an agent's user's right; "server" on the host
	OutsideSymlinks bool   // the folder option
	Keep            string // a hosted folder's retention policy ("" the default)
	Replicas        int    // a hosted folder's replicas option
	Status          control.FolderStatus
	StatusErr       string // why there is no status (not synced yet)
	Conflicts       int    // changes applied as conflict copies since the daemon started
	// Rate is the bytes fetched per second lately (Monitor.noteRates).
	Rate float64
}

// isAgent reports whether st is an agent's.
func isAgent(st peer.Status) bool { return st.Role == "agent" }

// readView reads the host's view from src.
func readView(ctx context.Context, src Source) (view, error) {
	st, err := src.Status(ctx)
	if err != nil {
		return view{}, fmt.Errorf("reading the status: %w", err)
	}
	v := view{Status: st}
	if servers, err := src.Servers(ctx); err == nil {
		v.Servers = servers
	}
	if isAgent(st) {
		fs, err := src.AgentFolders(ctx)
		if err != nil {
			return v, fmt.Errorf("reading the folders: %w", err)
		}
		for _, f := range fs {
			if f.Path == "" {
				continue
			}
			v.Folders = append(v.Folders, folderView{ID: f.ID, Name: f.Name, Owner: f.Owner, Members: f.Members, Right: f.Right, OutsideSymlinks: f.OutsideSymlinks})
		}
	} else {
		fs, err := src.Folders(ctx)
		if err != nil {
			return v, fmt.Errorf("reading the folders: %w", err)
		}
		for _, f := range fs {
			if !slices.Contains(f.Hosts, st.ID) { // its home server or its replica
				continue
			}
			v.Folders = append(v.Folders, folderView{ID: f.ID, Name: f.Name, Owner: f.Owner, Members: f.Members, Right: "server", OutsideSymlinks: f.OutsideSymlinks, Keep: f.Keep, Replicas: f.Replicas})
		}
	}
	for i := range v.Folders {
		f := &v.Folders[i]
		fst, err := src.FolderStatus(ctx, control.FolderRefRequest{Folder: f.ID})
		if err != nil {
			f.StatusErr = err.Error()
			continue
		}
		f.Status = fst
	}
	return v, nil
}

// errorTimes remembers when each folder's last error was first seen,
// since the folder status says the error and not when it came.
type errorTimes struct {
	mu   sync.Mutex
	last map[string]errorSeen
}

type errorSeen struct {
	msg string
	at  time.Time
}

// see records folder's current error (or none) at now and returns when
// the last error was first seen (zero if never).
func (e *errorTimes) see(folder, msg string, now time.Time) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.last == nil {
		e.last = map[string]errorSeen{}
	}
	prev := e.last[folder]
	if msg != "" && msg != prev.msg {
		prev = errorSeen{msg: msg, at: now}
	} else if msg == "" {
		prev.msg = "" // keep the time of the last error
	}
	e.last[folder] = prev
	return prev.at
}
