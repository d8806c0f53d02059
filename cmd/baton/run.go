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

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/control"
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
		logLevel string
		opts     runOptions
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run this host's daemon in the foreground",
		Long: `Run the host: load the key (asking for its passphrase if it is encrypted:
use --passphrase-file or $BATON_PASSPHRASE for a service), host.toml and the
domain genesis, listen on host.toml's listen addresses, join the domain, and
serve the control API on <home>/control.sock for 'baton status' and the other
commands. The data files, outbox and epoch live in <home>/data.

Logs go to stderr (log/slog text). SIGINT or SIGTERM stops the daemon cleanly:
data files are flushed, connections closed and the control socket removed,
and it exits with status 0.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageErrorf("run: --log-level %q: want debug, info, warn or error", logLevel)
			}
			return env.runDaemon(cmd.Context(), level, opts)
		},
	}
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	cmd.Flags().BoolVar(&opts.noLAN, "no-lan", false, "agents: do not look for the other devices of shared folders on the local network (mDNS)")
	cmd.Flags().StringArrayVar(&opts.peers, "peer", nil, "agents: also keep connected to the device at `MULTIADDR` (ending in /p2p/ID) when it shares a folder with this one (repeatable)")
	return cmd
}

// runOptions are 'baton run's flags beyond the log level.
type runOptions struct {
	noLAN bool     // --no-lan
	peers []string // --peer
}

// runDaemon is 'baton run': it returns nil after a clean stop on ctx's end.
func (e *cliEnv) runDaemon(ctx context.Context, level slog.Level, opts runOptions) error {
	home, key, pass, err := e.loadHostKey(ctx)
	if err != nil {
		return err
	}
	clear(pass)
	cfg, err := loadHostConfig(home)
	if err != nil {
		return err
	}
	cfg.fillDefaults(e)
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(home, hostConfigFile), err)
	}
	cfg.NoLAN = cfg.NoLAN || opts.noLAN
	cfg.Peers = append(cfg.Peers, opts.peers...)
	if err := cfg.validate(); err != nil {
		return usageErrorf("run: %v", err)
	}
	if cfg.Role == identity.RoleAgent {
		if ok, _ := fileExists(filepath.Join(home, genesisFile)); !ok {
			return fmt.Errorf("this agent is not logged in: run 'baton login USER@ADDRESS --home %s' first", shellQuote(home))
		}
	}
	g, err := loadGenesis(home)
	if err != nil {
		return err
	}
	var (
		cert   []byte
		local  []control.LocalFolder
		onCert func([]byte)
	)
	if cfg.Role == identity.RoleAgent {
		var ok bool
		if cert, ok, err = loadDeviceCert(home); err != nil {
			return err
		}
		if !ok {
			// A host of the Domain may run without being a user's device.
			cert = nil
		}
		if local, err = control.LoadFolders(home); err != nil {
			return err
		}
	}
	symlinks := &control.SymlinkPolicy{}
	symlinks.Set(local)
	dataDir := filepath.Join(home, dataDirName)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("creating the data directory: %w", err)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))

	newNode := e.newNode
	if newNode == nil {
		newNode = newPeerNode
	}
	if cert != nil {
		// Renewed certificates replace device.cert. The node calls this on
		// its goroutine: write in the background, in order.
		certs := make(chan []byte, 4)
		defer close(certs)
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
	}
	n, err := newNode(peer.Config{
		Key:          key,
		Name:         cfg.Name,
		Role:         cfg.Role,
		Witness:      cfg.Witness,
		Genesis:      g,
		DataDir:      dataDir,
		Listen:       cfg.listenAddrs(),
		PublicAddrs:  cfg.PublicAddrs,
		PrivateAddrs: cfg.PrivateAddrs,
		PublicListen: cfg.PublicListen,
		Logger:       log,
		DeviceCert:   cert,
		OnDeviceCert: onCert,
		// The folders recorded in folders.toml; the control API changes
		// them with SetFolders.
		Folders:         control.SyncMap(local),
		OutsideSymlinks: symlinks.Allows,
		WindowsNames:    symlinks.KeepsWindowsNames,
		NoLAN:           cfg.NoLAN,
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
	log.Info("starting", "id", key.ID(), "name", cfg.Name, "role", cfg.Role, "witness", cfg.Witness, "domain", g.Domain.Name, "home", home)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var ctlErr error
	wg.Go(func() {
		ctlErr = ctl.Serve(runCtx, ln)
		if ctlErr != nil {
			stop() // no control API: stop the node too
		}
	})
	wg.Go(func() {
		select {
		case <-n.Started():
		case <-runCtx.Done():
			return
		}
		if len(local) > 0 {
			log.Info("syncing folders", "count", len(local))
		}
		st, err := n.Status(runCtx)
		if err != nil {
			log.Info("started", "id", key.ID())
			return
		}
		log.Info("started", "id", st.ID, "listen", st.Listen, "control", control.SocketPath(home))
	})

	runErr := n.Run(runCtx)
	stop()
	wg.Wait()
	log.Info("stopped", "id", key.ID())
	switch {
	case ctlErr != nil:
		return ctlErr
	case runErr != nil && !(ctx.Err() != nil && errors.Is(runErr, ctx.Err())):
		return fmt.Errorf("daemon: %w", runErr)
	}
	return nil
}
