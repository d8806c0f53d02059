package peer

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/peer/wire"
)

// Agent folder operations: a desktop agent asks a server to change a
// folder's Catalog record on its user's behalf. Folder records are written
// only by their hosting server (the owner's home server), so the agent asks
// that server, which checks who asks and what, and submits the update as
// its own; the master certifies it as usual.
//
// /baton/agent/1.0.0 — one CBOR request, one CBOR response, each a
// varint-length-prefixed frame. Request agentRequest {1: op ("create",
// "share", "unshare", "leave" or "options"), 2: folder name (create),
// 3: folder ID, 4: user (share, unshare), 5: right ("ro" or "rw", share),
// 6: the folder option OutsideSymlinks (create, options; absent leaves it
// as it is), 7: the folder option Keep (create, options: "" leaves it as
// it is, "default" resets it, else a retention policy the server checks
// with ParseKeep), 8: the folder option Replicas (create, options; absent
// leaves it as it is, or the default on create)}: the server reads 6 to 8
// with ParseOptions and builds the change with the collections'
// OptionsPatch. The
// requesting user is the one whose valid device the authenticated remote
// peer is, never a field. Response agentResponse {1: code, 2: message,
// 3: the certified update (code ""), 4: the folder record as submitted,
// 5: the hosting server's peer ID (code "elsewhere")}. Codes: "" (done and
// certified), "queued" (submitted, no master reachable: it is certified
// when one is), "denied" (not a valid device, or not allowed: only the
// owner shares and unshares), "elsewhere" (this server does not host the
// folder, or is not the user's home server), "not-found", "invalid",
// "error".
const (
	protoAgent = protocol.ID("/baton/agent/1.0.0")

	maxAgentRequest  = 4 << 10
	maxAgentResponse = 2*collections.MaxUpdateSize + 64<<10
	agentTimeout     = 30 * time.Second
)

// Agent operations.
const (
	opCreate  = "create"
	opShare   = "share"
	opUnshare = "unshare"
	opLeave   = "leave"
	opOptions = "options"
)

// Agent response codes (besides those of login).
const (
	codeQueued    = "queued"
	codeElsewhere = "elsewhere"
	codeNotFound  = "not-found"
	codeInvalid   = "invalid"
)

// Errors of the agent folder operations callers branch on.
var (
	// ErrQueued: the server submitted the change but no master answered
	// in time; it waits in the server's outbox and is certified when a
	// master is reachable.
	ErrQueued = errors.New("the change waits for the master: no master reachable now; it is certified when one is")
	// ErrFolderDenied: the requester may not make this change (only a
	// folder's owner shares and unshares it; the owner cannot leave).
	ErrFolderDenied = errors.New("not allowed")
	// ErrNoSuchFolder: the Catalog has no folder with that ID.
	ErrNoSuchFolder = errors.New("no such folder")
	// ErrNotLoggedIn: this agent has no device certificate.
	ErrNotLoggedIn = errors.New("this agent is not logged in: run 'baton login USER@SERVER'")
)

// WrongServerError says that a folder operation must be made at another
// server: the folder's hosting server, or the user's home server.
type WrongServerError struct {
	Server     lpeer.ID
	ServerName string
	Msg        string
}

func (e *WrongServerError) Error() string { return e.Msg }

type agentRequest struct {
	Op     string `cbor:"1,keyasint"`
	Name   string `cbor:"2,keyasint,omitempty"`
	Folder string `cbor:"3,keyasint,omitempty"`
	User   string `cbor:"4,keyasint,omitempty"`
	Right  string `cbor:"5,keyasint,omitempty"`
	// OutsideSymlinks: the folder option (create, options).
	OutsideSymlinks *bool `cbor:"6,keyasint,omitempty"`
	// Keep: the folder option (create, options; see the protocol).
	Keep string `cbor:"7,keyasint,omitempty"`
	// Replicas: the folder option (create, options).
	Replicas *int `cbor:"8,keyasint,omitempty"`
}

type agentResponse struct {
	Code      string `cbor:"1,keyasint,omitempty"`
	Error     string `cbor:"2,keyasint,omitempty"`
	Certified []byte `cbor:"3,keyasint,omitempty"`
	Folder    []byte `cbor:"4,keyasint,omitempty"` // the collections.Folder, CBOR
	Server    string `cbor:"5,keyasint,omitempty"`
	// Context are the certified records the requester needs to verify
	// Certified (its folder's owner and members: their user records),
	// in the order to apply them.
	Context [][]byte `cbor:"6,keyasint,omitempty"`
}

