package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/baton-sync/baton/internal/control"
)

// Actions are the changes the pages offer: control API operations, one
// each, as the CLI makes them. *control.Client has them.
type Actions interface {
	AddUser(ctx context.Context, wait time.Duration, req control.AddUserRequest) (control.MutationResult, error)
	RemoveUser(ctx context.Context, wait time.Duration, name string, req control.RemoveUserRequest) (control.MutationResult, error)
	RevokeDevice(ctx context.Context, id string) (control.MutationResult, error)
	AgentCreate(ctx context.Context, wait time.Duration, req control.AgentCreateRequest) (control.AgentResult, error)
	AgentShare(ctx context.Context, wait time.Duration, req control.AgentShareRequest) (control.AgentResult, error)
	AgentAccept(ctx context.Context, wait time.Duration, req control.AgentAcceptRequest) (control.AgentResult, error)
	AgentLeave(ctx context.Context, wait time.Duration, req control.AgentFolderRequest) (control.AgentResult, error)
	AgentRevert(ctx context.Context, req control.AgentFolderRequest) (control.AgentResult, error)
}

var _ Actions = (*control.Client)(nil)

// actionWait is how long a page's change waits for the master.
const actionWait = control.DefaultWait

// action is one form of the pages: it reads the form and makes the
// change, answering what was done.
type action func(ctx context.Context, a Actions, form url.Values) (string, error)

// actions are the pages' forms, by name (POST /action/{name}).
var actions = map[string]action{
	"user-add": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		r, err := a.AddUser(ctx, actionWait, control.AddUserRequest{Name: f.Get("name"), HomeServer: f.Get("home_server")})
		return mutationDone(r), err
	},
	"user-remove": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		r, err := a.RemoveUser(ctx, actionWait, f.Get("name"), control.RemoveUserRequest{TransferTo: f.Get("transfer_to")})
		return mutationDone(r), err
	},
	"device-revoke": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		r, err := a.RevokeDevice(ctx, f.Get("id"))
		return mutationDone(r), err
	},
	"folder-create": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		path, err := absPath(f.Get("path"))
		if err != nil {
			return "", err
		}
		r, err := a.AgentCreate(ctx, actionWait, control.AgentCreateRequest{Name: f.Get("name"), Path: path})
		return agentDone(r), err
	},
	"folder-share": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		r, err := a.AgentShare(ctx, actionWait, control.AgentShareRequest{Folder: f.Get("folder"), User: f.Get("user"), Rights: f.Get("rights")})
		return agentDone(r), err
	},
	"folder-accept": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		path, err := absPath(f.Get("path"))
		if err != nil {
			return "", err
		}
		r, err := a.AgentAccept(ctx, actionWait, control.AgentAcceptRequest{Folder: f.Get("folder"), Path: path})
		return agentDone(r), err
	},
	"folder-leave": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		r, err := a.AgentLeave(ctx, actionWait, control.AgentFolderRequest{Folder: f.Get("folder")})
		return agentDone(r), err
	},
	"folder-revert": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		r, err := a.AgentRevert(ctx, control.AgentFolderRequest{Folder: f.Get("folder")})
		return agentDone(r), err
	},
}

func mutationDone(r control.MutationResult) string {
	if r.Queued {
		return r.Done + " (queued: no master reachable yet)"
	}
	return r.Done
}

func agentDone(r control.AgentResult) string {
	s := r.Done
	if r.Queued {
		s += " (queued: the hosting server waits for the master)"
	}
	if r.Warning != "" {
		s += "; " + r.Warning
	}
	return s
}

// absPath is a folder path typed in a page: it must be absolute, since the
// daemon's working directory means nothing to the user.
func absPath(p string) (string, error) {
	p = strings.TrimSpace(p)
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("the path %q is not absolute: give the folder's full path on this machine", p)
	}
	return filepath.Clean(p), nil
}

// act serves POST /action/{name}: the change, then back to the page with
// what was done or why not. Only the console's own pages can post here
// (cross-origin requests are refused, the session cookie is SameSite=Strict).
func (c *Console) act(w http.ResponseWriter, r *http.Request) {
	fn, ok := actions[r.PathValue("name")]
	if !ok || c.cfg.Actions == nil {
		http.NotFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	ctx := control.WithSource(r.Context(), "console "+r.RemoteAddr)
	done, err := fn(ctx, c.cfg.Actions, r.PostForm)
	q := url.Values{}
	if err != nil {
		c.cfg.Log.Info("console: change refused", "action", r.PathValue("name"), "remote", r.RemoteAddr, "err", err)
		q.Set("error", err.Error())
	} else {
		q.Set("done", done)
	}
	http.Redirect(w, r, "/?"+q.Encode(), http.StatusSeeOther)
}
