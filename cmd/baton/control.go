package main

// The control API: how the commands below talk to the running daemon
// ('baton run'). It is HTTP with JSON bodies over the unix socket
// <home>/control.sock (mode 0600, in the 0700 home), so only the home's
// owner can reach it.
//
//	GET    /v1/status                 peer.Status
//	GET    /v1/users                  []userJSON
//	POST   /v1/users                  addUserRequest        -> mutationResult
//	DELETE /v1/users/{name}                                 -> mutationResult
//	GET    /v1/servers                []serverJSON (the chain, in order)
//	POST   /v1/servers                addServerRequest      -> mutationResult
//	DELETE /v1/servers/{name}                               -> mutationResult
//	GET    /v1/folders                []folderJSON
//	POST   /v1/folders                createFolderRequest   -> mutationResult
//	POST   /v1/folders/share          shareFolderRequest    -> mutationResult
//	POST   /v1/folders/options        folderOptionsRequest  -> mutationResult
//	POST   /v1/users/{name}/password  setPasswordRequest    -> okResult
//	GET    /v1/devices?user=U         []peer.DeviceInfo
//	DELETE /v1/devices/{id}                                 -> okResult
//	GET    /v1/agent/folders          []agentFolderJSON (an agent's: mine and shared with me)
//	POST   /v1/agent/folders          agentCreateRequest    -> agentResult
//	POST   /v1/agent/folders/share    agentShareRequest     -> agentResult
//	POST   /v1/agent/folders/unshare  agentShareRequest     -> agentResult
//	POST   /v1/agent/folders/accept   agentAcceptRequest    -> agentResult
//	POST   /v1/agent/folders/leave    agentFolderRequest    -> agentResult
//	POST   /v1/agent/folders/options  agentOptionsRequest   -> agentResult
//	GET    /v1/folders/status?folder=REF[&owner=USER]       folderStatusJSON (a folder synced here)
//	POST   /v1/folders/rescan         folderRefRequest      -> okResult
//	POST   /v1/agent/folders/revert   agentFolderRequest    -> agentResult
//	GET    /v1/reports                []reportJSON (no content)
//	GET    /v1/reports/{id}           reportJSON (with content)
//	POST   /v1/reports                generateReportRequest -> mutationResult
//
// Mutations take ?wait=DURATION: how long to wait for the master's receipt
// before answering "queued". Errors are {"error": "...", "code": "..."} with
// a 4xx or 5xx status; code is one of the err* codes below, and not_master
// errors also carry "master" and "master_name".

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
type daemon interface {
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
	CreateFolderWith(ctx context.Context, name string, opts collections.FolderOptions) (collections.Folder, error)
	SetFolderOptions(ctx context.Context, id string, opts collections.FolderOptions) error
	ShareFolder(ctx context.Context, id, user string, right collections.Right) error
	UnshareFolder(ctx context.Context, id, user string) error
	LeaveFolder(ctx context.Context, id string) error

	// Folder sync: an agent's folders, or the folders a server hosts.
	syncEngine
}

var _ daemon = (*peer.Node)(nil)

// Error codes of the control API.
const (
	codeInvalid     = "invalid"     // a bad request: bad name, bad rights, bad host record (400)
	codeNotFound    = "not_found"   // no such user, server, folder or report (404)
	codeConflict    = "conflict"    // the request contradicts the domain: duplicate, last server, ... (409)
	codeNotMaster   = "not_master"  // a Domain change at a host that is not the master (409)
	codeRejected    = "rejected"    // the master refused the update (422)
	codeUnavailable = "unavailable" // the node is not running (503)
	codeDenied      = "denied"      // the hosting server refused: not the owner, the owner leaving (403)
	codeInternal    = "internal"    // anything else (500)
)

