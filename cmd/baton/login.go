package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	toml "github.com/pelletier/go-toml/v2"
	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/atomicfile"
	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
)

// Files of a logged-in agent.
const (
	deviceCertFile = "device.cert" // the device certificate, armored; 'baton run' replaces it with renewed ones
	loginFile      = "login.toml"  // loginInfo
)

// loginFunc logs a device in (peer.Login).
type loginFunc func(ctx context.Context, key *identity.PrivateKey, addr, user string, password []byte, deviceName string) (peer.LoginResult, error)

// loginInfo is <home>/login.toml: who this agent is logged in as and where.
type loginInfo struct {
	User           string    `toml:"user" json:"user"`
	Device         string    `toml:"device" json:"device"`
	DeviceName     string    `toml:"device_name" json:"device_name"`
	HomeServer     string    `toml:"home_server" json:"home_server"` // peer ID
	HomeServerName string    `toml:"home_server_name" json:"home_server_name"`
	HomeAddrs      []string  `toml:"home_addrs" json:"home_addrs"`
	Domain         string    `toml:"domain" json:"domain"`
	Expires        time.Time `toml:"expires" json:"expires"`
}

const loginHeader = `# baton agent login: written by 'baton login'. The device certificate is in
# device.cert (renewed by 'baton run'), the domain's genesis in domain.genesis.
`

