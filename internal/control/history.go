package control

// The control API's folder history endpoints: a folder's versions, a
// restore as a new change, an export as plain files. On a server they are
// for the folders it hosts; on an agent for its user's folders, answered
// by the folder's hosting server.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
	"github.com/baton-sync/baton/syncfs"
)

// History is what the history commands need of the running node. *peer.Node
// has it.
type History interface {
	FolderHistory(ctx context.Context, id, path string) ([]peer.FolderVersion, error)
	RestoreFolder(ctx context.Context, id string, req peer.RestoreRequest) (foldersync.RestoreResult, error)
	ExportFolder(ctx context.Context, id string, pt peer.HistoryPoint, dir string) (uint64, error)
	FolderHistoryUsage(ctx context.Context, id string) (peer.HistoryUsage, error)
}

var _ History = (*peer.Node)(nil)

// historyTimeout bounds a restore or an export, which write files.
const historyTimeout = 30 * time.Minute

// FolderHistory is 'folder history --json': the versions of a path of a
// folder, oldest first. The field names are stable.
type FolderHistory struct {
	ID       string           `json:"id"`
	Name     string           `json:"name"`
	Path     string           `json:"path,omitempty"`
	Versions []HistoryVersion `json:"versions"`
}

// HistoryVersion is one version of one entry.
type HistoryVersion struct {
	Version uint64    `json:"version"` // the snapshot: 'restore --version'
	Time    time.Time `json:"time"`
	Path    string    `json:"path"`
	Type    string    `json:"type"` // file, dir or symlink
	Deleted bool      `json:"deleted,omitempty"`
	Size    int64     `json:"size,omitempty"`
	Hash    string    `json:"hash,omitempty"` // the file's hash, hex
	Device  string    `json:"device,omitempty"`
	User    string    `json:"user,omitempty"`
	// RestoredBy and RestoredByDevice: who asked for the restore that
	// made this version (the hosting server made it on their behalf).
	RestoredBy       string `json:"restored_by,omitempty"`
	RestoredByDevice string `json:"restored_by_device,omitempty"`
}

// HistoryStatus is what a folder's history holds on its hosting server
// ('folder status'). The field names are stable.
type HistoryStatus struct {
	Versions int       `json:"versions"`
	Oldest   time.Time `json:"oldest,omitzero"`
	Latest   time.Time `json:"latest,omitzero"`
	Blocks   int       `json:"blocks"`
	Bytes    int64     `json:"bytes"` // of the blocks the kept versions reference
	Keep     string    `json:"keep"`  // the retention policy applied
	// Tree is the digest of the latest kept version's tree
	// (folderstore.TreeDigest, hex), on the hosting server itself only:
	// two servers holding the same files at the same versions show the
	// same, whatever their histories.
	Tree string `json:"tree,omitempty"`
	// The owner's quota does not count the history (FolderStatus.Quota).
}

// historyStatusTimeout bounds the question an agent's 'folder status' asks
// of the hosting server about the folder's history; without an answer the
// status leaves the history out.
const historyStatusTimeout = 3 * time.Second

// historyStatus returns what folder id's history holds, nil if it cannot
// be had quickly (no history here, the server unreachable).
func (s *Server) historyStatus(ctx context.Context, id string) *HistoryStatus {
	ctx, cancel := context.WithTimeout(ctx, historyStatusTimeout)
	defer cancel()
	u, err := s.d.FolderHistoryUsage(ctx, id)
	if err != nil {
		return nil
	}
	hs := &HistoryStatus{Versions: u.Versions, Oldest: u.Oldest, Latest: u.Latest, Blocks: u.Blocks, Bytes: u.Bytes, Keep: u.Keep}
	if u.Tree != (syncfs.Hash{}) {
		hs.Tree = fmt.Sprintf("%x", u.Tree[:])
	}
	return hs
}

