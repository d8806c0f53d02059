package control

import (
	"context"
	"time"

	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
)

// SyncEngine is what the folder commands need of the running node's folder
// sync: which folders an agent syncs where, their state, reverting a
// read-only member's local changes and rescanning a folder. *peer.Node has
// it; before the node has started its engine the status, revert and rescan
// fail with peer.ErrStopped.
type SyncEngine interface {
	SetFolders(ctx context.Context, folders map[string]string) error
	FolderStatus(ctx context.Context, id string) (foldersync.FolderStatus, error)
	RevertFolder(ctx context.Context, id string) error
	RescanFolder(ctx context.Context, id string) error
}

var _ SyncEngine = (*peer.Node)(nil)

// FolderStatus is 'folder status --json': the engine's view of one
// folder plus its name and progress. The field names are stable.
type FolderStatus struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Root string `json:"root"`
	// Role: this device's user's right, "owner", "rw" or "ro", or
	// "server" on the hosting server (as "right" in 'folder list').
	Role         string `json:"role"`
	State        string `json:"state"` // idle, scanning, syncing or error
	LocalFiles   int    `json:"local_files"`
	LocalDirs    int    `json:"local_dirs"`
	LocalBytes   int64  `json:"local_bytes"`
	NeedFiles    int    `json:"need_files"`
	NeedBytes    int64  `json:"need_bytes"`
	LocalChanges int    `json:"local_changes"`
	InSync       bool   `json:"in_sync"`
	// Servers (on an agent) are the servers hosting the folder that this
	// device syncs with now (connected, and answered its last request):
	// the home server and its replica when both are up.
	Servers []FolderServer `json:"servers,omitempty"`
	// Devices (on a server) are the member devices syncing the folder
	// through this server now: connected, and asking for its index (on an
	// agent: other devices syncing with this one directly).
	Devices   []FolderDevice `json:"devices,omitempty"`
	LastError string         `json:"last_error,omitempty"`
	// Failed lists changes that could not be applied (path, reason,
	// attempts in a row); Stuck: one failed so often that the folder will
	// not get in sync by itself.
	Failed []foldersync.FailedChange `json:"failed,omitempty"`
	Stuck  bool                      `json:"stuck,omitempty"`
	// Busy lists changes waiting for another program to close their
	// file (path, reason): not failures, retried, nothing lost.
	Busy []foldersync.BusyEntry `json:"busy,omitempty"`
	// Emptied: the folder is stopped because its directory was found
	// empty without its marker file (foldersync.ErrEmptied), until a
	// rescan confirms the files were deleted on purpose.
	Emptied bool `json:"emptied,omitempty"`
	// Skipped lists entries of other hosts not taken here, with why (a
	// symlink pointing outside the folder, a name clash), at most
	// foldersync.MaxSkippedShown of them; SkippedCount counts them all.
	Skipped      []foldersync.SkippedEntry `json:"skipped,omitempty"`
	SkippedCount int                       `json:"skipped_count,omitempty"`
	// Hint says what to do about LastError, when the folder stopped
	// until the user acts.
	Hint     string  `json:"hint,omitempty"`
	Progress float64 `json:"progress"` // 0 to 1: the share of the bytes that are here
	// Fetched, Copied, Resumed and Served count block bytes since the
	// daemon started: received from other hosts, reused from local files,
	// taken from the temporary file of an interrupted fetch instead of
	// being fetched again, sent to other hosts.
	Fetched int64 `json:"fetched"`
	Copied  int64 `json:"copied"`
	Resumed int64 `json:"resumed"`
	Served  int64 `json:"served"`
	// LastScan is when the folder was last scanned (absent: not yet).
	LastScan time.Time `json:"last_scan,omitzero"`
	// Quota: the folder owner's quota at the folder's home server, and
	// their bytes there (absent: no quota, or not known yet).
	// QuotaRefused (on an agent): why the home server did not take some
	// of this device's changes; they stay here and go when there is room.
	Quota        *foldersync.QuotaStatus `json:"quota,omitempty"`
	QuotaRefused string                  `json:"quota_refused,omitempty"`
	// History: what the folder's history holds on its hosting server
	// (absent: not known, such as when an agent cannot reach it).
	History *HistoryStatus `json:"history,omitempty"`
}

// FolderServer is a server hosting a folder, by peer ID and name.
type FolderServer struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// FolderDevice is a member device syncing a folder with this host: its
// peer ID, name and user (from its certificate), and when it last asked
// for this host's index.
type FolderDevice struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	User        string    `json:"user"`
	LastRequest time.Time `json:"last_request"`
}

// newFolderStatus is st as 'folder status' shows it, without the name
// and progress.
func newFolderStatus(st foldersync.FolderStatus) FolderStatus {
	return FolderStatus{
		ID:           st.ID,
		Root:         st.Root,
		Role:         st.Role,
		State:        st.State,
		LocalFiles:   st.LocalFiles,
		LocalDirs:    st.LocalDirs,
		LocalBytes:   st.LocalBytes,
		NeedFiles:    st.NeedFiles,
		NeedBytes:    st.NeedBytes,
		LocalChanges: st.LocalChanges,
		InSync:       st.InSync,
		LastError:    st.LastError,
		Failed:       st.Failed,
		Stuck:        st.Stuck,
		Busy:         st.Busy,
		Emptied:      st.Emptied,
		Skipped:      st.Skipped,
		SkippedCount: st.SkippedCount,
		Fetched:      st.Fetched,
		Copied:       st.Copied,
		Resumed:      st.Resumed,
		Served:       st.Served,
		LastScan:     st.LastScan,
		Quota:        st.Quota,
		QuotaRefused: st.QuotaRefused,
	}
}

// fillProgress sets Progress from the byte counts.
func (s *FolderStatus) fillProgress() {
	switch {
	case s.InSync && s.NeedBytes == 0 && s.NeedFiles == 0:
		s.Progress = 1
	case s.LocalBytes+s.NeedBytes > 0:
		s.Progress = float64(s.LocalBytes) / float64(s.LocalBytes+s.NeedBytes)
	default:
		s.Progress = 0
	}
}
