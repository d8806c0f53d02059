package peer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/peer/folderstore"
	"github.com/baton-sync/baton/peer/foldersync"
	"github.com/baton-sync/baton/peer/wire"
	"github.com/baton-sync/baton/syncfs"
)

// Folder history for agents: an agent asks the folder's hosting servers,
// those it is connected to first, the home server before its replicas
// (historyCall), and the next one when a server cannot be reached.
//
// /baton/history/1.0.0 — one CBOR request, one CBOR response, each a
// varint-length-prefixed frame. Request historyRequest {1: op ("list",
// "restore", "tree", "blocks" or "usage"), 2: folder ID, 3: path, 4: all (restore
// the whole folder), 5: snapshot sequence, 6: time (Unix nanoseconds),
// 7: block hashes (blocks)}. Response historyResponse {1: code, 2:
// message, 3: versions (list), 4: restore counts, 5: the snapshot
// sequence (restore, tree), 6: the tree's live entries (tree), 7: the
// blocks asked, in order (blocks), 8: what the history holds (usage:
// {1: versions, 2: oldest, 3: latest (Unix nanoseconds), 4: blocks, 5:
// bytes, 6: the retention policy})}. Versions (list) are {1: sequence,
// 2: time, 3: device, 4: user, 5: entry, 6 and 7: the user and device
// that asked for the restore that made it}. Codes: "" (done), "denied" (not a
// valid device of a member; a restore by a read-only member), "not-found"
// (no such folder among the requester's, or no version then),
// "elsewhere" (not hosted here), "error".
//
// The requester is the authenticated remote peer, a valid device of a
// member of the folder: every member's device may list and export
// (tree, blocks); only the owner's and read-write members' devices may
// restore. Anyone else is answered as if the folder did not exist. Blocks
// come from the store, which checks each against its hash; the agent
// checks them again before writing.
const (
	protoHistory = protocol.ID("/baton/history/1.0.0")

	maxHistoryRequest  = 1 << 20
	maxHistoryResponse = syncfs.MaxBlockSize + 32<<20
	historyTimeout     = 2 * time.Minute
	restoreTimeout     = 30 * time.Minute
	// maxHistoryBlocks bounds the blocks asked at once; an agent asks a
	// file's blocks in batches of folderstore.ExportBatchBlocks and
	// ExportBatchBytes (one block at least).
	maxHistoryBlocks = folderstore.ExportBatchBlocks
)

const (
	opHistoryList    = "list"
	opHistoryRestore = "restore"
	opHistoryTree    = "tree"
	opHistoryBlocks  = "blocks"
	opHistoryUsage   = "usage"
)

// ErrRestoreDenied: a read-only member's device asked to restore.
var ErrRestoreDenied = errors.New("a read-only member may see a folder's history and export it, but not restore it")

type historyRequest struct {
	Op     string        `cbor:"1,keyasint"`
	Folder string        `cbor:"2,keyasint"`
	Path   string        `cbor:"3,keyasint,omitempty"`
	All    bool          `cbor:"4,keyasint,omitempty"`
	Seq    uint64        `cbor:"5,keyasint,omitempty"`
	At     int64         `cbor:"6,keyasint,omitempty"`
	Blocks []syncfs.Hash `cbor:"7,keyasint,omitempty"`
}

type historyResponse struct {
	Code     string            `cbor:"1,keyasint,omitempty"`
	Error    string            `cbor:"2,keyasint,omitempty"`
	Versions []historyVersion  `cbor:"3,keyasint,omitempty"`
	Restored *restoreCounts    `cbor:"4,keyasint,omitempty"`
	Seq      uint64            `cbor:"5,keyasint,omitempty"`
	Entries  []syncfs.FileInfo `cbor:"6,keyasint,omitempty"`
	Blocks   [][]byte          `cbor:"7,keyasint,omitempty"`
	Usage    *historyUsage     `cbor:"8,keyasint,omitempty"`
}

type historyUsage struct {
	Versions int    `cbor:"1,keyasint"`
	Oldest   int64  `cbor:"2,keyasint,omitempty"`
	Latest   int64  `cbor:"3,keyasint,omitempty"`
	Blocks   int    `cbor:"4,keyasint"`
	Bytes    int64  `cbor:"5,keyasint"`
	Keep     string `cbor:"6,keyasint,omitempty"`
}

