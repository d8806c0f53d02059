package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/baton-sync/baton/internal/console"
	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
)

// consolesDir is where 'baton demo --keep' makes the homes of the hosts'
// consoles, under the demo's directory: one per host, holding gui.token
// and gui.url (and an agent's folders.toml), so that
// 'baton --home DIR gui' opens it.
const consolesDir = "consoles"

// demoConsole is one host's web console in 'baton demo --keep'.
type demoConsole struct {
	name string // the host's name
	home string // the console's home: gui.token, gui.url
	url  string
}

// demoConsoleHost is what serveConsoles needs of a running host.
type demoConsoleHost struct {
	name    string
	node    *peer.Node
	dataDir string
	agent   bool
	// folders are an agent's synced folders.
	folders []control.LocalFolder
}

// consoleHosts lists the running hosts of the demo: the servers, then the
// laptops with the folders they sync (as folders.toml records them).
func (d *demo) consoleHosts(ctx context.Context) ([]demoConsoleHost, error) {
	var hosts []demoConsoleHost
	for _, i := range d.sb.Running() {
		s := d.sb.Server(i)
		hosts = append(hosts, demoConsoleHost{name: s.Name, node: s.Node(), dataDir: s.DataDir})
	}
	for _, a := range d.sb.Agents() {
		if a.Node() == nil {
			continue
		}
		st, err := a.State(ctx)
		if err != nil {
			return nil, fmt.Errorf("the folders of %s: %w", a.Name, err)
		}
		h := demoConsoleHost{name: a.Name, node: a.Node(), dataDir: a.DataDir, agent: true}
		for id, dir := range a.Folders() {
			f, ok := st.Folder(id)
			if !ok {
				return nil, fmt.Errorf("%s syncs folder %s, which its Catalog does not hold", a.Name, id)
			}
			h.folders = append(h.folders, control.LocalFolder{ID: id, Name: f.Name, Owner: f.Owner, Path: dir})
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// serveConsoles serves a web console for each of hosts, as 'baton run'
// does (on 127.0.0.1, behind a token in the console's home), until ctx
// ends; wait waits for them to stop.
func serveConsoles(ctx context.Context, root string, hosts []demoConsoleHost, log *slog.Logger) (consoles []demoConsole, wait func(), err error) {
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	wait = func() { cancel(); wg.Wait() }
	defer func() {
		if err != nil {
			wait()
		}
	}()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, h := range hosts {
		home := filepath.Join(root, consolesDir, h.name)
		if err := os.MkdirAll(home, 0o700); err != nil {
			return nil, wait, fmt.Errorf("the console of %s: %w", h.name, err)
		}
		agent := h.folders != nil
		log := log.With("host", h.name)
		cfg := control.Config{Daemon: h.node, DataDir: h.dataDir, Symlinks: &control.SymlinkPolicy{}, Now: time.Now, Log: log}
		if agent {
			// The agent's folder commands read and write folders.toml.
			if err := control.SaveFolders(home, h.folders); err != nil {
				return nil, wait, fmt.Errorf("the console of %s: %w", h.name, err)
			}
			cfg.Home = home
			cfg.Symlinks.Set(h.folders)
		}
		api := control.NewServer(cfg).Handler()
		tok, err := console.LoadToken(home, nil)
		if err != nil {
			return nil, wait, fmt.Errorf("the console of %s: %w", h.name, err)
		}
		ln, err := console.Listen(console.ListenConfig{Home: home, Addr: console.AddrAuto})
		if err != nil {
			return nil, wait, fmt.Errorf("the console of %s: %w", h.name, err)
		}
		client := control.NewHandlerClient(home, api)
		con, err := console.New(console.Config{
			API: api, Source: client, Actions: client, Monitor: console.NewMonitor(time.Now), Token: tok, Log: log,
		})
		if err != nil {
			ln.Close()
			return nil, wait, fmt.Errorf("the console of %s: %w", h.name, err)
		}
		wg.Go(func() {
			if err := con.Serve(ctx, ln); err != nil {
				log.Error("the console stopped", "err", err)
			}
		})
		consoles = append(consoles, demoConsole{name: h.name, home: home, url: ln.URL})
	}
	return consoles, wait, nil
}

// keepRunning is the end of 'baton demo --keep': every host serves its
// web console, the demo says how to open each, and the domain runs on
// until ctx ends (Ctrl-C), which is then the demo's normal end.
func (d *demo) keepRunning(ctx context.Context, log *slog.Logger) error {
	d.step(9, "The domain keeps running, and every host serves its web console")
	hosts, err := d.consoleHosts(ctx)
	if err != nil {
		return err
	}
	consoles, wait, err := serveConsoles(ctx, d.sb.Root(), hosts, log)
	if err != nil {
		return err
	}
	defer wait()
	for _, c := range consoles {
		d.say("   %-13s %s", c.name, c.url)
		d.say("                 log in with the token in %s, or run: baton --home %s gui", filepath.Join(c.home, console.TokenFile), shellQuote(c.home))
	}
	d.say("   Open a URL and paste its token, or let 'baton gui' open the browser logged in. Ctrl-C stops the domain.")
	<-ctx.Done()
	return nil
}