func agentFailure(code, format string, args ...any) agentResponse {
	return agentResponse{Code: code, Error: fmt.Sprintf(format, args...)}
}

// --- the server side ---

func (e *edge) handleAgent(s network.Stream) {
	if e.refuseGuest(s) {
		return
	}
	remote := s.Conn().RemotePeer()
	wire.ServeMsg(s, time.Now().Add(agentTimeout), maxAgentRequest, func(b []byte) (agentResponse, error) {
		ctx, cancel := e.handlerContext(agentTimeout)
		defer cancel()
		return e.serveAgent(ctx, remote, b), nil
	})
}

// serveAgent checks and makes one agent request. Requests are made one at
// a time, so each reads the folder as the previous one left it.
func (e *edge) serveAgent(ctx context.Context, remote lpeer.ID, b []byte) agentResponse {
	var req agentRequest
	if err := canon.Unmarshal(b, &req, maxAgentRequest); err != nil {
		return agentFailure(codeError, "malformed agent request")
	}
	n := e.node
	select {
	case n.agentOps <- struct{}{}:
		defer func() { <-n.agentOps }()
	case <-ctx.Done():
		return agentFailure(codeError, "server busy; try again")
	}
	var newID string
	if req.Op == opCreate {
		var err error
		if newID, err = randomFolderID(); err != nil {
			return agentFailure(codeError, "%v", err)
		}
	}
	type plan struct {
		user   string
		update collections.Update
		folder collections.Folder
		done   string
		resp   agentResponse
	}
	// A change built from a state another change has since moved on from
	// (an administrator's share of the same folder) fails its condition in
	// the log; SubmitBuilt builds it again from the new state.
	var (
		p plan
		r Receipt
	)
	err := SubmitBuilt(ctx, func(ctx context.Context, attempt int) (collections.Update, error) {
		if attempt > 1 {
			e.log.Info("agent request met a concurrent change; building it again", "op", req.Op, "device", remote.String(), "user", p.user, "attempt", attempt)
		}
		var err error
		p, err = query(ctx, e.node, func(d *driver) plan {
			user, ok := d.state.ValidDevice(remote, d.cfg.Now())
			if !ok {
				return plan{resp: agentFailure(codeDenied, "%s is not a valid device of the domain: log in again", remote)}
			}
			u, f, done, resp := d.planAgentOp(user, req, newID)
			return plan{user: user, update: u, folder: f, done: done, resp: resp}
		})
		if err != nil {
			return collections.Update{}, ErrStopped
		}
		if p.resp.Code != "" {
			return collections.Update{}, errAgentRefused
		}
		return p.update, nil
	}, func(ctx context.Context, u collections.Update) error {
		sctx, cancel := context.WithTimeout(ctx, submitWait)
		defer cancel()
		var err error
		r, err = n.Submit(sctx, u)
		if errors.Is(err, ErrNoMaster) {
			r, err = Receipt{Queued: true}, nil
		}
		return err
	})
	switch {
	case errors.Is(err, errAgentRefused):
		e.log.Info("agent request refused", "op", req.Op, "device", remote.String(), "user", p.user, "err", p.resp.Error)
		return p.resp
	case errors.Is(err, ErrStopped):
		return agentFailure(codeError, "server is stopping")
	case errors.Is(err, ErrRejected):
		e.log.Info("agent request rejected", "op", req.Op, "device", remote.String(), "user", p.user, "err", err)
		return agentFailure(codeInvalid, "%v", err)
	case err != nil:
		e.log.Info("agent request failed", "op", req.Op, "device", remote.String(), "user", p.user, "err", err)
		return agentFailure(codeError, "%v", err)
	}
	enc, err := canon.Marshal(p.folder)
	if err != nil {
		return agentFailure(codeInvalid, "%v", err)
	}
	e.log.Info("agent request: "+p.done, "device", remote.String(), "user", p.user, "queued", r.Queued)
	if r.Queued {
		return agentResponse{Code: codeQueued, Error: ErrQueued.Error(), Folder: enc}
	}
	resp := agentResponse{Certified: r.Certified.Marshal(), Folder: enc}
	ctxRecs, _ := query(ctx, e.node, func(d *driver) []collections.Certified {
		return d.state.ViewFor(p.user, nil).Feed(r.Certified, nil)
	})
	for _, c := range ctxRecs {
		// The user records the folder verifies against; its members'
		// devices come with the device's feed.
		if c.Hash() != r.Certified.Hash() && c.Update().Collection == collections.Domain {
			resp.Context = append(resp.Context, c.Marshal())
		}
	}
	return resp
}

