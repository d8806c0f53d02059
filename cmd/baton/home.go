package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	toml "github.com/pelletier/go-toml/v2"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/atomicfile"
)

// Files in the baton home.
const (
	hostKeyFile    = "host.key"       // this host's key (identity key file, 0600)
	hostConfigFile = "host.toml"      // hostConfig
	rotationsDir   = "rotations"      // signed rotation statements made by 'keys rotate'
	genesisFile    = "domain.genesis" // the signed domain genesis, armored ('domain create', 'domain join')
	dataDirName    = "data"           // the daemon's data files, outbox and epoch
	// The daemon's control socket (control.SocketName) and an agent's
	// folders.toml belong to package control.
)

// homeDir is the baton home: --home, else $BATON_HOME, else
// <user config dir>/baton. It is made absolute so messages name it fully.
func (e *cliEnv) homeDir() (string, error) {
	home := e.homeFlag
	if home == "" {
		home = e.getenv("BATON_HOME")
	}
	if home == "" {
		dir, err := e.userConfigDir()
		if err != nil {
			return "", fmt.Errorf("finding the baton home: %w (give --home DIR or set BATON_HOME)", err)
		}
		home = filepath.Join(dir, "baton")
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return "", fmt.Errorf("baton home %s: %w", home, err)
	}
	return abs, nil
}

// requireHostKey returns the home and the path of its host key, or an error
// telling the user how to make one if either is missing.
func (e *cliEnv) requireHostKey() (home, keyPath string, err error) {
	home, err = e.homeDir()
	if err != nil {
		return "", "", err
	}
	keyPath = filepath.Join(home, hostKeyFile)
	if _, err := os.Stat(keyPath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("no host key in %s: run 'baton keys gen --home %s'", home, shellQuote(home))
		}
		return "", "", fmt.Errorf("host key %s: %w", keyPath, err)
	}
	return home, keyPath, nil
}

// loadHostKey loads the host key, asking for its passphrase if it is
// encrypted. It also returns the passphrase (nil if none) so a command
// that rewrites the key can keep it.
func (e *cliEnv) loadHostKey(ctx context.Context) (home string, key *identity.PrivateKey, pass []byte, err error) {
	home, keyPath, err := e.requireHostKey()
	if err != nil {
		return "", nil, nil, err
	}
	key, pass, err = e.unlockKeyFile(ctx, keyPath, "host key "+keyPath)
	return home, key, pass, err
}

// makeHome creates the home directory (0700) if it does not exist.
func makeHome(home string) error {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("creating baton home: %w", err)
	}
	st, err := os.Stat(home)
	if err != nil {
		return fmt.Errorf("baton home: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("baton home %s is not a directory", home)
	}
	return nil
}

// hostConfig is <home>/host.toml: what this host says about itself in its
// signed host record ('baton keys export'). Fields left empty take their
// defaults (fillDefaults). Unknown keys are ignored, so later commands can
// add their own settings to the same file by extending this struct.
type hostConfig struct {
	// Name is the host's name in its domain (identity.ValidateName rules).
	// Default: the machine's host name, sanitized.
	Name string `toml:"name"`
	// Role is "server" (in a domain's server chain) or "agent" (a desktop
	// syncing folders). Default: server.
	Role identity.Role `toml:"role"`
	// PublicAddrs are the multiaddrs desktop agents dial.
	PublicAddrs []string `toml:"public_addrs"`
	// PrivateAddrs are the multiaddrs other servers dial on a private LAN.
	PrivateAddrs []string `toml:"private_addrs"`
	// Listen are the multiaddrs 'baton run' listens on. Default: see
	// defaultListen. With no public or private addresses set, the node
	// announces the addresses it actually listens on.
	Listen []string `toml:"listen,omitempty"`
	// PublicListen (servers) are the multiaddrs, each with an IP and an
	// explicit port, on which hosts that are not members yet (agents
	// logging in) are admitted as guests, who may only log in; 'baton run'
	// listens on them too. Empty: a listen address whose port is that of a
	// public address (and of no private one) is such an address.
	PublicListen []string `toml:"public_listen,omitempty"`
	// Witness (servers) makes this server a witness: a voter of the chain
	// that keeps the consensus log but hosts no folders, takes no logins
	// and hands the master role to another server ('baton init --witness').
	Witness bool `toml:"witness,omitempty"`
	// NoLAN (agents) turns off looking for the other devices of shared
	// folders on the local network (mDNS); 'baton run --no-lan' does too.
	NoLAN bool `toml:"no_lan,omitempty"`
	// NoRelay (agents) turns off reaching the other devices of shared
	// folders through the servers' circuit relays; 'baton run --no-relay'
	// does too.
	NoRelay bool `toml:"no_relay,omitempty"`
	// Peers (agents) are multiaddrs ending in /p2p/ID of other devices to
	// keep connected to when they share a folder with this one, for
	// networks without multicast; 'baton run --peer' adds to them.
	Peers []string `toml:"peers,omitempty"`
}