// apiError is an error with a control API code.
type apiError struct {
	code string
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errInvalid(format string, args ...any) error {
	return &apiError{codeInvalid, fmt.Sprintf(format, args...)}
}

func errNotFound(format string, args ...any) error {
	return &apiError{codeNotFound, fmt.Sprintf(format, args...)}
}

func errConflict(format string, args ...any) error {
	return &apiError{codeConflict, fmt.Sprintf(format, args...)}
}

// errorJSON is an error response.
type errorJSON struct {
	Error      string `json:"error"`
	Code       string `json:"code"`
	Master     string `json:"master,omitempty"`
	MasterName string `json:"master_name,omitempty"`
}

// mutationResult answers a mutation: what was done and the master's
// certification of the last update it submitted, or Queued.
type mutationResult struct {
	Done   string `json:"done"`
	Queued bool   `json:"queued"`
	Epoch  uint64 `json:"epoch,omitempty"`
	Seq    uint64 `json:"seq,omitempty"` // the log index the change was committed at (Epoch is its term)
}

// maxRequestBody caps a request body: a host record plus JSON overhead.
const maxRequestBody = 2 * collections.MaxHostRecordSize

// defaultWait is how long a mutation waits for the master's receipt.
const defaultWait = 10 * time.Second

// controlServer serves the control API for a daemon.
type controlServer struct {
	d       daemon
	dataDir string // for usage reports
	now     func() time.Time
	rand    io.Reader
	log     *slog.Logger
	// An agent's: the home (folders.toml).
	home      string
	foldersMu sync.Mutex     // serializes changes to folders.toml and the engine's set
	symlinks  *symlinkPolicy // set from folders.toml on each change; nil: none kept
}

func (s *controlServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.serve(s.getStatus))
	mux.HandleFunc("GET /v1/users", s.serve(s.listUsers))
	mux.HandleFunc("POST /v1/users", s.serve(s.addUser))
	mux.HandleFunc("DELETE /v1/users/{name}", s.serve(s.removeUser))
	mux.HandleFunc("GET /v1/servers", s.serve(s.listServers))
	mux.HandleFunc("POST /v1/servers", s.serve(s.addServer))
	mux.HandleFunc("DELETE /v1/servers/{name}", s.serve(s.removeServer))
	mux.HandleFunc("POST /v1/servers/promote", s.serve(s.promoteServer))
	mux.HandleFunc("GET /v1/folders", s.serve(s.listFolders))
	mux.HandleFunc("POST /v1/folders", s.serve(s.createFolder))
	mux.HandleFunc("POST /v1/folders/share", s.serve(s.shareFolder))
	mux.HandleFunc("POST /v1/folders/options", s.serve(s.setFolderOptions))
	mux.HandleFunc("POST /v1/agent/folders/options", s.serve(s.agentSetOptions))
	mux.HandleFunc("POST /v1/users/{name}/password", s.serve(s.setPassword))
	mux.HandleFunc("GET /v1/devices", s.serve(s.listDevices))
	mux.HandleFunc("DELETE /v1/devices/{id}", s.serve(s.revokeDevice))
	mux.HandleFunc("GET /v1/agent/folders", s.serve(s.agentFolders))
	mux.HandleFunc("POST /v1/agent/folders", s.serve(s.agentCreate))
	mux.HandleFunc("POST /v1/agent/folders/share", s.serve(s.agentShare))
	mux.HandleFunc("POST /v1/agent/folders/unshare", s.serve(s.agentUnshare))
	mux.HandleFunc("POST /v1/agent/folders/accept", s.serve(s.agentAccept))
	mux.HandleFunc("POST /v1/agent/folders/leave", s.serve(s.agentLeave))
	mux.HandleFunc("GET /v1/folders/status", s.serve(s.folderStatus))
	mux.HandleFunc("POST /v1/folders/rescan", s.serve(s.folderRescan))
	mux.HandleFunc("POST /v1/agent/folders/revert", s.serve(s.agentRevert))
	mux.HandleFunc("GET /v1/reports", s.serve(s.listReports))
	mux.HandleFunc("GET /v1/reports/{id}", s.serve(s.showReport))
	mux.HandleFunc("POST /v1/reports", s.serve(s.generateReport))
	mux.HandleFunc("/", s.serve(func(r *http.Request) (any, error) {
		return nil, errNotFound("no control API endpoint %s %s", r.Method, r.URL.Path)
	}))
	return mux
}

// controlSource is the source the log gives for what the control API
// does: the socket is 0600 in a 0700 home, so it is this host's
// administrator (the user the daemon runs as).
const controlSource = "control socket"

// serve adapts an endpoint that returns a value to encode or an error.
func (s *controlServer) serve(fn func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		v, err := fn(r)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			status, body := errorResponse(err)
			switch {
			case status >= 500:
				s.log.Warn("control request failed", "method", r.Method, "path", r.URL.Path, "source", controlSource, "err", err)
			case r.Method != http.MethodGet:
				s.log.Info("control request refused", "method", r.Method, "path", r.URL.Path, "source", controlSource, "err", err)
			}
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(body)
			return
		}
		if m, ok := v.(mutationResult); ok {
			s.log.Info("control: "+m.Done, "source", controlSource, "queued", m.Queued, "epoch", m.Epoch, "seq", m.Seq)
		}
		json.NewEncoder(w).Encode(v)
	}
}

