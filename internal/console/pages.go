package console

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/baton-sync/baton/internal/bytesize"
	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
)

//go:embed web/*.html web/static/*
var webFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"bytes":   bytesize.FormatTenths,
	"percent": func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
	"since": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.Format("2006-01-02 15:04:05")
	},
	"join": strings.Join,
	"rate": func(r float64) string {
		if r < 1 {
			return "–"
		}
		return bytesize.FormatTenths(int64(r)) + "/s"
	},
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12] + "…"
		}
		return s
	},
}).ParseFS(webFS, "web/*.html"))

// pageRoutes adds the pages and their assets to mux.
func (c *Console) pageRoutes(mux *http.ServeMux) {
	static, _ := fs.Sub(webFS, "web")
	mux.Handle("GET /static/", http.FileServerFS(static))
	mux.Handle("GET /{$}", c.auth(http.HandlerFunc(c.home), false))
	mux.Handle("GET /folder/{id}", c.auth(http.HandlerFunc(c.folderPage), false))
	mux.Handle("GET /folder/{id}/conflict", c.auth(http.HandlerFunc(c.conflictFile), false))
	mux.Handle("POST /action/{name}", c.auth(http.HandlerFunc(c.act), false))
}

// loginPage is GET /login: the form, or a one-time login code
// (?code=) exchanged for a session.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if code := r.URL.Query().Get("code"); code != "" {
		id, err := c.sessions.redeem(code)
		if err != nil {
			c.loginFailed(w, r, fmt.Errorf("login code: %w", err), "This login link was used already or is too old: run 'baton gui' again.")
			return
		}
		c.cfg.Monitor.consoleLogins.WithLabelValues("succeeded").Inc()
		c.cfg.Log.Info("console login with a login code", "remote", r.RemoteAddr)
		c.setSession(w, r, id)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.renderLogin(w, "")
}

func (c *Console) renderLogin(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, "login.html", map[string]any{"Error": msg, "Passwords": c.cfg.Passwords != nil}); err != nil {
		c.cfg.Log.Warn("console: rendering the login page", "err", err)
	}
}

// homeData is what the home page shows.
type homeData struct {
	view
	Agent    bool
	Err      string
	Users    []control.User
	Devices  []peer.DeviceInfo
	Security []Event
	// Device is an agent's device and its login; DeviceErr says why it
	// is not known.
	Device    control.AgentDevice
	DeviceErr string
	// Shared are an agent's folders not synced here (to accept).
	Shared []control.AgentFolder
	// CanAct: the page offers its changes (Config.Actions is set).
	CanAct bool
	// Done and Error say how the last change went.
	Done, Error string
	// Reachable are the IDs of the chain's servers connected to this host
	// (and its own).
	Reachable map[string]bool
	Now       time.Time
}

// home is GET /: the agent's or the server's page.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout)
	defer cancel()
	v, err := readView(ctx, c.cfg.Source)
	c.cfg.Monitor.noteRates(v.Folders, c.cfg.Now())
	d := homeData{view: v, Agent: isAgent(v.Status), Now: c.cfg.Now(), CanAct: c.cfg.Actions != nil,
		Done: r.URL.Query().Get("done"), Error: r.URL.Query().Get("error")}
	if d.Agent && err == nil {
		if d.Device, err = c.cfg.Source.AgentDevice(ctx); err != nil {
			d.DeviceErr = err.Error()
		}
		if all, err := c.cfg.Source.AgentFolders(ctx); err == nil {
			for _, f := range all {
				if f.Path == "" {
					d.Shared = append(d.Shared, f)
				}
			}
		}
	}
	for i := range d.Folders {
		d.Folders[i].Conflicts = c.cfg.Monitor.Conflicts(d.Folders[i].ID)
	}
	if err != nil {
		d.Err = err.Error()
	}
	if !d.Agent && err == nil {
		d.Users, _ = c.cfg.Source.Users(ctx)
		for _, u := range d.Users {
			if u.HomeServer != v.Status.ID {
				continue // its devices are listed at its home server
			}
			devs, _ := c.cfg.Source.Devices(ctx, u.Name)
			d.Devices = append(d.Devices, devs...)
		}
		d.Security = c.cfg.Monitor.RecentSecurity()
		d.Reachable = map[string]bool{v.Status.ID: true}
		for _, p := range v.Status.Peers {
			d.Reachable[p.ID] = true
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, "home.html", d); err != nil {
		c.cfg.Log.Warn("console: rendering the home page", "err", err)
	}
}