// Default listen addresses: servers take a fixed, well-known port so the
// addresses in their host records stay valid; agents only dial out and serve
// blocks to peers that learn their address, so the OS picks the port.
const (
	defaultServerListen = "/ip4/0.0.0.0/tcp/7400"
	defaultAgentListen  = "/ip4/0.0.0.0/tcp/0"
)

// listenAddrs is c.Listen, or the default for c's role.
func (c hostConfig) listenAddrs() []string {
	if len(c.Listen) > 0 {
		return c.Listen
	}
	if c.Role == identity.RoleAgent {
		return []string{defaultAgentListen}
	}
	return []string{defaultServerListen}
}

const hostConfigHeader = `# baton host settings: what this host says about itself in its signed host
# record ('baton keys export'). name: letters, digits, '.', '-', '_';
# role: server or agent; addresses are multiaddrs, e.g. /ip4/192.0.2.1/tcp/4001.
# listen: where 'baton run' listens (default /ip4/0.0.0.0/tcp/7400 for a server,
# /ip4/0.0.0.0/tcp/0 for an agent). public_listen (servers): where agents that
# are not logged in yet may connect, to log in only; agents dial a server's
# public addresses. witness = true (servers): a voter that keeps only the
# consensus log: no folders, no logins, never master for long.
`

// loadHostConfig reads <home>/host.toml; a missing file gives the zero
// config (call fillDefaults next).
func loadHostConfig(home string) (hostConfig, error) {
	path := filepath.Join(home, hostConfigFile)
	var cfg hostConfig
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("reading host settings: %w", err)
	}
	if err := toml.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("host settings %s: %v", path, err)
	}
	return cfg, nil
}

// hostSettings reads <home>/host.toml with the defaults filled in.
func (e *cliEnv) hostSettings(home string) (hostConfig, error) {
	cfg, err := loadHostConfig(home)
	if err != nil {
		return cfg, err
	}
	cfg.fillDefaults(e)
	return cfg, nil
}

// saveHostConfig replaces <home>/host.toml atomically.
func saveHostConfig(home string, cfg hostConfig) error {
	data, err := toml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encoding host settings: %w", err)
	}
	data = append([]byte(hostConfigHeader), data...)
	if err := atomicfile.WriteFile(filepath.Join(home, hostConfigFile), data, 0o644); err != nil {
		return fmt.Errorf("saving host settings: %w", err)
	}
	return nil
}

// fillDefaults sets the name and role when they are empty.
func (c *hostConfig) fillDefaults(e *cliEnv) {
	if c.Name == "" {
		h, _ := e.hostname()
		c.Name = sanitizeName(h)
	}
	if c.Role == "" {
		c.Role = identity.RoleServer
	}
}

// recordAddrs are the addresses 'keys export' signs into the host record:
// the configured public and private addresses or, when neither is set, the
// addresses other hosts can dial (a specific IP or DNS name and a port other
// than 0): the public listen addresses as public ones (agents dial those),
// the other listen addresses as private ones. Peers dial only what the
// record says.
func (c hostConfig) recordAddrs() (public, private []string) {
	if len(c.PublicAddrs) > 0 || len(c.PrivateAddrs) > 0 {
		return c.PublicAddrs, c.PrivateAddrs
	}
	for _, s := range c.PublicListen {
		if dialable(s) {
			public = append(public, s)
		}
	}
	for _, s := range c.Listen {
		if dialable(s) && !slices.Contains(public, s) {
			private = append(private, s)
		}
	}
	return public, private
}