// HistoryRequest names a folder (as FolderRefRequest) and, optionally, a
// path in it.
type HistoryRequest struct {
	FolderRefRequest
	Path string `json:"path,omitempty"`
}

// RestoreRequest restores Path (or, with All, the whole folder) as it was
// at Version (a snapshot listed by history) or at At; neither: the latest
// version kept.
type RestoreRequest struct {
	FolderRefRequest
	Path    string    `json:"path,omitempty"`
	All     bool      `json:"all,omitempty"`
	Version uint64    `json:"version,omitempty"`
	At      time.Time `json:"at,omitzero"`
}

// RestoreResult answers a restore.
type RestoreResult struct {
	Done      string   `json:"done"`
	Changed   int      `json:"changed"`
	Unchanged int      `json:"unchanged"`
	Failed    []string `json:"failed,omitempty"`
}

// ExportRequest writes the folder as it was at Version or At (neither:
// the latest) into Dir, an absolute path, new or empty.
type ExportRequest struct {
	FolderRefRequest
	Dir     string    `json:"dir"`
	Version uint64    `json:"version,omitempty"`
	At      time.Time `json:"at,omitzero"`
}

// ExportResult answers an export.
type ExportResult struct {
	Done    string `json:"done"`
	Version uint64 `json:"version"`
}

// historyFolder resolves the folder of a history request: on an agent one
// of its user's folders (synced here or not), on a server one it hosts, as
// its home server or as its replica (each keeps a history of its own).
func (s *Server) historyFolder(ctx context.Context, req FolderRefRequest) (collections.Folder, error) {
	if strings.TrimSpace(req.Folder) == "" {
		return collections.Folder{}, errInvalid("no folder named")
	}
	if s.home != "" {
		if req.Owner != "" {
			return collections.Folder{}, errInvalid("--owner is for servers; on an agent name the folder as OWNER/NAME")
		}
		v, err := s.agentView(ctx)
		if err != nil {
			return collections.Folder{}, err
		}
		return v.resolve(req.Folder)
	}
	st, err := s.d.State(ctx)
	if err != nil {
		return collections.Folder{}, err
	}
	return replicatedFolder(st, s.d.ID(), req.Folder, req.Owner, "its history is kept there")
}

// historyError gives the history errors their codes.
func historyError(err error) error {
	switch {
	case errors.Is(err, peer.ErrRestoreDenied):
		return &apiError{CodeDenied, err.Error()}
	case errors.Is(err, peer.ErrNoVersion):
		return &apiError{CodeNotFound, err.Error()}
	case errors.Is(err, peer.ErrNoHistory):
		return &apiError{CodeConflict, err.Error()}
	case errors.Is(err, foldersync.ErrRestoreBlock):
		return &apiError{CodeInternal, err.Error()}
	}
	return err
}

func (s *Server) folderHistory(ctx context.Context, req HistoryRequest) (FolderHistory, error) {
	f, err := s.historyFolder(ctx, req.FolderRefRequest)
	if err != nil {
		return FolderHistory{}, err
	}
	vs, err := s.d.FolderHistory(ctx, f.ID, req.Path)
	if err != nil {
		return FolderHistory{}, historyError(fmt.Errorf("history of folder %s: %w", f.Name, err))
	}
	out := FolderHistory{ID: f.ID, Name: f.Name, Path: req.Path, Versions: make([]HistoryVersion, len(vs))}
	for i, v := range vs {
		e := v.Entry
		hv := HistoryVersion{Version: v.Seq, Time: v.Time.UTC(), Path: e.Name, Type: e.Type.String(), Deleted: e.Deleted, Device: v.Device, User: v.User,
			RestoredBy: v.RestoredBy, RestoredByDevice: v.RestoredByDevice}
		if !e.Deleted && e.Type == syncfs.TypeFile {
			hv.Size, hv.Hash = e.Size, fmt.Sprintf("%x", e.FileHash[:])
		}
		out.Versions[i] = hv
	}
	return out, nil
}

