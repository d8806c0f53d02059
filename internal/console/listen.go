package console

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/baton-sync/baton/internal/atomicfile"
)

// URLFile holds the URL the running daemon's console answers at, for
// 'baton gui'. The daemon writes it when it listens and removes it when it
// stops.
const URLFile = "gui.url"

// Address values of 'baton run --gui'.
const (
	AddrOff  = "off"  // no console
	AddrAuto = "auto" // 127.0.0.1, the port of the last run if free, else a free one
)

// Sentinel errors of Listen.
var (
	// ErrNotLoopback: an address other than loopback without TLS.
	ErrNotLoopback = errors.New("the console listens beyond this machine only with --gui-tls")
	// ErrNoPasswordCheck: an address other than loopback with TLS on a
	// host whose console cannot check a user's password at the home
	// server (no PasswordChecker).
	ErrNoPasswordCheck = errors.New("the console beyond this machine needs the user's password checked at the home server, which is not set up here")
)

// ListenConfig says where the console listens.
type ListenConfig struct {
	Home string
	// Addr is HOST:PORT, AddrAuto or "" (the same) or AddrOff.
	Addr string
	// TLS serves HTTPS with the self-signed certificate kept in Home.
	TLS bool
	// Passwords: the console will check a user's password at the user's
	// home server (Config.Passwords is set): it may then listen beyond
	// loopback, over TLS, for an agent's user or a server's admins.
	Passwords bool
	Now       func() time.Time
	Rand      io.Reader
}

// Listener is the console's listener and the URL it answers at.
type Listener struct {
	net.Listener
	URL  string
	home string
}

// Off reports whether addr turns the console off.
func Off(addr string) bool { return addr == AddrOff }

// Listen listens for the console as cfg says, and writes the URL to
// <home>/gui.url. A host other than loopback is for a console over TLS
// that checks passwords at the users' home servers; else it is refused
// (ErrNotLoopback without TLS, ErrNoPasswordCheck without the check).
func Listen(cfg ListenConfig) (*Listener, error) {
	addr := cfg.Addr
	auto := addr == "" || addr == AddrAuto
	if auto {
		addr = "127.0.0.1:0"
		if prev := previousAddr(cfg.Home); prev != "" {
			addr = prev
		}
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--gui %q: want HOST:PORT (e.g. 127.0.0.1:8384), %s or %s: %w", cfg.Addr, AddrAuto, AddrOff, err)
	}
	switch err := remoteListen(host, cfg.TLS, cfg.Passwords); {
	case err == nil:
	case errors.Is(err, ErrNotLoopback):
		return nil, fmt.Errorf("--gui %s: %w: passwords and the token would travel in clear; add --gui-tls, or use a loopback address (and an SSH tunnel: ssh -L 8384:127.0.0.1:PORT HOST)", cfg.Addr, err)
	default:
		return nil, fmt.Errorf("--gui %s --gui-tls: %w; use a loopback address and an SSH tunnel (ssh -L 8384:127.0.0.1:PORT HOST)", cfg.Addr, err)
	}
	var tlsCfg *tls.Config
	if cfg.TLS {
		now := time.Now
		if cfg.Now != nil {
			now = cfg.Now
		}
		rnd := cfg.Rand
		if rnd == nil {
			rnd = randReader
		}
		cert, err := loadOrMakeCert(cfg.Home, localHost(host), now(), rnd)
		if err != nil {
			return nil, err
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil && auto && addr != "127.0.0.1:0" {
		// The last run's port is taken: any free one.
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
		ln = tls.NewListener(ln, tlsCfg)
	}
	urlHost := ln.Addr().String()
	if lh := localHost(host); lh != host {
		// Listening on every address: this machine's clients ('baton gui')
		// reach it on loopback, which the certificate names.
		_, port, _ := net.SplitHostPort(urlHost)
		urlHost = net.JoinHostPort(lh, port)
	}
	u := (&url.URL{Scheme: scheme, Host: urlHost, Path: "/"}).String()
	if err := atomicfile.WriteFile(filepath.Join(cfg.Home, URLFile), []byte(u+"\n"), 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("writing the console's address: %w", err)
	}
	return &Listener{Listener: ln, URL: u, home: cfg.Home}, nil
}

// Close closes the listener and removes the URL file if it is still
// this listener's.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	path := filepath.Join(l.home, URLFile)
	if b, rerr := os.ReadFile(path); rerr == nil && strings.TrimSpace(string(b)) == l.URL {
		os.Remove(path)
	}
	return err
}

// ReadURL returns the URL of the console of home's running daemon.
func ReadURL(home string) (string, error) {
	b, err := os.ReadFile(filepath.Join(home, URLFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no console running in %s: start the daemon ('baton run'), without --gui off", home)
	}
	if err != nil {
		return "", fmt.Errorf("reading the console's address: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// previousAddr is the loopback HOST:PORT of the last run's console, so that
// bookmarks keep working; "" if none.
func previousAddr(home string) string {
	b, err := os.ReadFile(filepath.Join(home, URLFile))
	if err != nil {
		return ""
	}
	u, err := url.Parse(strings.TrimSpace(string(b)))
	if err != nil || !isLoopback(u.Hostname()) || u.Port() == "" {
		return ""
	}
	return u.Host
}

// localHost is the host this machine reaches a listener on host at: host
// itself, or loopback for an unspecified address (0.0.0.0, ::, "").
func localHost(host string) string {
	if host == "" {
		return "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			return "127.0.0.1"
		}
		return "::1"
	}
	return host
}

// isLoopback reports whether host names only this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