// dialable reports whether the multiaddr s names one reachable endpoint: a
// specified IP or a DNS name, and a nonzero TCP or UDP port.
func dialable(s string) bool {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return false
	}
	host := false
	for _, p := range []int{ma.P_IP4, ma.P_IP6} {
		if v, err := a.ValueForProtocol(p); err == nil {
			ip := net.ParseIP(v)
			host = ip != nil && !ip.IsUnspecified()
		}
	}
	for _, p := range []int{ma.P_DNS, ma.P_DNS4, ma.P_DNS6} {
		if _, err := a.ValueForProtocol(p); err == nil {
			host = true
		}
	}
	port := false
	for _, p := range []int{ma.P_TCP, ma.P_UDP} {
		if v, err := a.ValueForProtocol(p); err == nil {
			port = v != "0"
		}
	}
	return host && port
}

// validate checks the config as identity.HostRecord.Validate would.
func (c hostConfig) validate() error {
	if err := identity.ValidateName(c.Name); err != nil {
		return fmt.Errorf("host name: %w", err)
	}
	if err := validateRole(string(c.Role)); err != nil {
		return err
	}
	if len(c.PublicListen) > 0 && c.Role != identity.RoleServer {
		return errors.New("public_listen is for servers: agents admit no guests")
	}
	if c.Witness && c.Role != identity.RoleServer {
		return errors.New("witness is for servers: a witness is a server of the chain")
	}
	if c.Witness && len(c.PublicListen) > 0 {
		return errors.New("public_listen is for servers that take logins: a witness takes none")
	}
	if len(c.Peers) > 0 && c.Role != identity.RoleAgent {
		return errors.New("peers are for agents: servers dial the chain")
	}
	for _, a := range c.Peers {
		if _, err := lpeer.AddrInfoFromString(a); err != nil {
			return fmt.Errorf("peer %q is not a multiaddr ending in /p2p/ID (like /ip4/192.0.2.7/tcp/4001/p2p/12D3Koo...): %v", a, err)
		}
	}
	for _, list := range []struct {
		what  string
		addrs []string
	}{{"public", c.PublicAddrs}, {"private", c.PrivateAddrs}, {"listen", c.Listen}, {"public listen", c.PublicListen}} {
		for _, a := range list.addrs {
			if _, err := ma.NewMultiaddr(a); err != nil {
				return fmt.Errorf("%s address %q is not a multiaddr (like /ip4/192.0.2.1/tcp/4001): %v", list.what, a, err)
			}
		}
	}
	return nil
}

func validateRole(role string) error {
	switch identity.Role(role) {
	case identity.RoleServer, identity.RoleAgent:
		return nil
	}
	return fmt.Errorf("role %q: want %s or %s", role, identity.RoleServer, identity.RoleAgent)
}

// sanitizeName turns a machine host name into a valid baton name: characters
// outside letters, digits, '.', '-' and '_' become '-', leading punctuation
// is dropped, and the result is cut to 64 characters. An empty result gives
// "baton-host".
func sanitizeName(h string) string {
	var b strings.Builder
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() == 0:
			// names start with a letter or digit
		case r == '.' || r == '-' || r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
		if b.Len() == 64 {
			break
		}
	}
	name := strings.TrimRight(b.String(), ".-_")
	if name == "" {
		return "baton-host"
	}
	return name
}

// shellQuote quotes s for a command line shown to the user, if it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@%=,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// copyKeyFile copies a key file byte for byte (keeping its encryption) to
// dst, atomically and with mode 0600.
func copyKeyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copying key file: %w", err)
	}
	if err := atomicfile.WriteFile(dst, data, 0o600); err != nil {
		return fmt.Errorf("copying key file %s: %w", src, err)
	}
	clear(data)
	return nil
}

// keepOldKey copies the key file at keyPath to <keyPath>.old-<id> before it
// is replaced, and returns the copy's path. A key file too broken to read
// its ID is kept as <keyPath>.old-<time>.
func (e *cliEnv) keepOldKey(keyPath string) (string, error) {
	suffix := e.now().UTC().Format("20060102T150405Z")
	if info, err := identity.ReadKeyFileInfo(keyPath); err == nil {
		suffix = info.ID
	}
	dst := keyPath + ".old-" + suffix
	if _, err := os.Stat(dst); err == nil {
		data1, err1 := os.ReadFile(dst)
		data2, err2 := os.ReadFile(keyPath)
		if err1 == nil && err2 == nil && bytes.Equal(data1, data2) {
			return dst, nil // already kept
		}
		dst += "-" + e.now().UTC().Format("20060102T150405.000000000Z")
	}
	return dst, copyKeyFile(keyPath, dst)
}