// errAgentRefused: the agent's request was refused by the rules (the
// refusal is in the plan).
var errAgentRefused = errors.New("agent request refused")

// planAgentOp checks req by user against the state (the collections
// builders hold the rules) and returns the update to submit, the folder
// it writes and what it does, or a refusal.
func (d *driver) planAgentOp(user string, req agentRequest, newID string) (collections.Update, collections.Folder, string, agentResponse) {
	var (
		u    collections.Update
		f    collections.Folder
		err  error
		done string
	)
	refuse := func(err error) (collections.Update, collections.Folder, string, agentResponse) {
		code := codeInvalid
		switch {
		case errors.Is(err, collections.ErrNotFound):
			code = codeNotFound
		case errors.Is(err, collections.ErrNotAllowed):
			code = codeDenied
		}
		return collections.Update{}, collections.Folder{}, "", agentFailure(code, "%v", err)
	}
	if req.Op == opCreate {
		home, ok := d.state.HomeServer(user)
		if !ok {
			return collections.Update{}, f, "", agentFailure(codeDenied, "%s is not a user of the domain", user)
		}
		if home != d.self {
			return collections.Update{}, f, "", agentResponse{Code: codeElsewhere, Server: home.String(),
				Error: fmt.Sprintf("user %s's home server is %s (%s): folders are created there", user, d.hostName(home), home)}
		}
		p, err := ParseOptions(req.OutsideSymlinks, req.Keep, req.Replicas)
		if err != nil {
			return collections.Update{}, f, "", agentFailure(codeInvalid, "%v", err)
		}
		if u, f, err = d.state.CreateFolderWith(newID, req.Name, user, d.self, p); err != nil {
			return refuse(err)
		}
		return u, f, fmt.Sprintf("folder %s (%s) created for %s", f.Name, f.ID, user), agentResponse{}
	}

	cur, ok := d.state.Folder(req.Folder)
	if _, member := cur.Members[user]; !ok || !member {
		// A folder the user is not in is answered as none at all: its
		// name, owner and server are not the requester's to learn.
		return collections.Update{}, f, "", agentFailure(codeNotFound, "no folder %s in the domain", req.Folder)
	}
	if cur.Server != d.self.String() {
		srv, _ := lpeer.Decode(cur.Server)
		return collections.Update{}, f, "", agentResponse{Code: codeElsewhere, Server: cur.Server,
			Error: fmt.Sprintf("folder %s (%s) is hosted on %s (%s): ask there", cur.Name, cur.ID, d.hostName(srv), cur.Server)}
	}
	switch req.Op {
	case opShare:
		u, f, err = d.state.Share(req.Folder, user, req.User, collections.Right(req.Right))
		done = fmt.Sprintf("folder %s (%s) shared with %s (%s)", cur.Name, cur.ID, req.User, req.Right)
	case opUnshare:
		u, f, err = d.state.Unshare(req.Folder, user, req.User)
		done = fmt.Sprintf("folder %s (%s) no longer shared with %s", cur.Name, cur.ID, req.User)
	case opLeave:
		u, f, err = d.state.Leave(req.Folder, user)
		done = fmt.Sprintf("%s left folder %s (%s)", user, cur.Name, cur.ID)
	case opOptions:
		p, perr := ParseOptions(req.OutsideSymlinks, req.Keep, req.Replicas)
		if perr != nil {
			return collections.Update{}, f, "", agentFailure(codeInvalid, "%v", perr)
		}
		u, f, err = d.state.SetFolderOptions(req.Folder, user, p)
		if err == nil {
			done = fmt.Sprintf("folder %s (%s) options set: outside symlinks %v, history kept by %s, %d replicas", cur.Name, cur.ID, f.OutsideSymlinks, cmp.Or(f.Keep, "the default policy"), f.Replicas)
		}
	default:
		return collections.Update{}, f, "", agentFailure(codeInvalid, "unknown operation %q", req.Op)
	}
	if err != nil {
		return refuse(err)
	}
	return u, f, done, agentResponse{}
}

// randomFolderID is 16 random hex characters.
func randomFolderID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making a folder ID: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// --- the agent side ---

// CreateFolder asks this agent's home server to create a folder named
// name, owned by the agent's user and hosted on the home server. It returns
// the folder once the master certified it (this agent's copy of the
// Catalog then holds it). If no master is reachable it returns the folder
// and ErrQueued: the server keeps the change and sends it later.
func (n *Node) CreateFolder(ctx context.Context, name string) (collections.Folder, error) {
	return n.agentOp(ctx, agentRequest{Op: opCreate, Name: name})
}