// errorResponse maps an error to its HTTP status and body.
func errorResponse(err error) (int, errorJSON) {
	var (
		ae *apiError
		nm *peer.NotMasterError
		nh *peer.NotHomeServerError
		ws *peer.WrongServerError
	)
	switch {
	case errors.As(err, &nh):
		return http.StatusConflict, errorJSON{Error: nh.Error(), Code: codeConflict}
	case errors.As(err, &ws):
		return http.StatusConflict, errorJSON{Error: ws.Error(), Code: codeConflict}
	case errors.Is(err, peer.ErrNoSuchUser), errors.Is(err, peer.ErrNoSuchFolder):
		return http.StatusNotFound, errorJSON{Error: err.Error(), Code: codeNotFound}
	case errors.Is(err, peer.ErrFolderDenied):
		return http.StatusForbidden, errorJSON{Error: err.Error(), Code: codeDenied}
	case errors.Is(err, peer.ErrNotLoggedIn), errors.Is(err, foldersync.ErrUnknownFolder):
		return http.StatusConflict, errorJSON{Error: err.Error(), Code: codeConflict}
	case errors.As(err, &nm):
		return http.StatusConflict, errorJSON{Error: nm.Error(), Code: codeNotMaster, Master: nm.Master.String(), MasterName: nm.MasterName}
	case errors.Is(err, peer.ErrNotMaster):
		return http.StatusConflict, errorJSON{Error: err.Error(), Code: codeNotMaster}
	case errors.As(err, &ae):
		status := map[string]int{
			codeInvalid:  http.StatusBadRequest,
			codeNotFound: http.StatusNotFound,
			codeConflict: http.StatusConflict,
		}[ae.code]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		return status, errorJSON{Error: ae.msg, Code: ae.code}
	case errors.Is(err, peer.ErrRejected):
		return http.StatusUnprocessableEntity, errorJSON{Error: err.Error(), Code: codeRejected}
	case errors.Is(err, peer.ErrStopped):
		return http.StatusServiceUnavailable, errorJSON{Error: err.Error(), Code: codeUnavailable}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, errorJSON{Error: "the daemon did not answer in time: " + err.Error(), Code: codeUnavailable}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, errorJSON{Error: fmt.Sprintf("request body over %d bytes", mbe.Limit), Code: codeInvalid}
	}
	return http.StatusInternalServerError, errorJSON{Error: err.Error(), Code: codeInternal}
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
		return defaultWait, nil
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
	d          daemon
	waitMaster func(context.Context) error // controlServer.requireMaster
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

func (sb *submitter) result(done string) mutationResult {
	if sb.last.Queued || sb.last.Certified.IsZero() {
		return mutationResult{Done: done, Queued: true}
	}
	return mutationResult{Done: done, Epoch: sb.last.Certified.Epoch(), Seq: sb.last.Certified.MasterSeq()}
}

// mutationContext reads ?wait= and returns a context that ends after it.
func (s *controlServer) mutationContext(r *http.Request) (context.Context, context.CancelFunc, error) {
	wait, err := waitParam(r)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	return ctx, cancel, nil
}

// startMutation is mutationContext plus a submitter to submit with.
func (s *controlServer) startMutation(r *http.Request) (context.Context, *submitter, context.CancelFunc, error) {
	ctx, cancel, err := s.mutationContext(r)
	if err != nil {
		return nil, nil, nil, err
	}
	return ctx, &submitter{d: s.d, waitMaster: s.requireMaster}, cancel, nil
}

func (s *controlServer) getStatus(r *http.Request) (any, error) {
	return s.d.Status(r.Context())
}

// maxSocketPath is the longest unix socket path every supported OS takes
// (sun_path is 104 bytes on the BSDs and macOS, 108 on Linux, with a NUL).
const maxSocketPath = 103

// socketPath is the control socket of home.
func socketPath(home string) string { return filepath.Join(home, controlSocket) }

// listenControl listens on home's control socket. The home is made 0700 and
// the socket 0600. A socket left by a daemon that died is removed; one that
// answers belongs to a running daemon, and listenControl refuses to start a
// second.
func listenControl(home string) (net.Listener, error) {
	path := socketPath(home)
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

// serveControl serves the control API on ln until ctx ends, then stops
// accepting, ends the requests in flight and closes ln (which removes the
// socket). It returns when all of that is done.
func serveControl(ctx context.Context, ln net.Listener, s *controlServer) error {
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
