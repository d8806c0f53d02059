package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
)

// daemon is what the control API needs from the running node. *peer.Node
// is one; tests use a fake.
type Daemon interface {
	ID() lpeer.ID
	Status(ctx context.Context) (peer.Status, error)
	State(ctx context.Context) (*collections.State, error)
	Submit(ctx context.Context, u collections.Update) (peer.Receipt, error)

	// Users and devices (servers: at the user's home server).
	SetPassword(ctx context.Context, user string, password []byte) error
	Devices(ctx context.Context, user string) ([]peer.DeviceInfo, error)
	RevokeDevice(ctx context.Context, id lpeer.ID) (peer.Receipt, error)
	// PromoteForce makes this server the chain's only voter.
	PromoteForce(ctx context.Context) (peer.Promotion, error)
	// DeviceStatus is an agent's own device certificate.
	DeviceStatus(ctx context.Context) (peer.DeviceStatus, bool, error)

	// Folder changes an agent asks of the hosting server.
	CreateFolder(ctx context.Context, name string) (collections.Folder, error)
	CreateFolderWith(ctx context.Context, name string, p collections.OptionsPatch) (collections.Folder, error)
	SetFolderOptions(ctx context.Context, id string, p collections.OptionsPatch) error
	ShareFolder(ctx context.Context, id, user string, right collections.Right) error
	UnshareFolder(ctx context.Context, id, user string) error
	LeaveFolder(ctx context.Context, id string) error

	// Folder sync: an agent's folders, or the folders a server hosts.
	SyncEngine
	// Folder history: a server's hosted folders', or asked of the
	// hosting server by an agent.
	History
}

var _ Daemon = (*peer.Node)(nil)

// Error codes of the control API.
const (
	CodeInvalid     = "invalid"     // a bad request: bad name, bad rights, bad host record (400)
	CodeNotFound    = "not_found"   // no such user, server, folder or report (404)
	CodeConflict    = "conflict"    // the request contradicts the domain: duplicate, last server, ... (409)
	CodeNotMaster   = "not_master"  // a Domain change at a host that is not the master (409)
	CodeRejected    = "rejected"    // the master refused the update (422)
	CodeUnavailable = "unavailable" // the node is not running (503)
	CodeDenied      = "denied"      // the hosting server refused: not the owner, the owner leaving (403)
	CodeInternal    = "internal"    // anything else (500)
)

