package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/baton-sync/baton/internal/bytesize"
	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
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
	AgentUnshare(ctx context.Context, wait time.Duration, req control.AgentShareRequest) (control.AgentResult, error)
	AgentSetOptions(ctx context.Context, wait time.Duration, req control.AgentOptionsRequest) (control.AgentResult, error)
	SetFolderOptions(ctx context.Context, wait time.Duration, req control.FolderOptionsRequest) (control.MutationResult, error)
	RestoreFolder(ctx context.Context, req control.RestoreRequest) (control.RestoreResult, error)
	SetPassword(ctx context.Context, user string, password []byte) (control.OKResult, error)
	SetUser(ctx context.Context, wait time.Duration, name string, req control.SetUserRequest) (control.MutationResult, error)
	ExportFolder(ctx context.Context, req control.ExportRequest) (control.ExportResult, error)
	PromoteForce(ctx context.Context) (peer.Promotion, error)
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
		path, err := folderDir(f.Get("path"))
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
		path, err := folderDir(f.Get("path"))
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
	"folder-unshare": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		r, err := a.AgentUnshare(ctx, actionWait, control.AgentShareRequest{Folder: f.Get("folder"), User: f.Get("user")})
		return agentDone(r), err
	},
	"folder-options": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		outside := f.Get("outside_symlinks") == "on" // the form's checkbox: always set
		r, err := a.AgentSetOptions(ctx, actionWait, control.AgentOptionsRequest{Folder: f.Get("folder"), OutsideSymlinks: &outside})
		return agentDone(r), err
	},
	// hosted-folder-options: a server's folder's options, as 'baton
	// folder set' on the server; every field of the form is sent (keep
	// empty is the default policy).
	"hosted-folder-options": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		outside := f.Get("outside_symlinks") == "on"
		req := control.FolderOptionsRequest{Folder: f.Get("folder"), Owner: f.Get("owner"), OutsideSymlinks: &outside, Keep: strings.TrimSpace(f.Get("keep"))}
		if req.Keep == "" {
			req.Keep = "default"
		}
		n, err := strconv.Atoi(strings.TrimSpace(f.Get("replicas")))
		if err != nil || n < 0 {
			return "", fmt.Errorf("replicas: want a number of servers, 0 or more (not %q)", f.Get("replicas"))
		}
		req.Replicas = &n
		r, err := a.SetFolderOptions(ctx, actionWait, req)
		return mutationDone(r), err
	},
	"folder-restore": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		req := control.RestoreRequest{FolderRefRequest: control.FolderRefRequest{Folder: f.Get("folder")}, Path: f.Get("path")}
		if strings.Trim(req.Path, "/") == "" {
			return "", errors.New("no path to restore: restore the whole folder to a time instead")
		}
		var err error
		if req.Version, err = formVersion(f); err != nil {
			return "", err
		}
		return restoreDone(a.RestoreFolder(ctx, req))
	},
	"folder-restore-all": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		req := control.RestoreRequest{FolderRefRequest: control.FolderRefRequest{Folder: f.Get("folder")}, All: true}
		var err error
		if req.Version, err = formVersion(f); err != nil {
			return "", err
		}
		if req.At, err = formTime(f.Get("at"), time.Local); err != nil {
			return "", err
		}
		if req.Version == 0 && req.At.IsZero() {
			return "", errors.New("restoring the whole folder needs a time (or a version)")
		}
		return restoreDone(a.RestoreFolder(ctx, req))
	},
	"user-set": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		var req control.SetUserRequest
		if q := strings.TrimSpace(f.Get("quota")); q != "" {
			n := int64(0)
			if !strings.EqualFold(q, "none") {
				var err error
				if n, err = bytesize.Parse(q); err != nil {
					return "", fmt.Errorf("quota: %v (or none)", err)
				}
			}
			req.Quota = &n
		}
		switch f.Get("admin") {
		case "yes":
			req.Admin = new(bool)
			*req.Admin = true
		case "no":
			req.Admin = new(bool)
		}
		if req.Quota == nil && req.Admin == nil {
			return "", errors.New("nothing to change: give a quota (such as 10GiB, or none) or choose admin yes or no")
		}
		r, err := a.SetUser(ctx, actionWait, f.Get("name"), req)
		return mutationDone(r), err
	},
	"folder-export": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		dir, err := absPath(f.Get("dir"))
		if err != nil {
			return "", err
		}
		req := control.ExportRequest{FolderRefRequest: control.FolderRefRequest{Folder: f.Get("folder")}, Dir: dir}
		if req.Version, err = formVersion(f); err != nil {
			return "", err
		}
		if req.At, err = formTime(f.Get("at"), time.Local); err != nil {
			return "", err
		}
		r, err := a.ExportFolder(ctx, req)
		return r.Done, err
	},
	"server-promote": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		if f.Get("confirm") != promoteConfirm {
			return "", errors.New("a forced promotion needs its confirmation: tick the box saying that the other servers are lost for good and this one becomes the chain's only voter")
		}
		p, err := a.PromoteForce(ctx)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("this server is the chain's only voter (generation %d; its log ends at term %d, index %d); the log as it was is kept in %s",
			p.Generation, p.Term, p.Index, p.OldLog), nil
	},
	"user-passwd": func(ctx context.Context, a Actions, f url.Values) (string, error) {
		pw, again := f.Get("password"), f.Get("password_again")
		switch {
		case pw == "":
			return "", errors.New("no password given")
		case pw != again:
			return "", errors.New("the two passwords differ: type the same one twice")
		}
		b := []byte(pw)
		defer clear(b)
		r, err := a.SetPassword(ctx, f.Get("name"), b)
		return r.Done, err
	},
}