type historyVersion struct {
	Seq    uint64          `cbor:"1,keyasint"`
	Time   int64           `cbor:"2,keyasint"`
	Device string          `cbor:"3,keyasint,omitempty"`
	User   string          `cbor:"4,keyasint,omitempty"`
	Entry  syncfs.FileInfo `cbor:"5,keyasint"`
	// Who asked for the restore that made it (FolderVersion.RestoredBy).
	RestoredBy       string `cbor:"6,keyasint,omitempty"`
	RestoredByDevice string `cbor:"7,keyasint,omitempty"`
}

type restoreCounts struct {
	Changed   int      `cbor:"1,keyasint"`
	Unchanged int      `cbor:"2,keyasint"`
	Failed    []string `cbor:"3,keyasint,omitempty"`
}

func historyFailure(code, format string, args ...any) historyResponse {
	return historyResponse{Code: code, Error: fmt.Sprintf(format, args...)}
}

func (r historyRequest) point() HistoryPoint {
	pt := HistoryPoint{Seq: r.Seq}
	if r.At != 0 {
		pt.At = time.Unix(0, r.At)
	}
	return pt
}

// --- the server side ---

func (e *edge) handleHistory(s network.Stream) {
	if e.refuseGuest(s) {
		return
	}
	remote := s.Conn().RemotePeer()
	wire.ServeMsg(s, time.Now().Add(restoreTimeout), maxHistoryRequest, func(b []byte) (historyResponse, error) {
		ctx, cancel := e.handlerContext(restoreTimeout)
		defer cancel()
		return e.node.serveHistory(ctx, remote, b), nil
	})
}

// serveHistory checks and answers one history request of remote.
func (n *Node) serveHistory(ctx context.Context, remote lpeer.ID, b []byte) historyResponse {
	var req historyRequest
	if err := canon.Unmarshal(b, &req, maxHistoryRequest); err != nil {
		return historyFailure(codeError, "malformed history request")
	}
	a := n.cfg.folders.access()
	user, ok := a.UserOf(remote)
	if !ok {
		return historyFailure(codeDenied, "%s is not a valid device of the domain: log in again", remote)
	}
	f, ok := a.Folder(req.Folder)
	right, member := f.Members[user]
	if !ok || !member {
		return historyFailure(codeNotFound, "no folder %s in the domain", req.Folder)
	}
	st, release, err := n.hostedHistory(f.ID)
	defer release()
	if err != nil {
		return historyFailure(codeElsewhere, "folder %s (%s) is not hosted on this server", f.Name, f.ID)
	}
	log := n.cfg.Logger.With("part", "history", "folder", f.ID, "device", remote.String(), "user", user)
	fail := func(err error) historyResponse {
		if errors.Is(err, ErrNoVersion) {
			return historyFailure(codeNotFound, "%v", err)
		}
		return historyFailure(codeError, "%v", err)
	}
	switch req.Op {
	case opHistoryList:
		vs, err := n.localHistory(st, f.ID, req.Path)
		if err != nil {
			return fail(err)
		}
		resp := historyResponse{Versions: make([]historyVersion, len(vs))}
		for i, v := range vs {
			resp.Versions[i] = historyVersion{Seq: v.Seq, Time: v.Time.UnixNano(), Device: v.Device, User: v.User, Entry: v.Entry,
				RestoredBy: v.RestoredBy, RestoredByDevice: v.RestoredByDevice}
		}
		return resp
	case opHistoryRestore:
		if right != collections.RightOwner && right != collections.RightReadWrite {
			log.Info("history: restore refused to a read-only member", "path", req.Path)
			return historyFailure(codeDenied, "%s is a read-only member of folder %s", user, f.Name)
		}
		res, err := n.restoreWith(ctx, st, f.ID, RestoreRequest{Path: req.Path, All: req.All, Point: req.point()}, foldersync.Requester{User: user, Device: remote.String()})
		log.Info("history: restore", "path", req.Path, "all", req.All, "changed", res.Changed, "err", err)
		if err != nil {
			resp := fail(err)
			if res.Changed > 0 || len(res.Failed) > 0 {
				resp.Restored = &restoreCounts{Changed: res.Changed, Unchanged: res.Unchanged, Failed: res.Failed}
			}
			return resp
		}
		return historyResponse{Restored: &restoreCounts{Changed: res.Changed, Unchanged: res.Unchanged, Failed: res.Failed}}
	case opHistoryTree:
		seq, err := resolveSeq(st, f.ID, req.point())
		if err != nil {
			return fail(err)
		}
		tree, err := st.Tree(f.ID, seq)
		if err != nil {
			return fail(err)
		}
		resp := historyResponse{Seq: seq}
		for _, fi := range tree.Sorted() {
			if !fi.Deleted {
				resp.Entries = append(resp.Entries, fi)
			}
		}
		return resp
	case opHistoryUsage:
		u, err := n.localUsage(st, f.ID)
		if err != nil {
			return fail(err)
		}
		hu := &historyUsage{Versions: u.Versions, Blocks: u.Blocks, Bytes: u.Bytes, Keep: u.Keep}
		if u.Versions > 0 {
			hu.Oldest, hu.Latest = u.Oldest.UnixNano(), u.Latest.UnixNano()
		}
		return historyResponse{Usage: hu}
	case opHistoryBlocks:
		if len(req.Blocks) > maxHistoryBlocks {
			return historyFailure(codeInvalid, "%d blocks asked, at most %d", len(req.Blocks), maxHistoryBlocks)
		}
		// Only blocks the folder's kept snapshots reference are given.
		refs, err := st.References(f.ID, req.Blocks...)
		if err != nil {
			return fail(err)
		}
		var resp historyResponse
		size := 0
		for i, h := range req.Blocks {
			if !refs[i] {
				return historyFailure(codeNotFound, "block %x is not in folder %s's history", h[:8], f.ID)
			}
			data, err := st.Blocks().Get(h)
			if err != nil {
				log.Error("history: a block of the store cannot be read", "block", fmt.Sprintf("%x", h[:8]), "err", err)
				return fail(err)
			}
			if size += len(data); size > maxHistoryResponse-1<<20 {
				return historyFailure(codeInvalid, "blocks asked exceed %d bytes", maxHistoryResponse)
			}
			resp.Blocks = append(resp.Blocks, data)
		}
		return resp
	}
	return historyFailure(codeInvalid, "unknown history operation %q", req.Op)
}

