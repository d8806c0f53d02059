package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/peer"
)

// maxResponse caps a control API response.
const maxResponse = 64 << 20

// QueryTimeout bounds a request that does not wait for the master: a read,
// a promotion, a password, a rescan. A mutation waits up to its wait plus
// QueryTimeout.
const QueryTimeout = 30 * time.Second

// revertTimeout bounds a revert, which rewrites the folder's changed files.
const revertTimeout = 10 * time.Minute

// Client talks to the daemon of one home over its control socket. Its
// methods are the control API's operations, one each.
type Client struct {
	home string
	sock string
	hc   *http.Client
	// StartHint, if set, ends a NoDaemonError's message: how to start one.
	StartHint string
}

// NewClient returns a client of the daemon in home. It connects at each
// request.
func NewClient(home string) *Client {
	sock := SocketPath(home)
	return &Client{
		home: home,
		sock: sock,
		hc: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
			DisableKeepAlives: true, // one request per command
		}},
	}
}

// RemoteError is an error the daemon answered with.
type RemoteError struct {
	Code string // one of the Code* constants
	Msg  string
}

func (e *RemoteError) Error() string { return e.Msg }

// NoDaemonError says that nothing answers on the home's control socket:
// there is none, or the daemon that made it is gone.
type NoDaemonError struct {
	Home string
	Hint string // how to start one; "" for none
}

func (e *NoDaemonError) Error() string {
	if e.Hint == "" {
		return "no daemon running in " + e.Home
	}
	return fmt.Sprintf("no daemon running in %s (%s)", e.Home, e.Hint)
}

// call sends a request with body (nil for none) as JSON within timeout
// and decodes the answer into a Resp. query may be nil.
func call[Resp any](ctx context.Context, c *Client, timeout time.Duration, method, path string, query url.Values, body any) (Resp, error) {
	var out Resp
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return out, err
		}
		rd = bytes.NewReader(data)
	}
	u := url.URL{Scheme: "http", Host: "baton", Path: path}
	if query != nil {
		u.RawQuery = query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return out, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || refused(err) {
			return out, &NoDaemonError{Home: c.home, Hint: c.StartHint}
		}
		if ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return out, fmt.Errorf("the daemon in %s did not answer in time", c.home)
			}
			return out, ctx.Err()
		}
		return out, fmt.Errorf("control socket %s: %w", c.sock, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return out, fmt.Errorf("reading the daemon's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var ej ErrorBody
		if err := json.Unmarshal(data, &ej); err != nil || ej.Error == "" {
			return out, fmt.Errorf("the daemon answered %s", resp.Status)
		}
		if ej.Code == CodeNotMaster {
			nm := &peer.NotMasterError{MasterName: ej.MasterName}
			if id, err := lpeer.Decode(ej.Master); err == nil {
				nm.Master = id
			}
			return out, nm
		}
		return out, &RemoteError{Code: ej.Code, Msg: ej.Error}
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out, fmt.Errorf("decoding the daemon's answer: %w", err)
	}
	return out, nil
}

// get runs a read-only request.
func get[Resp any](ctx context.Context, c *Client, path string, query url.Values) (Resp, error) {
	return call[Resp](ctx, c, QueryTimeout, http.MethodGet, path, query, nil)
}

// mutate runs a mutation that waits up to wait for the master's receipt
// (the daemon then answers "queued").
func mutate[Resp any](ctx context.Context, c *Client, wait time.Duration, method, path string, body any) (Resp, error) {
	return call[Resp](ctx, c, wait+QueryTimeout, method, path, url.Values{"wait": {wait.String()}}, body)
}

// Status is the node's status.
func (c *Client) Status(ctx context.Context) (peer.Status, error) {
	return get[peer.Status](ctx, c, "/v1/status", nil)
}

// Users lists the domain's users.
func (c *Client) Users(ctx context.Context) ([]User, error) {
	return get[[]User](ctx, c, "/v1/users", nil)
}

