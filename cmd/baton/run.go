package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/console"
	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/internal/memtrim"
	"github.com/baton-sync/baton/peer"
)

// node is a daemon that runs: *peer.Node, or a fake in tests.
type node interface {
	control.Daemon
	Run(ctx context.Context) error
	Started() <-chan struct{}
}

var _ node = (*peer.Node)(nil)

// newPeerNode builds the real node.
func newPeerNode(cfg peer.Config) (node, error) {
	n, err := peer.New(cfg)
	if err != nil {
		return nil, err
	}
	return n, nil
}

func newRunCmd(env *cliEnv) *cobra.Command {
	var (
		logLevel  string
		logFormat string
		opts      runOptions
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run this host's daemon in the foreground",
		Long: `Run the host: load the key (asking for its passphrase if it is encrypted:
use --passphrase-file or $BATON_PASSPHRASE for a service), host.toml and the
domain genesis, listen on host.toml's listen addresses, join the domain, and
serve the control API on <home>/control.sock for 'baton status' and the other
commands. The data files, outbox and epoch live in <home>/data. It also serves
the web console, the HTTP API, /metrics and /events on 127.0.0.1 (--gui;
'baton gui' opens it).

Logs go to stderr: log/slog's text by default, one JSON object a line
with --log-format json (for log collectors). SIGINT or SIGTERM stops the daemon cleanly:
data files are flushed, connections closed and the control socket removed,
and it exits with status 0.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageErrorf("run: --log-level %q: want debug, info, warn or error", logLevel)
			}
			switch logFormat {
			case "text", "json":
				opts.jsonLog = logFormat == "json"
			default:
				return usageErrorf("run: --log-format %q: want text or json", logFormat)
			}
			return env.runDaemon(cmd.Context(), level, opts)
		},
	}
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log `FORMAT`: text (log/slog's key=value) or json (one object a line, for log collectors)")
	env.gui.bind(cmd)
	cmd.Flags().BoolVar(&opts.noLAN, "no-lan", false, "agents: do not look for the other devices of shared folders on the local network (mDNS)")
	cmd.Flags().BoolVar(&opts.noRelay, "no-relay", false, "agents: do not reach the other devices of shared folders through the servers' relays")
	cmd.Flags().StringArrayVar(&opts.peers, "peer", nil, "agents: also keep connected to the device at `MULTIADDR` (ending in /p2p/ID) when it shares a folder with this one (repeatable)")
	return cmd
}

// runOptions are 'baton run's flags beyond the log level.
type runOptions struct {
	noLAN   bool     // --no-lan
	noRelay bool     // --no-relay
	peers   []string // --peer
	jsonLog bool     // --log-format json
}

// runDaemon is 'baton run': it returns nil after a clean stop on ctx's end.
func (e *cliEnv) runDaemon(ctx context.Context, level slog.Level, opts runOptions) error {
	f, err := e.loadDaemonFiles(ctx)
	if err != nil {
		return err
	}
	f.cfg.NoLAN = f.cfg.NoLAN || opts.noLAN
	f.cfg.NoRelay = f.cfg.NoRelay || opts.noRelay
	f.cfg.Peers = append(f.cfg.Peers, opts.peers...)
	if err := f.cfg.validate(); err != nil {
		return usageErrorf("run: %v", err)
	}
	home, cfg := f.home, f.cfg
	symlinks := &control.SymlinkPolicy{}
	symlinks.Set(f.local)
	dataDir := filepath.Join(home, dataDirName)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("creating the data directory: %w", err)
	}
	mon := console.NewMonitor(e.now) // the console's metrics and events
	var out slog.Handler = slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level})
	if opts.jsonLog {
		out = slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level})
	}
	log := slog.New(mon.LogHandler(out))

	newNode := e.newNode
	if newNode == nil {
		newNode = newPeerNode
	}
	var onCert func([]byte)
	if f.cert != nil {
		var stopSaving func()
		onCert, stopSaving = saveRenewedCerts(home, log)
		defer stopSaving()
	}
	n, err := newNode(peer.Config{
		Key:          f.key,
		Name:         cfg.Name,
		Role:         cfg.Role,
		Witness:      cfg.Witness,
		Genesis:      f.genesis,
		DataDir:      dataDir,
		Listen:       cfg.listenAddrs(),
		PublicAddrs:  cfg.PublicAddrs,
		PrivateAddrs: cfg.PrivateAddrs,
		PublicListen: cfg.PublicListen,
		Logger:       log,
		DeviceCert:   f.cert,
		OnDeviceCert: onCert,
		// The folders recorded in folders.toml; the control API changes
		// them with SetFolders.
		Folders:         control.SyncMap(f.local),
		OnCommit:        mon.ObserveCommit,
		OutsideSymlinks: symlinks.Allows,
		WindowsNames:    symlinks.KeepsWindowsNames,
		NoLAN:           cfg.NoLAN,
		NoRelay:         cfg.NoRelay,
		Peers:           cfg.Peers,
	})
	if err != nil {
		return err
	}
	ctlCfg := control.Config{Daemon: n, DataDir: dataDir, Symlinks: symlinks, Now: e.now, Rand: e.rand, Log: log}
	if cfg.Role == identity.RoleAgent {
		ctlCfg.Home = home
	}
	ctl := control.NewServer(ctlCfg)
	ln, err := control.Listen(home)
	if err != nil {
		return err
	}
	passwords, _ := n.(console.PasswordChecker) // *peer.Node; nil for a node that has none
	serveGUI, err := e.listenConsole(home, ctl, mon, log, passwords)
	if err != nil {
		ln.Close()
		return err
	}
	log.Info("starting", "id", f.key.ID(), "name", cfg.Name, "role", cfg.Role, "witness", cfg.Witness, "domain", f.genesis.Domain.Name, "home", home)
	return runWithControl(ctx, f, n, func(ctx context.Context) error { return ctl.Serve(ctx, ln) }, serveGUI, log)
}

// daemonFiles is what 'baton run' reads from the home.
type daemonFiles struct {
	home    string
	key     *identity.PrivateKey
	cfg     hostConfig
	genesis collections.Genesis
	cert    []byte                // the device certificate (agents); nil if none
	local   []control.LocalFolder // the folders an agent syncs
}

// loadDaemonFiles reads the host's key, settings, genesis and, on an
// agent, its device certificate and folders.
func (e *cliEnv) loadDaemonFiles(ctx context.Context) (daemonFiles, error) {
	var f daemonFiles
	home, key, pass, err := e.loadHostKey(ctx)
	if err != nil {
		return f, err
	}
	clear(pass)
	f.home, f.key = home, key
	if f.cfg, err = e.hostSettings(home); err != nil {
		return f, err
	}
	if err := f.cfg.validate(); err != nil {
		return f, fmt.Errorf("%s: %w", filepath.Join(home, hostConfigFile), err)
	}
	agent := f.cfg.Role == identity.RoleAgent
	if agent {
		if ok, _ := fileExists(filepath.Join(home, genesisFile)); !ok {
			return f, fmt.Errorf("this agent is not logged in: run 'baton login USER@ADDRESS --home %s' first", shellQuote(home))
		}
	}
	if f.genesis, err = loadGenesis(home); err != nil {
		return f, err
	}
	if !agent {
		return f, nil
	}
	var ok bool
	if f.cert, ok, err = loadDeviceCert(home); err != nil {
		return f, err
	}
	if !ok {
		// A host of the Domain may run without being a user's device.
		f.cert = nil
	}
	if f.local, err = control.LoadFolders(home); err != nil {
		return f, err
	}
	return f, nil
}

// saveRenewedCerts returns the node's OnDeviceCert: renewed certificates
// replace device.cert. The node calls it on its goroutine, so it writes
// in the background, in order, until stop.
func saveRenewedCerts(home string, log *slog.Logger) (onCert func([]byte), stop func()) {
	certs := make(chan []byte, 4)
	go func() {
		for c := range certs {
			if err := saveDeviceCert(home, c); err != nil {
				log.Error("saving the renewed device certificate", "err", err)
			} else {
				log.Info("saved the renewed device certificate", "file", filepath.Join(home, deviceCertFile))
			}
		}
	}()
	onCert = func(c []byte) {
		select {
		case certs <- c:
		default:
			log.Warn("renewed device certificate not saved: writer busy")
		}
	}
	return onCert, func() { close(certs) }
}

// runWithControl runs the node and serve, the control API, until ctx
// ends or either stops; the control API failing stops the node.
func runWithControl(ctx context.Context, f daemonFiles, n node, serve func(context.Context) error, serveGUI func(context.Context), log *slog.Logger) error {
	// A daemon's heap grows less between collections than Go's default
	// lets it (memtrim.GCPercent), unless GOGC says otherwise.
	log.Debug("collector target", "gogc", memtrim.SetGC(os.Getenv))
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var ctlErr error
	wg.Go(func() {
		ctlErr = serve(runCtx)
		if ctlErr != nil {
			stop() // no control API: stop the node too
		}
	})
	wg.Go(func() { serveGUI(runCtx) })
	wg.Go(func() { logStarted(runCtx, f, n, log) })
	// A daemon at rest gives back what a burst of work (a large sync)
	// left free in its heap.
	wg.Go(func() { memtrim.New(log).Run(runCtx) })

	runErr := n.Run(runCtx)
	stop()
	wg.Wait()
	log.Info("stopped", "id", f.key.ID())
	switch {
	case ctlErr != nil:
		return ctlErr
	case runErr != nil && !(ctx.Err() != nil && errors.Is(runErr, ctx.Err())):
		return fmt.Errorf("daemon: %w", runErr)
	}
	return nil
}

// logStarted logs, once the node has started, what it listens on.
func logStarted(ctx context.Context, f daemonFiles, n node, log *slog.Logger) {
	select {
	case <-n.Started():
	case <-ctx.Done():
		select {
		case <-n.Started(): // started, and stopping already: say both
		default:
			return
		}
	}
	if len(f.local) > 0 {
		log.Info("syncing folders", "count", len(f.local))
	}
	st, err := n.Status(ctx)
	if err != nil {
		log.Info("started", "id", f.key.ID())
		return
	}
	log.Info("started", "id", st.ID, "listen", st.Listen, "control", control.SocketPath(f.home))
}