// apiError is an error with a control API code.
type apiError struct {
	code string
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errInvalid(format string, args ...any) error {
	return &apiError{CodeInvalid, fmt.Sprintf(format, args...)}
}

func errNotFound(format string, args ...any) error {
	return &apiError{CodeNotFound, fmt.Sprintf(format, args...)}
}

func errConflict(format string, args ...any) error {
	return &apiError{CodeConflict, fmt.Sprintf(format, args...)}
}

// ErrorBody is an error response.
type ErrorBody struct {
	Error      string `json:"error"`
	Code       string `json:"code"`
	Master     string `json:"master,omitempty"`
	MasterName string `json:"master_name,omitempty"`
}

// MutationResult answers a mutation: what was done and the master's
// certification of the last update it submitted, or Queued.
type MutationResult struct {
	Done   string `json:"done"`
	Queued bool   `json:"queued"`
	Epoch  uint64 `json:"epoch,omitempty"`
	Seq    uint64 `json:"seq,omitempty"` // the log index the change was committed at (Epoch is its term)
}

// maxRequestBody caps a request body: a host record plus JSON overhead.
const maxRequestBody = 2 * collections.MaxHostRecordSize

// DefaultWait is how long a mutation waits for the master's receipt.
const DefaultWait = 10 * time.Second

// Config is what a Server needs.
type Config struct {
	Daemon  Daemon
	DataDir string // the node's data directory, for usage reports
	// Home is an agent's baton home (where folders.toml is); "" on a
	// server.
	Home string
	// Symlinks is the policy the sync engine reads, set again from
	// folders.toml on each change; nil: none kept.
	Symlinks *SymlinkPolicy
	Now      func() time.Time
	Rand     io.Reader
	Log      *slog.Logger
}

// NewServer returns a server of the control API for cfg.Daemon. It starts
// nothing: see Serve.
func NewServer(cfg Config) *Server {
	return &Server{d: cfg.Daemon, dataDir: cfg.DataDir, home: cfg.Home, symlinks: cfg.Symlinks, now: cfg.Now, rand: cfg.Rand, log: cfg.Log}
}

// Server serves the control API for a daemon.
type Server struct {
	d       Daemon
	dataDir string // for usage reports
	now     func() time.Time
	rand    io.Reader
	log     *slog.Logger
	// An agent's: the home (folders.toml).
	home      string
	foldersMu sync.Mutex     // serializes changes to folders.toml and the engine's set
	symlinks  *SymlinkPolicy // set from folders.toml on each change; nil: none kept
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", handle(s, noRequest, s.getStatus))
	mux.HandleFunc("GET /v1/users", handle(s, noRequest, s.listUsers))
	mux.HandleFunc("POST /v1/users", mutation(s, body[AddUserRequest], s.addUser))
	mux.HandleFunc("DELETE /v1/users/{name}", mutation(s, readUserRemoval, s.removeUser))
	mux.HandleFunc("PATCH /v1/users/{name}", mutation(s, readUserChange, s.setUser))
	mux.HandleFunc("GET /v1/servers", handle(s, noRequest, s.listServers))
	mux.HandleFunc("POST /v1/servers", mutation(s, body[AddServerRequest], s.addServer))
	mux.HandleFunc("DELETE /v1/servers/{name}", mutation(s, pathValue("name"), s.removeServer))
	mux.HandleFunc("POST /v1/servers/promote", handle(s, body[PromoteRequest], s.promoteServer))
	mux.HandleFunc("GET /v1/folders", handle(s, noRequest, s.listFolders))
	mux.HandleFunc("POST /v1/folders", mutation(s, body[CreateFolderRequest], s.createFolder))
	mux.HandleFunc("POST /v1/folders/share", mutation(s, body[ShareFolderRequest], s.shareFolder))
	mux.HandleFunc("POST /v1/folders/options", mutation(s, body[FolderOptionsRequest], s.setFolderOptions))
	mux.HandleFunc("POST /v1/agent/folders/options", mutation(s, body[AgentOptionsRequest], s.agentSetOptions))
	mux.HandleFunc("POST /v1/users/{name}/password", handle(s, readPasswordChange, s.setPassword))
	mux.HandleFunc("GET /v1/devices", handle(s, queryValue("user"), s.listDevices))
	mux.HandleFunc("DELETE /v1/devices/{id}", handle(s, pathValue("id"), s.revokeDevice))
	mux.HandleFunc("GET /v1/agent/folders", handle(s, noRequest, s.agentFolders))
	mux.HandleFunc("GET /v1/agent/device", handle(s, noRequest, s.agentDevice))
	mux.HandleFunc("POST /v1/agent/folders", mutation(s, body[AgentCreateRequest], s.agentCreate))
	mux.HandleFunc("POST /v1/agent/folders/share", mutation(s, body[AgentShareRequest], s.agentShare))
	mux.HandleFunc("POST /v1/agent/folders/unshare", mutation(s, body[AgentShareRequest], s.agentUnshare))
	mux.HandleFunc("POST /v1/agent/folders/accept", handle(s, body[AgentAcceptRequest], s.agentAccept))
	mux.HandleFunc("POST /v1/agent/folders/leave", mutation(s, body[AgentFolderRequest], s.agentLeave))
	mux.HandleFunc("GET /v1/folders/status", handle(s, readFolderRef, s.folderStatus))
	mux.HandleFunc("POST /v1/folders/rescan", handle(s, body[FolderRefRequest], s.folderRescan))
	mux.HandleFunc("POST /v1/agent/folders/revert", handle(s, body[AgentFolderRequest], s.agentRevert))
	mux.HandleFunc("GET /v1/folders/history", handle(s, readHistoryRequest, s.folderHistory))
	mux.HandleFunc("POST /v1/folders/restore", handle(s, body[RestoreRequest], s.folderRestore))
	mux.HandleFunc("POST /v1/folders/export", handle(s, body[ExportRequest], s.folderExport))
	mux.HandleFunc("GET /v1/reports", handle(s, noRequest, s.listReports))
	mux.HandleFunc("GET /v1/reports/{id}", handle(s, pathValue("id"), s.showReport))
	mux.HandleFunc("POST /v1/reports", mutation(s, body[GenerateReportRequest], s.generateReport))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errNotFound("no control API endpoint %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// controlSource is the source the log gives for what the control API
// does: the socket is 0600 in a 0700 home, so it is this host's
// administrator (the user the daemon runs as).
const controlSource = "control socket"

// handle serves an endpoint: read takes its request from the HTTP request
// (body, path or query), fn answers it, and the answer (or the error) is
// written as JSON.
func handle[Req, Resp any](s *Server, read func(*http.Request) (Req, error), fn func(context.Context, Req) (Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		req, err := read(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		resp, err := fn(r.Context(), req)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if m, ok := any(resp).(MutationResult); ok {
			s.log.Info("control: "+m.Done, "source", requestSource(r.Context()), "queued", m.Queued, "epoch", m.Epoch, "seq", m.Seq)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	}
}

// mutation is handle for an endpoint that submits changes: fn's context
// ends after the request's ?wait= (DefaultWait without one).
func mutation[Req, Resp any](s *Server, read func(*http.Request) (Req, error), fn func(context.Context, Req) (Resp, error)) http.HandlerFunc {
	type waited struct {
		req  Req
		wait time.Duration
	}
	readWaited := func(r *http.Request) (waited, error) {
		req, err := read(r)
		if err != nil {
			return waited{}, err
		}
		wait, err := waitParam(r)
		return waited{req, wait}, err
	}
	return handle(s, readWaited, func(ctx context.Context, w waited) (Resp, error) {
		ctx, cancel := context.WithTimeout(ctx, w.wait)
		defer cancel()
		return fn(ctx, w.req)
	})
}

// writeError answers r with err, and logs it when the daemon failed (5xx)
// or refused a change.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorResponse(err)
	switch {
	case status >= 500:
		s.log.Warn("control request failed", "method", r.Method, "path", r.URL.Path, "source", requestSource(r.Context()), "err", err)
	case r.Method != http.MethodGet:
		s.log.Info("control request refused", "method", r.Method, "path", r.URL.Path, "source", requestSource(r.Context()), "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// Request readers for handle and mutation.

// noRequest is the request of an endpoint that takes none.
func noRequest(*http.Request) (struct{}, error) { return struct{}{}, nil }

// body reads the JSON request body.
func body[Req any](r *http.Request) (Req, error) {
	var req Req
	err := decodeBody(r, &req)
	return req, err
}

// pathValue reads the path wildcard name.
func pathValue(name string) func(*http.Request) (string, error) {
	return func(r *http.Request) (string, error) { return r.PathValue(name), nil }
}

// queryValue reads the query parameter name ("" if absent).
func queryValue(name string) func(*http.Request) (string, error) {
	return func(r *http.Request) (string, error) { return r.URL.Query().Get(name), nil }
}

// userRemoval is DELETE /v1/users/{name} with its optional body.
type userRemoval struct {
	name string
	RemoveUserRequest
}

func readUserRemoval(r *http.Request) (userRemoval, error) {
	req := userRemoval{name: r.PathValue("name")}
	if r.ContentLength != 0 {
		if err := decodeBody(r, &req.RemoveUserRequest); err != nil {
			return userRemoval{}, err
		}
	}
	return req, nil
}

// passwordChange is POST /v1/users/{name}/password.
type passwordChange struct {
	user string
	SetPasswordRequest
}

func readPasswordChange(r *http.Request) (passwordChange, error) {
	req := passwordChange{user: r.PathValue("name")}
	err := decodeBody(r, &req.SetPasswordRequest)
	return req, err
}

// readFolderRef reads GET /v1/folders/status's ?folder= and ?owner=.
func readFolderRef(r *http.Request) (FolderRefRequest, error) {
	q := r.URL.Query()
	return FolderRefRequest{Folder: q.Get("folder"), Owner: q.Get("owner")}, nil
}

// errorResponse maps an error to its HTTP status and body.
func errorResponse(err error) (int, ErrorBody) {
	var (
		ae *apiError
		nm *peer.NotMasterError
		nh *peer.NotHomeServerError
		ws *peer.WrongServerError
	)
	switch {
	case errors.As(err, &nh):
		return http.StatusConflict, ErrorBody{Error: nh.Error(), Code: CodeConflict}
	case errors.As(err, &ws):
		return http.StatusConflict, ErrorBody{Error: ws.Error(), Code: CodeConflict}
	case errors.Is(err, peer.ErrNoSuchUser), errors.Is(err, peer.ErrNoSuchFolder):
		return http.StatusNotFound, ErrorBody{Error: err.Error(), Code: CodeNotFound}
	case errors.Is(err, peer.ErrFolderDenied):
		return http.StatusForbidden, ErrorBody{Error: err.Error(), Code: CodeDenied}
	case errors.Is(err, peer.ErrNotLoggedIn), errors.Is(err, foldersync.ErrUnknownFolder):
		return http.StatusConflict, ErrorBody{Error: err.Error(), Code: CodeConflict}
	case errors.As(err, &nm):
		return http.StatusConflict, ErrorBody{Error: nm.Error(), Code: CodeNotMaster, Master: nm.Master.String(), MasterName: nm.MasterName}
	case errors.Is(err, peer.ErrNotMaster):
		return http.StatusConflict, ErrorBody{Error: err.Error(), Code: CodeNotMaster}
	case errors.As(err, &ae):
		status := map[string]int{
			CodeInvalid:  http.StatusBadRequest,
			CodeNotFound: http.StatusNotFound,
			CodeConflict: http.StatusConflict,
			CodeDenied:   http.StatusForbidden,
		}[ae.code]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		return status, ErrorBody{Error: ae.msg, Code: ae.code}
	case errors.Is(err, peer.ErrRejected):
		return http.StatusUnprocessableEntity, ErrorBody{Error: err.Error(), Code: CodeRejected}
	case errors.Is(err, peer.ErrStopped):
		return http.StatusServiceUnavailable, ErrorBody{Error: err.Error(), Code: CodeUnavailable}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, ErrorBody{Error: "the daemon did not answer in time: " + err.Error(), Code: CodeUnavailable}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, ErrorBody{Error: fmt.Sprintf("request body over %d bytes", mbe.Limit), Code: CodeInvalid}
	}
	return http.StatusInternalServerError, ErrorBody{Error: err.Error(), Code: CodeInternal}
}

// decodeBody reads a JSON request body into v.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errInvalid("bad request body: %v", err)
	}
	return nil
}

// waitParam is the ?wait= duration of a mutation.
func waitParam(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return DefaultWait, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, errInvalid("wait %q: want a positive duration like 10s", v)
	}
	return d, nil
}

// submitter submits a mutation's updates within one deadline and keeps the
// last receipt.
type submitter struct {
	d          Daemon
	waitMaster func(context.Context) error // Server.requireMaster
	last       peer.Receipt
}

// submit sends u. If the previous update is only queued, later ones are not
// sent: they may depend on it (a chain needs its host's record first).
//
// A Domain update refused because this host is not the master right now is
// sent again once it is: a chain change makes the servers elect again, so
// the update after one may meet an election in progress.
// put submits v at its key.
func (sb *submitter) put(ctx context.Context, v collections.Value) error {
	u, err := collections.Put(v)
	if err != nil {
		return errInvalid("%v", err)
	}
	return sb.submit(ctx, u)
}

// del submits the deletion of key in collection k.
func (sb *submitter) del(ctx context.Context, k collections.Kind, key string) error {
	return sb.submit(ctx, collections.Delete(k, key))
}

func (sb *submitter) submit(ctx context.Context, u collections.Update) error {
	if sb.last.Queued {
		return errConflict("an earlier update of this change is still queued: no master reachable; run the command again once it is certified")
	}
	for {
		rcpt, err := sb.d.Submit(ctx, u)
		if errors.Is(err, peer.ErrNoMaster) {
			rcpt, err = peer.Receipt{Queued: true}, nil
		}
		if errors.Is(err, peer.ErrNotMaster) && u.Collection == collections.Domain && sb.waitMaster != nil && ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(masterPoll):
			}
			if werr := sb.waitMaster(ctx); werr != nil {
				return werr
			}
			continue
		}
		if err != nil {
			return err
		}
		sb.last = rcpt
		return nil
	}
}

func (sb *submitter) result(done string) MutationResult {
	if sb.last.Queued || sb.last.Certified.IsZero() {
		return MutationResult{Done: done, Queued: true}
	}
	return MutationResult{Done: done, Epoch: sb.last.Certified.Epoch(), Seq: sb.last.Certified.MasterSeq()}
}

// submitter returns a submitter for one mutation.
func (s *Server) submitter() *submitter {
	return &submitter{d: s.d, waitMaster: s.requireMaster}
}

func (s *Server) getStatus(ctx context.Context, _ struct{}) (peer.Status, error) {
	return s.d.Status(ctx)
}

// maxSocketPath is the longest unix socket path every supported OS takes
// (sun_path is 104 bytes on the BSDs and macOS, 108 on Linux, with a NUL).
const maxSocketPath = 103

// SocketPath is the control socket of home.
func SocketPath(home string) string { return filepath.Join(home, SocketName) }

// SocketName is the control socket's file name in the baton home.
const SocketName = "control.sock"

// Listen listens on home's control socket. The home is made 0700 and
// the socket 0600. A socket left by a daemon that died is removed; one that
// answers belongs to a running daemon, and Listen refuses to start a
// second.
func Listen(home string) (net.Listener, error) {
	path := SocketPath(home)
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control socket %s is too long for a unix socket (%d bytes, at most %d): use a shorter --home", path, len(path), maxSocketPath)
	}
	st, err := os.Stat(home)
	if err != nil {
		return nil, fmt.Errorf("baton home: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(home, 0o700); err != nil {
			return nil, fmt.Errorf("making the baton home private: %w", err)
		}
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket: move it away", path)
		}
		conn, err := net.DialTimeout("unix", path, 2*time.Second)
		if err == nil {
			conn.Close()
			return nil, fmt.Errorf("a baton daemon is already running in %s (it answers on %s)", home, path)
		}
		// Nobody answers: a daemon died without cleaning up.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("removing stale control socket: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := restrictSocket(path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// Serve serves the control API on ln until ctx ends, then stops
// accepting, ends the requests in flight and closes ln (which removes the
// socket). It returns when all of that is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	reqCtx, cancelReqs := context.WithCancel(context.Background())
	defer cancelReqs()
	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("control API: %w", err)
	case <-ctx.Done():
	}
	// Requests in flight (a mutation waiting for the master) end now: their
	// updates stay in the node's outbox.
	cancelReqs()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	<-errc
	if err != nil {
		srv.Close()
	}
	return nil
}