// ShareFolder asks the folder's hosting server to give user right (ro or
// rw) in folder id; sharing again changes the right. Only the owner's
// devices may. ErrQueued as for CreateFolder.
func (n *Node) ShareFolder(ctx context.Context, id, user string, right collections.Right) error {
	if right != collections.RightReadOnly && right != collections.RightReadWrite {
		return fmt.Errorf("right %q: want ro or rw", right)
	}
	if err := identity.ValidateName(user); err != nil {
		return fmt.Errorf("user name: %w", err)
	}
	_, err := n.agentOp(ctx, agentRequest{Op: opShare, Folder: id, User: user, Right: string(right)})
	return err
}

// UnshareFolder asks the folder's hosting server to remove user from
// folder id. Only the owner's devices may.
func (n *Node) UnshareFolder(ctx context.Context, id, user string) error {
	if err := identity.ValidateName(user); err != nil {
		return fmt.Errorf("user name: %w", err)
	}
	_, err := n.agentOp(ctx, agentRequest{Op: opUnshare, Folder: id, User: user})
	return err
}

// CreateFolderWith is CreateFolder with the folder options p gives (the
// home server builds the folder with collections.State.CreateFolderWith).
func (n *Node) CreateFolderWith(ctx context.Context, name string, p collections.OptionsPatch) (collections.Folder, error) {
	return n.agentOp(ctx, agentRequest{Op: opCreate, Name: name, OutsideSymlinks: p.OutsideSymlinks, Keep: keepWire(p.Keep), Replicas: p.Replicas})
}

// SetFolderOptions asks the folder's home server to set the options p
// gives of folder id, the others staying as they are
// (collections.State.SetFolderOptions). Only the owner's devices may.
// ErrQueued as for CreateFolder.
func (n *Node) SetFolderOptions(ctx context.Context, id string, p collections.OptionsPatch) error {
	if p.Empty() {
		return errors.New("setting folder options: no option to set")
	}
	_, err := n.agentOp(ctx, agentRequest{Op: opOptions, Folder: id, OutsideSymlinks: p.OutsideSymlinks, Keep: keepWire(p.Keep), Replicas: p.Replicas})
	return err
}

// keepWire is the Keep field of an agent request for the patch's Keep:
// "" to leave it, KeepDefault for the default.
func keepWire(keep *string) string {
	if keep == nil {
		return ""
	}
	return cmp.Or(*keep, KeepDefault)
}

// LeaveFolder asks the folder's hosting server to remove this agent's user
// from folder id. The owner cannot leave their own folder.
func (n *Node) LeaveFolder(ctx context.Context, id string) error {
	_, err := n.agentOp(ctx, agentRequest{Op: opLeave, Folder: id})
	return err
}