// AddUser adds a user.
func (c *Client) AddUser(ctx context.Context, wait time.Duration, req AddUserRequest) (MutationResult, error) {
	return mutate[MutationResult](ctx, c, wait, http.MethodPost, "/v1/users", req)
}

// RemoveUser removes user name.
func (c *Client) RemoveUser(ctx context.Context, wait time.Duration, name string, req RemoveUserRequest) (MutationResult, error) {
	return mutate[MutationResult](ctx, c, wait, http.MethodDelete, "/v1/users/"+url.PathEscape(name), req)
}

// SetUser changes user name's quota or admin flag.
func (c *Client) SetUser(ctx context.Context, wait time.Duration, name string, req SetUserRequest) (MutationResult, error) {
	return mutate[MutationResult](ctx, c, wait, http.MethodPatch, "/v1/users/"+url.PathEscape(name), req)
}

// Servers lists the chain, in order.
func (c *Client) Servers(ctx context.Context) ([]ChainServer, error) {
	return get[[]ChainServer](ctx, c, "/v1/servers", nil)
}

// AddServer adds a server to the chain.
func (c *Client) AddServer(ctx context.Context, wait time.Duration, req AddServerRequest) (MutationResult, error) {
	return mutate[MutationResult](ctx, c, wait, http.MethodPost, "/v1/servers", req)
}

// RemoveServer removes server name (or peer ID) from the domain.
func (c *Client) RemoveServer(ctx context.Context, wait time.Duration, name string) (MutationResult, error) {
	return mutate[MutationResult](ctx, c, wait, http.MethodDelete, "/v1/servers/"+url.PathEscape(name), nil)
}

// PromoteForce makes the daemon's server the chain's only voter.
func (c *Client) PromoteForce(ctx context.Context) (peer.Promotion, error) {
	return call[peer.Promotion](ctx, c, QueryTimeout, http.MethodPost, "/v1/servers/promote", nil, PromoteRequest{Force: true})
}

// Folders lists the domain's folders.
func (c *Client) Folders(ctx context.Context) ([]Folder, error) {
	return get[[]Folder](ctx, c, "/v1/folders", nil)
}

// CreateFolder creates a folder.
func (c *Client) CreateFolder(ctx context.Context, wait time.Duration, req CreateFolderRequest) (MutationResult, error) {
	return mutate[MutationResult](ctx, c, wait, http.MethodPost, "/v1/folders", req)
}

// ShareFolder shares a folder.
func (c *Client) ShareFolder(ctx context.Context, wait time.Duration, req ShareFolderRequest) (MutationResult, error) {
	return mutate[MutationResult](ctx, c, wait, http.MethodPost, "/v1/folders/share", req)
}

// SetFolderOptions sets a folder's options.
func (c *Client) SetFolderOptions(ctx context.Context, wait time.Duration, req FolderOptionsRequest) (MutationResult, error) {
	return mutate[MutationResult](ctx, c, wait, http.MethodPost, "/v1/folders/options", req)
}

// SetPassword sets user's password at its home server.
func (c *Client) SetPassword(ctx context.Context, user string, password []byte) (OKResult, error) {
	return call[OKResult](ctx, c, QueryTimeout, http.MethodPost, "/v1/users/"+url.PathEscape(user)+"/password", nil, SetPasswordRequest{Password: password})
}

// Devices lists the devices of user ("" for all).
func (c *Client) Devices(ctx context.Context, user string) ([]peer.DeviceInfo, error) {
	var q url.Values
	if user != "" {
		q = url.Values{"user": {user}}
	}
	return get[[]peer.DeviceInfo](ctx, c, "/v1/devices", q)
}

// RevokeDevice revokes the device with peer ID id; it waits DefaultWait
// for the master.
func (c *Client) RevokeDevice(ctx context.Context, id string) (MutationResult, error) {
	return call[MutationResult](ctx, c, DefaultWait+QueryTimeout, http.MethodDelete, "/v1/devices/"+url.PathEscape(id), nil, nil)
}

