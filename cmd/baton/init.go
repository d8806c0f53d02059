package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/identity"
)

// initInfo is 'init --json'. The field names are stable.
type initInfo struct {
	ID           string   `json:"id"`
	Fingerprint  string   `json:"fingerprint"`
	Name         string   `json:"name"`
	Role         string   `json:"role"`
	Witness      bool     `json:"witness"`
	Home         string   `json:"home"`
	Encrypted    bool     `json:"encrypted"`
	Listen       []string `json:"listen"`
	PublicAddrs  []string `json:"public_addrs"`
	PrivateAddrs []string `json:"private_addrs"`
	PublicListen []string `json:"public_listen"`
}

func newInitCmd(env *cliEnv) *cobra.Command {
	var f initFlags
	cmd := &cobra.Command{
		Use:   "init --server|--witness|--agent [--name NAME] [--listen MULTIADDR]...",
		Short: "Set up this host: make its home, key and settings",
		Long: `Create the baton home: the host key (<home>/host.key, as 'baton keys gen'
makes it) and the settings in <home>/host.toml: name, role, and the addresses
'baton run' listens on and announces. Prints the new host ID.

--listen defaults to ` + defaultServerListen + ` for a server and ` + defaultAgentListen + `
(a port the OS picks) for an agent. Peers learn a host's addresses from its
signed host record: without --public-addr and --private-addr the node announces
the addresses it actually listens on; give them when the host is reached through
other addresses (NAT, DNS names, a private LAN).

Desktop agents dial a server's public addresses (--public-addr). An agent that
is not logged in yet is admitted only as a guest, which may only log in, and
only on the server's public listen addresses: --public-listen, or else the
listen addresses whose port is that of a public address and of no private one.
Then on the agent: 'baton login USER@<public address>/p2p/<server ID>'.

--witness makes a server that is a witness: a voter of the chain that keeps
the consensus log (and the small collections state, to verify it) and nothing
else. It hosts no folders, takes no logins, cannot be a user's home server,
and never stays master: when it wins an election it hands the role at once to
a server that is caught up. Two servers and a witness can fail over (a change
needs two of the three voters), which two servers alone cannot. Its host
record says role server: put it in the chain like a server ('domain create
--chain ...' or 'server add'), preferably last. host.toml records
witness = true.

An existing key is never replaced without --force (the old one is kept as
host.key.old-<ID>). Next: 'baton keys export' for the domain admin, then
'baton domain create' or 'baton domain join', then 'baton run'.`,
		Example: `  baton init --server --name s1 --listen /ip4/0.0.0.0/tcp/7400 --private-addr /ip4/10.0.0.1/tcp/7400
  baton init --witness --name w --listen /ip4/0.0.0.0/tcp/7400
  baton init --agent --name laptop --encrypt`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return env.runInit(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.server, "server", false, "this host is a server in a domain's chain")
	fl.BoolVar(&f.witness, "witness", false, "this host is a witness: a server of the chain that votes and keeps the log, with no folders and no logins")
	fl.BoolVar(&f.agent, "agent", false, "this host is a desktop agent syncing a user's folders")
	fl.StringVar(&f.name, "name", "", "host `NAME` (default: kept from host.toml, else the machine's host name)")
	fl.StringArrayVar(&f.listen, "listen", nil, "`MULTIADDR` to listen on (repeatable; default "+defaultServerListen+" for a server, "+defaultAgentListen+" for an agent)")
	fl.StringArrayVar(&f.publicAddrs, "public-addr", nil, "public `MULTIADDR` that desktop agents dial (repeatable; default: the listen addresses)")
	fl.StringArrayVar(&f.privateAddrs, "private-addr", nil, "private `MULTIADDR` that servers dial (repeatable; default: the listen addresses)")
	fl.StringArrayVar(&f.publicListen, "public-listen", nil, "public `MULTIADDR` (an IP and a port) where agents not yet logged in may connect to log in, and only that (servers; repeatable; also listened on)")
	fl.BoolVar(&f.encrypt, "encrypt", false, "encrypt the key with a passphrase")
	fl.BoolVar(&f.force, "force", false, "replace an existing key (the old one is kept as host.key.old-<ID>)")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON (fields: id, fingerprint, name, role, witness, home, encrypted, listen, public_addrs, private_addrs, public_listen)")
	return cmd
}

// initFlags are the flags of 'baton init'.
type initFlags struct {
	server, agent, witness, encrypt, force bool
	asJSON                                 bool
	name                                   string
	listen, publicAddrs, privateAddrs      []string
	publicListen                           []string
}

// role is the role the flags ask for.
func (f initFlags) role() (identity.Role, error) {
	switch {
	case (f.server || f.witness) && f.agent:
		return "", usageErrorf("init: give --server (or --witness) or --agent, not both")
	case f.server, f.witness:
		return identity.RoleServer, nil
	case f.agent:
		return identity.RoleAgent, nil
	default:
		return "", usageErrorf("init: give --server (a server in a domain's chain), --witness (a server that only votes) or --agent (a desktop syncing folders)")
	}
}

// runInit makes the home's settings and key, and says what it made.
func (env *cliEnv) runInit(cmd *cobra.Command, f initFlags) error {
	role, err := f.role()
	if err != nil {
		return err
	}
	if env.passphraseFile != "" && !f.encrypt {
		return usageErrorf("init: --passphrase-file given without --encrypt")
	}
	home, err := env.homeDir()
	if err != nil {
		return err
	}
	cfg, err := loadHostConfig(home)
	if err != nil {
		return err
	}
	if err := f.apply(&cfg, role, cmd.Flags().Changed); err != nil {
		return err
	}
	cfg.fillDefaults(env)
	if err := cfg.validate(); err != nil {
		return usageError{fmt.Errorf("init: %w", err)}
	}
	nk, err := env.newHostKey(cmd.Context(), home, cfg, f.encrypt, f.force)
	if err != nil {
		return err
	}
	info := initInfo{
		ID:           nk.key.ID().String(),
		Fingerprint:  nk.key.Fingerprint(),
		Name:         cfg.Name,
		Role:         string(cfg.Role),
		Witness:      cfg.Witness,
		Home:         home,
		Encrypted:    nk.encrypted,
		Listen:       nonNil(cfg.Listen),
		PublicAddrs:  nonNil(cfg.PublicAddrs),
		PrivateAddrs: nonNil(cfg.PrivateAddrs),
		PublicListen: nonNil(cfg.PublicListen),
	}
	w := cmd.OutOrStdout()
	if f.asJSON {
		return writeJSON(w, info)
	}
	printInit(w, info, nk.kept)
	return nil
}

// apply sets in cfg the settings the flags give (changed says which were
// given) for a host of the role.
func (f initFlags) apply(cfg *hostConfig, role identity.Role, changed func(string) bool) error {
	if changed("name") {
		if err := identity.ValidateName(f.name); err != nil {
			return usageErrorf("init: --name: %v", err)
		}
		cfg.Name = f.name
	}
	cfg.Role = role
	cfg.Witness = f.witness
	if changed("listen") {
		cfg.Listen = f.listen
	}
	if changed("public-addr") {
		cfg.PublicAddrs = f.publicAddrs
	}
	if changed("private-addr") {
		cfg.PrivateAddrs = f.privateAddrs
	}
	if changed("public-listen") {
		if role != identity.RoleServer {
			return usageErrorf("init: --public-listen is for servers (agents dial servers and admit no guests)")
		}
		if f.witness {
			return usageErrorf("init: --public-listen is for servers that take logins; a witness takes none")
		}
		cfg.PublicListen = f.publicListen
	}
	if role == identity.RoleAgent || f.witness {
		cfg.PublicListen = nil
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = cfg.listenAddrs()
	}
	return nil
}

// printInit says what init made, and what to do next; kept is where the
// old key went, if one was replaced.
func printInit(w io.Writer, info initInfo, kept string) {
	what := info.Role
	if info.Witness {
		what = "witness server"
	}
	fmt.Fprintf(w, "Initialized %s %s in %s (key %s)\n", what, info.Name, info.Home, encryptedWord(info.Encrypted))
	fmt.Fprintf(w, "  id:          %s\n", info.ID)
	fmt.Fprintf(w, "  fingerprint: %s\n", info.Fingerprint)
	printAddrs(w, "  listen:      ", info.Listen)
	if len(info.PublicListen) > 0 {
		printAddrs(w, "  public:      ", info.PublicListen)
	}
	if kept != "" {
		fmt.Fprintf(w, "  old key:     kept as %s\n", kept)
	}
	if info.Role == string(identity.RoleAgent) {
		fmt.Fprintln(w, "Next: 'baton login USER@<server's public address>/p2p/<server ID>', then 'baton run'.")
		return
	}
	fmt.Fprintf(w, "Next: 'baton keys export -o %s.host' for the domain admin, then 'baton domain create' or 'baton domain join'.\n", info.Name)
	if info.Witness {
		fmt.Fprintf(w, "A witness goes in the chain like a server ('--chain %s.host' or 'baton server add %s.host'); it hosts no folders and takes no logins.\n", info.Name, info.Name)
	}
}