// promoteConfirm is the value of the forced promotion's confirmation box.
const promoteConfirm = "lost-for-good"

// formVersion is a form's version (0 when absent).
func formVersion(f url.Values) (uint64, error) {
	s := strings.TrimSpace(f.Get("version"))
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("version %q: want a version number the history lists", s)
	}
	return v, nil
}

// formTime is a time typed in a page: RFC 3339, or a browser's local date
// and time (2026-12-04T15:04, of a datetime-local input) in loc, the
// daemon's zone. "" is the zero time.
func formTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want a date and time such as 2026-12-04T15:04", s)
}

func restoreDone(r control.RestoreResult, err error) (string, error) {
	if err != nil {
		return "", err
	}
	s := r.Done
	if len(r.Failed) > 0 {
		s += fmt.Sprintf("; %d failed: %s", len(r.Failed), strings.Join(r.Failed, "; "))
	}
	return s, nil
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

// folderDir is absPath for a folder's directory, made when missing, as
// 'baton folder create' and 'folder accept' make it.
func folderDir(p string) (string, error) {
	path, err := absPath(p)
	if err != nil {
		return "", err
	}
	if err := control.MakeFolderDir(path); err != nil {
		return "", err
	}
	return path, nil
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
	if user := sessionUser(r); user != "" {
		// A user's session (an admin's, on a server): the changes are
		// theirs, and the collections' rules check that they may.
		ctx = control.WithUser(ctx, user)
	}
	done, err := fn(ctx, c.cfg.Actions, r.PostForm)
	back := backTo(r.PostForm.Get("back"))
	q := back.Query()
	if err != nil {
		c.cfg.Log.Info("console: change refused", "action", r.PathValue("name"), "remote", r.RemoteAddr, "err", err)
		q.Set("error", err.Error())
	} else {
		q.Set("done", done)
	}
	back.RawQuery = q.Encode()
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}

// backTo is the page a change returns to: a folder's page when the form
// came from one, else the home page. Nothing but the console's own pages.
func backTo(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(s, "//") ||
		strings.ContainsAny(s, "\\\r\n") || !strings.HasPrefix(u.Path, "/folder/") || strings.Contains(u.Path, "..") {
		return &url.URL{Path: "/"}
	}
	back := &url.URL{Path: u.Path}
	if p := u.Query().Get("path"); p != "" {
		back.RawQuery = url.Values{"path": {p}}.Encode()
	}
	return back
}