// AgentDevice is an agent's device and its login.
func (c *Client) AgentDevice(ctx context.Context) (AgentDevice, error) {
	return get[AgentDevice](ctx, c, "/v1/agent/device", nil)
}

// AgentFolders lists an agent's folders: its user's and those shared with
// it.
func (c *Client) AgentFolders(ctx context.Context) ([]AgentFolder, error) {
	return get[[]AgentFolder](ctx, c, "/v1/agent/folders", nil)
}

// AgentCreate creates a folder from an agent.
func (c *Client) AgentCreate(ctx context.Context, wait time.Duration, req AgentCreateRequest) (AgentResult, error) {
	return mutate[AgentResult](ctx, c, wait, http.MethodPost, "/v1/agent/folders", req)
}

// AgentShare shares an agent's folder.
func (c *Client) AgentShare(ctx context.Context, wait time.Duration, req AgentShareRequest) (AgentResult, error) {
	return mutate[AgentResult](ctx, c, wait, http.MethodPost, "/v1/agent/folders/share", req)
}

// AgentUnshare unshares an agent's folder.
func (c *Client) AgentUnshare(ctx context.Context, wait time.Duration, req AgentShareRequest) (AgentResult, error) {
	return mutate[AgentResult](ctx, c, wait, http.MethodPost, "/v1/agent/folders/unshare", req)
}

// AgentAccept syncs a folder on an agent.
func (c *Client) AgentAccept(ctx context.Context, wait time.Duration, req AgentAcceptRequest) (AgentResult, error) {
	return mutate[AgentResult](ctx, c, wait, http.MethodPost, "/v1/agent/folders/accept", req)
}

// AgentLeave leaves a folder shared with the agent's user.
func (c *Client) AgentLeave(ctx context.Context, wait time.Duration, req AgentFolderRequest) (AgentResult, error) {
	return mutate[AgentResult](ctx, c, wait, http.MethodPost, "/v1/agent/folders/leave", req)
}

// AgentSetOptions sets an agent's folder's options.
func (c *Client) AgentSetOptions(ctx context.Context, wait time.Duration, req AgentOptionsRequest) (AgentResult, error) {
	return mutate[AgentResult](ctx, c, wait, http.MethodPost, "/v1/agent/folders/options", req)
}

// AgentRevert reverts a read-only member's local changes.
func (c *Client) AgentRevert(ctx context.Context, req AgentFolderRequest) (AgentResult, error) {
	return call[AgentResult](ctx, c, revertTimeout, http.MethodPost, "/v1/agent/folders/revert", nil, req)
}

// FolderStatus is the state of a folder synced here.
func (c *Client) FolderStatus(ctx context.Context, ref FolderRefRequest) (FolderStatus, error) {
	q := url.Values{"folder": {ref.Folder}}
	if ref.Owner != "" {
		q.Set("owner", ref.Owner)
	}
	return get[FolderStatus](ctx, c, "/v1/folders/status", q)
}

// Rescan asks for the rescan of a folder synced here.
func (c *Client) Rescan(ctx context.Context, ref FolderRefRequest) (OKResult, error) {
	return call[OKResult](ctx, c, QueryTimeout, http.MethodPost, "/v1/folders/rescan", nil, ref)
}

// Reports lists the domain's reports, without their content.
func (c *Client) Reports(ctx context.Context) ([]Report, error) {
	return get[[]Report](ctx, c, "/v1/reports", nil)
}

// Report is report id, with its content.
func (c *Client) Report(ctx context.Context, id string) (Report, error) {
	return get[Report](ctx, c, "/v1/reports/"+url.PathEscape(id), nil)
}

// GenerateReport makes the daemon's host write a report.
func (c *Client) GenerateReport(ctx context.Context, wait time.Duration, req GenerateReportRequest) (MutationResult, error) {
	return mutate[MutationResult](ctx, c, wait, http.MethodPost, "/v1/reports", req)
}

// Home is the baton home whose daemon c talks to.
func (c *Client) Home() string { return c.home }