func saveLoginInfo(home string, li loginInfo) error {
	data, err := toml.Marshal(li)
	if err != nil {
		return fmt.Errorf("encoding login info: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(home, loginFile), append([]byte(loginHeader), data...), 0o600); err != nil {
		return fmt.Errorf("saving login info: %w", err)
	}
	return nil
}

// loadDeviceCert reads <home>/device.cert; ok is false if there is none.
func loadDeviceCert(home string) (cert []byte, ok bool, err error) {
	path := filepath.Join(home, deviceCertFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading the device certificate: %w", err)
	}
	raw, err := unarmor(data)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := collections.OpenDeviceCert(raw); err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	return raw, true, nil
}

// saveDeviceCert replaces <home>/device.cert atomically.
func saveDeviceCert(home string, cert []byte) error {
	if err := atomicfile.WriteFile(filepath.Join(home, deviceCertFile), armorBytes(cert), 0o600); err != nil {
		return fmt.Errorf("saving the device certificate: %w", err)
	}
	return nil
}

// loginResultJSON is 'login --json'. The field names are stable.
type loginResultJSON struct {
	loginInfo
	Home string `json:"home"`
}

func newLoginCmd(env *cliEnv) *cobra.Command {
	var f loginFlags
	cmd := &cobra.Command{
		Use:   "login USER@ADDRESS [--password-file FILE] [--device-name NAME]",
		Short: "Log this agent in as USER at a server and join its domain",
		Long: `Log in as USER at the server at ADDRESS, a multiaddr ending in /p2p/<server
ID> (a server's public address, e.g. /ip4/192.0.2.1/tcp/7400/p2p/12D3KooW...).
A server that is not USER's home server sends the agent on to it. The home
server checks the password and signs a device certificate binding this host's
key to USER; it is saved in <home>/device.cert, the domain's genesis in
<home>/domain.genesis, and the home server in <home>/login.toml. 'baton run'
then joins the domain as USER's device and renews the certificate while it runs.

The password is read from the first line of --password-file, else
$BATON_PASSWORD, else asked for at the terminal without echo. No daemon is
needed; restart a running one to use the new certificate.`,
		Example: `  baton init --agent --name laptop
  baton login ann@/ip4/192.0.2.1/tcp/7400/p2p/12D3KooWExample`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return env.runLogin(cmd, args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.passwordFile, "password-file", "", "read the password from the first line of `FILE` (else $BATON_PASSWORD, else a terminal prompt)")
	fl.StringVar(&f.deviceName, "device-name", "", "the device's `NAME` as the user sees it in 'baton device list' (default: the host name in host.toml)")
	fl.BoolVar(&f.force, "force", false, "log in to another domain than the one this agent belongs to")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON (fields: user, device, device_name, home_server, home_server_name, home_addrs, domain, expires, home)")
	return cmd
}

// loginFlags are the flags of 'baton login'.
type loginFlags struct {
	passwordFile, deviceName string
	force, asJSON            bool
}

// parseLoginTarget splits 'login's USER@ADDRESS.
func parseLoginTarget(arg string) (user, addr string, err error) {
	user, addr, ok := strings.Cut(arg, "@")
	if !ok || user == "" || addr == "" {
		return "", "", usageErrorf("login: %q: want USER@ADDRESS, e.g. ann@/ip4/192.0.2.1/tcp/7400/p2p/12D3KooW...", arg)
	}
	if err := identity.ValidateName(user); err != nil {
		return "", "", usageErrorf("login: user name: %v", err)
	}
	info, err := lpeer.AddrInfoFromString(addr)
	if err != nil || len(info.Addrs) == 0 {
		return "", "", usageErrorf("login: address %q: want a server's multiaddr ending in /p2p/<server ID>", addr)
	}
	return user, addr, nil
}

// runLogin is 'baton login target': it logs this agent in and saves what
// the home server gave it.
func (env *cliEnv) runLogin(cmd *cobra.Command, target string, f loginFlags) error {
	user, addr, err := parseLoginTarget(target)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	home, keyPath, err := env.requireHostKey()
	if err != nil {
		return err
	}
	cfg, err := env.hostSettings(home)
	if err != nil {
		return err
	}
	if cfg.Role != identity.RoleAgent {
		return fmt.Errorf("this host is a %s; users log in on desktop agents (set one up with 'baton init --agent')", cfg.Role)
	}
	deviceName := f.deviceName
	if deviceName == "" {
		deviceName = cfg.Name
	}
	old, oldErr := loadGenesis(home)
	password, err := env.password(ctx, f.passwordFile, "Password for "+user+": ", false)
	if err != nil {
		return err
	}
	defer clear(password)
	key, pass, err := env.unlockKeyFile(ctx, keyPath, "host key "+keyPath)
	if err != nil {
		return err
	}
	clear(pass)
	login := env.login
	if login == nil {
		login = peer.Login
	}
	res, err := login(ctx, key, addr, user, password, deviceName)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	g, err := collections.OpenGenesis(res.Genesis)
	if err != nil {
		return fmt.Errorf("login: the domain genesis: %w", err)
	}
	if oldErr == nil && old.Hash() != g.Hash() && !f.force {
		return fmt.Errorf("this agent already belongs to domain %s (%s), and %s is in domain %s (%s): give --force to switch domains",
			old.Domain.Name, shortHash(old.Hash()), user, g.Domain.Name, shortHash(g.Hash()))
	}
	li := loginInfo{
		User: res.User, Device: key.ID().String(), DeviceName: deviceName,
		HomeServer: res.HomeServer.String(), HomeServerName: res.HomeServer.String(),
		HomeAddrs: nonNil(res.HomeAddrs), Domain: g.Domain.Name, Expires: res.Expires.UTC(),
	}
	if r, ok := genesisHosts(g)[li.HomeServer]; ok {
		li.HomeServerName = r.Name
	}
	if err := saveLogin(home, g, res.Cert, li); err != nil {
		return err
	}
	if conn, err := net.DialTimeout("unix", control.SocketPath(home), time.Second); err == nil {
		conn.Close()
		fmt.Fprintln(env.stderr, "baton: note: a daemon is running in this home: restart 'baton run' to use the new certificate")
	}
	w := cmd.OutOrStdout()
	if f.asJSON {
		return writeJSON(w, loginResultJSON{loginInfo: li, Home: home})
	}
	fmt.Fprintf(w, "logged in as %s on device %s (home server %s), certificate valid until %s\n",
		li.User, li.Device, li.HomeServerName, li.Expires.Format(time.RFC3339))
	return nil
}

// saveLogin saves in home what a login gave: the domain's genesis, the
// device certificate and the login's details.
func saveLogin(home string, g collections.Genesis, cert []byte, li loginInfo) error {
	if err := atomicfile.WriteFile(filepath.Join(home, genesisFile), armorBytes(g.Marshal()), 0o644); err != nil {
		return fmt.Errorf("saving the domain genesis: %w", err)
	}
	if err := saveDeviceCert(home, cert); err != nil {
		return err
	}
	return saveLoginInfo(home, li)
}

// passwordEnv holds a user's password for scripts.
const passwordEnv = "BATON_PASSWORD"

// password reads a user's password: from file, else $BATON_PASSWORD, else
// the terminal (twice when confirm is set, for a new one).
func (e *cliEnv) password(ctx context.Context, file, prompt string, confirm bool) ([]byte, error) {
	if file != "" {
		p, err := readPassphraseFile(file)
		if err != nil {
			return nil, errors.New(strings.Replace(err.Error(), "passphrase file", "password file", 1))
		}
		return p, nil
	}
	if v := e.getenv(passwordEnv); v != "" {
		return []byte(v), nil
	}
	if e.prompt == nil {
		return nil, fmt.Errorf("no password: give --password-file FILE or set %s (stdin is not a terminal)", passwordEnv)
	}
	p, err := e.prompt(ctx, prompt)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, errors.New("empty password")
	}
	if confirm {
		again, err := e.prompt(ctx, "Again: ")
		if err != nil {
			return nil, err
		}
		same := string(again) == string(p)
		clear(again)
		if !same {
			clear(p)
			return nil, errors.New("the passwords do not match")
		}
	}
	return p, nil
}