func (s *Server) folderRestore(ctx context.Context, req RestoreRequest) (RestoreResult, error) {
	f, err := s.historyFolder(ctx, req.FolderRefRequest)
	if err != nil {
		return RestoreResult{}, err
	}
	switch {
	case req.All && req.Path != "":
		return RestoreResult{}, errInvalid("give a path or --all, not both")
	case !req.All && strings.Trim(req.Path, "/") == "":
		return RestoreResult{}, errInvalid("no path to restore: name one, or restore the whole folder with --all --at TIME")
	case req.All && req.At.IsZero() && req.Version == 0:
		return RestoreResult{}, errInvalid("--all needs --at TIME (or --version V)")
	case req.Version != 0 && !req.At.IsZero():
		return RestoreResult{}, errInvalid("give --version or --at, not both")
	}
	res, err := s.d.RestoreFolder(ctx, f.ID, peer.RestoreRequest{
		Path: strings.Trim(req.Path, "/"), All: req.All, Point: peer.HistoryPoint{Seq: req.Version, At: req.At},
	})
	if err != nil {
		return RestoreResult{}, historyError(fmt.Errorf("restoring folder %s: %w", f.Name, err))
	}
	what := req.Path
	if req.All {
		what = "the whole folder"
	}
	return RestoreResult{
		Done:    fmt.Sprintf("restored %s of folder %s (%s): %d changed, %d already so; it syncs to every member", what, f.Name, f.ID, res.Changed, res.Unchanged),
		Changed: res.Changed, Unchanged: res.Unchanged, Failed: res.Failed,
	}, nil
}

func (s *Server) folderExport(ctx context.Context, req ExportRequest) (ExportResult, error) {
	f, err := s.historyFolder(ctx, req.FolderRefRequest)
	if err != nil {
		return ExportResult{}, err
	}
	if !filepath.IsAbs(req.Dir) {
		return ExportResult{}, errInvalid("export directory %q is not absolute", req.Dir)
	}
	if req.Version != 0 && !req.At.IsZero() {
		return ExportResult{}, errInvalid("give --version or --at, not both")
	}
	seq, err := s.d.ExportFolder(ctx, f.ID, peer.HistoryPoint{Seq: req.Version, At: req.At}, req.Dir)
	if err != nil {
		return ExportResult{}, historyError(fmt.Errorf("exporting folder %s: %w", f.Name, err))
	}
	return ExportResult{Done: fmt.Sprintf("folder %s (%s) at version %d exported to %s", f.Name, f.ID, seq, req.Dir), Version: seq}, nil
}

func readHistoryRequest(r *http.Request) (HistoryRequest, error) {
	ref, _ := readFolderRef(r)
	return HistoryRequest{FolderRefRequest: ref, Path: r.URL.Query().Get("path")}, nil
}

// FolderHistory lists the versions of a folder's path ("" for all).
func (c *Client) FolderHistory(ctx context.Context, req HistoryRequest) (FolderHistory, error) {
	q := url.Values{"folder": {req.Folder}}
	if req.Owner != "" {
		q.Set("owner", req.Owner)
	}
	if req.Path != "" {
		q.Set("path", req.Path)
	}
	return get[FolderHistory](ctx, c, "/v1/folders/history", q)
}

// RestoreFolder restores a path of a folder, or all of it, from its
// history.
func (c *Client) RestoreFolder(ctx context.Context, req RestoreRequest) (RestoreResult, error) {
	return call[RestoreResult](ctx, c, historyTimeout, http.MethodPost, "/v1/folders/restore", nil, req)
}

// ExportFolder writes a folder as it was into a directory.
func (c *Client) ExportFolder(ctx context.Context, req ExportRequest) (ExportResult, error) {
	return call[ExportResult](ctx, c, historyTimeout, http.MethodPost, "/v1/folders/export", nil, req)
}