// --- the agent side ---

// historyTargets returns the servers that host the folder of an agent's
// history request, to ask in order: those this device is connected to
// first, each group in the order of collections.FolderHosts (the home
// server, then its replicas).
func (d *driver) historyTargets(folder string) ([]lpeer.AddrInfo, error) {
	if _, err := d.agentTarget(agentRequest{Op: "history", Folder: folder}); err != nil {
		return nil, err
	}
	f, _ := d.state.Folder(folder)
	hosts := d.state.FolderHosts(f)
	connected := func(id lpeer.ID) bool { return d.host.Network().Connectedness(id) == network.Connected }
	var out []lpeer.AddrInfo
	for _, first := range []bool{true, false} {
		for _, id := range hosts {
			if connected(id) == first {
				out = append(out, d.hostAddrInfo(id))
			}
		}
	}
	return out, nil
}

// historyCall sends req to a hosting server of the folder
// (historyTargets): the next one when a server cannot be reached or does
// not host it, so that while the home server is down its replica answers
// from its own history. Each server keeps a history of its own: version
// numbers are those of the server that answers.
func (n *Node) historyCall(ctx context.Context, req historyRequest, timeout time.Duration) (historyResponse, error) {
	var (
		h       host.Host
		targets []lpeer.AddrInfo
		err     error
	)
	if derr := n.do(ctx, func(_ context.Context, d *driver) {
		h = d.host
		targets, err = d.historyTargets(req.Folder)
	}); derr != nil {
		return historyResponse{}, derr
	}
	if err != nil {
		return historyResponse{}, err
	}
	b, err := canon.Marshal(req)
	if err != nil {
		return historyResponse{}, err
	}
	var errs []error
	for _, target := range targets {
		resp, err := historyCallOne(ctx, h, target, req.Op, b, timeout)
		if err == nil || !errors.Is(err, errHistoryElsewhere) || ctx.Err() != nil {
			return resp, err
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return historyResponse{}, fmt.Errorf("folder %s has no hosting server: %w", req.Folder, ErrNoHistory)
	}
	return historyResponse{}, errors.Join(errs...)
}

// errHistoryElsewhere marks a hosting server that could not answer a
// history request: unreachable, or not hosting the folder (any more).
var errHistoryElsewhere = errors.New("another hosting server may answer")

// historyCallOne sends the history request b (of operation op) to target.
func historyCallOne(ctx context.Context, h host.Host, target lpeer.AddrInfo, op string, b []byte, timeout time.Duration) (historyResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := call[historyResponse](ctx, h, target, protoHistory, b, maxHistoryResponse)
	if err != nil {
		return historyResponse{}, fmt.Errorf("asking the folder's server %s: %w (%w)", target.ID, err, errHistoryElsewhere)
	}
	switch resp.Code {
	case "":
		return resp, nil
	case codeDenied:
		if op == opHistoryRestore {
			return resp, fmt.Errorf("%w: %s", ErrRestoreDenied, resp.Error)
		}
		return resp, fmt.Errorf("%w: %s", ErrFolderDenied, resp.Error)
	case codeNotFound:
		if op != opHistoryBlocks {
			return resp, fmt.Errorf("%w: %s", ErrNoVersion, resp.Error)
		}
		return resp, fmt.Errorf("%w: %s", errRemote, resp.Error)
	case codeElsewhere:
		return resp, fmt.Errorf("%w: %s (%w)", ErrNoHistory, resp.Error, errHistoryElsewhere)
	}
	return resp, fmt.Errorf("%w: %s", errRemote, resp.Error)
}

func (n *Node) remoteHistory(ctx context.Context, id, path string) ([]FolderVersion, error) {
	resp, err := n.historyCall(ctx, historyRequest{Op: opHistoryList, Folder: id, Path: path}, historyTimeout)
	if err != nil {
		return nil, err
	}
	out := make([]FolderVersion, len(resp.Versions))
	for i, v := range resp.Versions {
		out[i] = FolderVersion{Seq: v.Seq, Time: time.Unix(0, v.Time).UTC(), Device: v.Device, User: v.User, Entry: v.Entry,
			RestoredBy: v.RestoredBy, RestoredByDevice: v.RestoredByDevice}
	}
	return out, nil
}

func (n *Node) remoteUsage(ctx context.Context, id string) (HistoryUsage, error) {
	resp, err := n.historyCall(ctx, historyRequest{Op: opHistoryUsage, Folder: id}, historyTimeout)
	if err != nil {
		return HistoryUsage{}, err
	}
	u := resp.Usage
	if u == nil {
		return HistoryUsage{}, fmt.Errorf("%w: the server's answer holds no usage", errRemote)
	}
	out := HistoryUsage{Versions: u.Versions, Blocks: u.Blocks, Bytes: u.Bytes, Keep: u.Keep}
	if u.Versions > 0 {
		out.Oldest, out.Latest = time.Unix(0, u.Oldest).UTC(), time.Unix(0, u.Latest).UTC()
	}
	return out, nil
}

func (n *Node) remoteRestore(ctx context.Context, id string, req RestoreRequest) (foldersync.RestoreResult, error) {
	hr := historyRequest{Op: opHistoryRestore, Folder: id, Path: req.Path, All: req.All, Seq: req.Point.Seq}
	if !req.Point.At.IsZero() {
		hr.At = req.Point.At.UnixNano()
	}
	resp, err := n.historyCall(ctx, hr, restoreTimeout)
	var res foldersync.RestoreResult
	if c := resp.Restored; c != nil {
		res = foldersync.RestoreResult{Changed: c.Changed, Unchanged: c.Unchanged, Failed: c.Failed}
	}
	return res, err
}

// remoteExport writes the folder's tree at pt, from its hosting server,
// into dir: every block checked against its hash before it is written.
func (n *Node) remoteExport(ctx context.Context, id string, pt HistoryPoint, dir string) (uint64, error) {
	hr := historyRequest{Op: opHistoryTree, Folder: id, Seq: pt.Seq}
	if !pt.At.IsZero() {
		hr.At = pt.At.UnixNano()
	}
	resp, err := n.historyCall(ctx, hr, historyTimeout)
	if err != nil {
		return 0, err
	}
	blocks := func(bs []syncfs.Block) ([][]byte, error) {
		req := historyRequest{Op: opHistoryBlocks, Folder: id}
		for _, b := range bs {
			req.Blocks = append(req.Blocks, b.Hash)
		}
		r, err := n.historyCall(ctx, req, historyTimeout)
		if err != nil {
			return nil, err
		}
		if len(r.Blocks) != len(bs) {
			return nil, fmt.Errorf("asked %d blocks, the server gave %d", len(bs), len(r.Blocks))
		}
		return r.Blocks, nil
	}
	each := func(yield func(syncfs.FileInfo) error) error {
		for _, fi := range resp.Entries {
			if err := yield(fi); err != nil {
				return err
			}
		}
		return nil
	}
	if err := folderstore.WriteTree(dir, each, blocks); err != nil {
		return 0, fmt.Errorf("exporting folder %s: %w", id, err)
	}
	return resp.Seq, nil
}