// agentOp sends req to the server that must make it (the home server for
// a create, the folder's hosting server otherwise) and, when the change
// is certified, applies it to this node's state before returning.
func (n *Node) agentOp(ctx context.Context, req agentRequest) (collections.Folder, error) {
	var (
		h      host.Host
		target lpeer.AddrInfo
		err    error
	)
	if derr := n.do(ctx, func(_ context.Context, d *driver) {
		h = d.host
		target, err = d.agentTarget(req)
	}); derr != nil {
		return collections.Folder{}, derr
	}
	if err != nil {
		return collections.Folder{}, err
	}
	b, err := canon.Marshal(req)
	if err != nil {
		return collections.Folder{}, err
	}
	resp, err := agentExchange(ctx, h, target, b)
	if err != nil {
		return collections.Folder{}, err
	}
	var f collections.Folder
	if len(resp.Folder) > 0 {
		if err := canon.Unmarshal(resp.Folder, &f, maxAgentResponse); err != nil {
			f = collections.Folder{}
		}
	}
	switch resp.Code {
	case "":
	case codeQueued:
		return f, ErrQueued
	case codeElsewhere:
		srv, _ := lpeer.Decode(resp.Server)
		return collections.Folder{}, &WrongServerError{Server: srv, ServerName: n.hostNameOf(ctx, srv), Msg: resp.Error}
	case codeDenied:
		return collections.Folder{}, fmt.Errorf("%w: %s", ErrFolderDenied, resp.Error)
	case codeNotFound:
		if req.Op != opCreate && req.User == "" {
			return collections.Folder{}, fmt.Errorf("%w: %s", ErrNoSuchFolder, resp.Error)
		}
		return collections.Folder{}, fmt.Errorf("%w: %s", errRemote, resp.Error)
	default:
		return collections.Folder{}, fmt.Errorf("%w: %s", errRemote, resp.Error)
	}
	c, err := collections.UnmarshalCertified(resp.Certified)
	if err != nil {
		return collections.Folder{}, fmt.Errorf("certified update from %s: %w", target.ID, err)
	}
	if cu := c.Update(); cu.Collection != collections.Catalog || cu.Author != target.ID.String() || cu.Delete {
		return collections.Folder{}, fmt.Errorf("server %s answered with an unrelated update (%s)", target.ID, cu.Key)
	}
	if v, err := c.Update().Decode(); err == nil {
		if fv, ok := v.(collections.Folder); ok {
			f = fv
		}
	}
	var needs []collections.Certified
	for _, b := range resp.Context {
		nc, err := collections.UnmarshalCertified(b)
		if err != nil {
			return collections.Folder{}, fmt.Errorf("certified update from %s: %w", target.ID, err)
		}
		if nc.Update().Collection != collections.Domain || !strings.HasPrefix(nc.Update().Key, collections.UserPrefix) {
			return collections.Folder{}, fmt.Errorf("server %s answered with an unrelated update (%s)", target.ID, nc.Update().Key)
		}
		needs = append(needs, nc)
	}
	// Apply it now, so this node's view holds the change when we return;
	// the feed brings the same update again, which then changes nothing.
	// The user records it needs come first (each verified as usual; one
	// already held changes nothing).
	var v collections.Verdict
	var aerr error
	if derr := n.do(ctx, func(_ context.Context, d *driver) {
		for _, nc := range needs {
			_, _ = d.applyCertified(nc, collections.VerifyOptions{}, "agent-op")
		}
		v, aerr = d.applyCertified(c, collections.VerifyOptions{}, "agent-op")
	}); derr != nil {
		return f, derr
	}
	if v.Outcome == collections.Rejected { // Duplicate or Stale: gossip was faster
		return f, fmt.Errorf("the certified change from %s does not verify here: %w", target.ID, aerr)
	}
	return f, nil
}

// hostNameOf is id's host name in this node's state, or its ID.
func (n *Node) hostNameOf(ctx context.Context, id lpeer.ID) string {
	name := id.String()
	_ = n.do(ctx, func(_ context.Context, d *driver) { name = d.hostName(id) })
	return name
}

// agentTarget is the server that must make req, with the addresses an
// agent dials (public first).
func (d *driver) agentTarget(req agentRequest) (lpeer.AddrInfo, error) {
	if d.cfg.Role != identity.RoleAgent || d.auth == nil || d.auth.cert == nil {
		return lpeer.AddrInfo{}, ErrNotLoggedIn
	}
	var server lpeer.ID
	if req.Op == opCreate {
		home, ok := d.state.HomeServer(d.auth.certInfo.User)
		if !ok {
			// A device that just logged in has its view of the domain
			// from its servers within moments: say so.
			return lpeer.AddrInfo{}, fmt.Errorf("%w: %s is not a user of the domain as this device knows it yet (a device learns the domain from its servers moments after it starts: try again)", ErrNoSuchUser, d.auth.certInfo.User)
		}
		server = home
	} else {
		f, ok := d.state.Folder(req.Folder)
		if !ok {
			return lpeer.AddrInfo{}, fmt.Errorf("%w: %s", ErrNoSuchFolder, req.Folder)
		}
		id, err := lpeer.Decode(f.Server)
		if err != nil {
			return lpeer.AddrInfo{}, fmt.Errorf("folder %s names a bad server: %w", f.ID, err)
		}
		server = id
	}
	return d.hostAddrInfo(server), nil
}

// hostAddrInfo is the server's ID and the addresses its host record
// gives, public ones first.
func (d *driver) hostAddrInfo(server lpeer.ID) lpeer.AddrInfo {
	info := lpeer.AddrInfo{ID: server}
	if rec, ok := d.state.HostByID(server); ok {
		for _, s := range append(append([]string{}, rec.PublicAddrs...), rec.PrivateAddrs...) {
			if a, err := ma.NewMultiaddr(s); err == nil {
				info.Addrs = append(info.Addrs, a)
			}
		}
	}
	return info
}

// agentExchange makes one agent request to info.
func agentExchange(ctx context.Context, h host.Host, info lpeer.AddrInfo, req []byte) (agentResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	return call[agentResponse](ctx, h, info, protoAgent, req, maxAgentResponse)
}
