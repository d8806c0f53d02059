package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/atomicfile"
)

func newDomainCmd(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "domain",
		Short: "Create, join, export and show the domain this host belongs to",
		Long: `A domain is an ordered chain of servers (the first live one is the master)
and the hosts and users they serve. It starts from a genesis: the chain's host
records and the failover settings, signed by the first server of the chain.
Every host keeps the genesis in <home>/domain.genesis; 'baton run' needs it.

On the first server: 'baton domain create --name D --chain s1.host --chain s2.host ...'.
Then 'baton domain export -o D.genesis', copy the file to the other hosts, and
run 'baton domain join D.genesis' there.`,
		Args: groupArgs,
		RunE: groupRun,
	}
	cmd.AddCommand(
		newDomainCreateCmd(env),
		newDomainExportCmd(env),
		newDomainJoinCmd(env),
		newDomainShowCmd(env),
	)
	return cmd
}

// errNoDomain is the error of a command that needs the genesis when the
// home has none.
func errNoDomain(home string) error {
	return fmt.Errorf("no domain in %s: run 'baton domain create' or 'baton domain join'", home)
}

// loadGenesis reads and verifies <home>/domain.genesis.
func loadGenesis(home string) (collections.Genesis, error) {
	path := filepath.Join(home, genesisFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return collections.Genesis{}, errNoDomain(home)
	}
	if err != nil {
		return collections.Genesis{}, fmt.Errorf("reading the domain genesis: %w", err)
	}
	g, err := openGenesisFile(data)
	if err != nil {
		return collections.Genesis{}, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// openGenesisFile decodes (armored or raw) and verifies a genesis.
func openGenesisFile(data []byte) (collections.Genesis, error) {
	raw, err := unarmor(data)
	if err != nil {
		return collections.Genesis{}, fmt.Errorf("not a baton domain genesis: %w", err)
	}
	if e, err := identity.UnmarshalEnvelope(raw); err == nil && e.Purpose != identity.PurposeGenesis {
		return collections.Genesis{}, fmt.Errorf("not a baton domain genesis: a signed record with purpose %q", e.Purpose)
	}
	g, err := collections.OpenGenesis(raw)
	if err != nil {
		return collections.Genesis{}, fmt.Errorf("invalid domain genesis: %w", err)
	}
	return g, nil
}

// shortHash is the first 8 bytes of a hash in hex: enough to tell domains
// and digests apart by eye.
func shortHash(h [32]byte) string { return hex.EncodeToString(h[:8]) }

// hostFile is a verified host record read from a file.
type hostFile struct {
	path   string
	rec    identity.HostRecord
	record []byte // canonical envelope bytes (collections.Host.Record)
}

// readHostFile reads and verifies a signed host record ('keys export').
func readHostFile(env *cliEnv, path string) (hostFile, error) {
	data, err := readRecordFile(env, path)
	if err != nil {
		return hostFile{}, err
	}
	e, err := decodeEnvelope(data)
	if err != nil {
		return hostFile{}, fmt.Errorf("%s: not a signed host record ('baton keys export' writes one): %w", path, err)
	}
	if e.Purpose != identity.PurposeHostRecord {
		return hostFile{}, fmt.Errorf("%s: not a host record but a signed record with purpose %q", path, e.Purpose)
	}
	rec, err := identity.OpenHostRecord(e)
	if err != nil {
		return hostFile{}, verifyError(path, err)
	}
	raw, err := e.Marshal()
	if err != nil {
		return hostFile{}, fmt.Errorf("%s: %w", path, err)
	}
	return hostFile{path: path, rec: rec, record: raw}, nil
}

func newDomainCreateCmd(env *cliEnv) *cobra.Command {
	var (
		name     string
		chain    []string
		hosts    []string
		majority string
		force    bool
	)
	cmd := &cobra.Command{
		Use:   "create --name DOMAIN --chain HOSTFILE...",
		Short: "Found a domain: sign its genesis with this host, the first server of the chain",
		Long: `Create the genesis of a new domain and save it as <home>/domain.genesis.

Each --chain HOSTFILE is a server's signed host record ('baton keys export'),
in chain order: the first is the master while it lives, then the next, and so
on. The first must be this host's own record, because the genesis is signed by
the first server of the chain. --host adds other member hosts (desktop agents)
that may connect from the start.

The chain runs a consensus engine (raft): a change is acknowledged once a
majority of the voters (the first five servers of the chain) hold it, and a
master that cannot reach a majority stops acknowledging. So one or two servers
cannot fail over: with two, the domain stops taking changes while either is
down. Use three servers or more, or add a witness: a small server that votes
and keeps the log but hosts no folders and takes no logins ('baton init
--witness' on a third machine; its host record goes in --chain like a
server's, preferably last).

--majority is kept for older scripts: the consensus engine always needs a
majority ('off' is refused for three servers or more, as before).

The key is needed (and its passphrase, if it is encrypted).`,
		Example: `  baton keys export -o s1.host          # on each server; collect the files
  baton domain create --name example --chain s1.host --chain s2.host --chain s3.host`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return env.createDomain(cmd, name, chain, hosts, majority, force)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "the domain's `NAME`")
	fl.StringArrayVar(&chain, "chain", nil, "a server's signed host record `HOSTFILE`, in chain order (repeatable; the first is this host's)")
	fl.StringArrayVar(&hosts, "host", nil, "another member host's (agent's) signed host record `HOSTFILE` (repeatable)")
	fl.StringVar(&majority, "majority", "auto", "majority failover: `auto`, on or off (auto: on for 3+ servers)")
	fl.BoolVar(&force, "force", false, "replace an existing domain.genesis")
	return cmd
}

// createDomain is 'domain create': it signs the genesis of a domain name
// whose chain is the servers' host record files chain, with the member
// hosts' files hosts, and saves it in the home.
func (env *cliEnv) createDomain(cmd *cobra.Command, name string, chain, hosts []string, majority string, force bool) error {
	if err := identity.ValidateName(name); err != nil {
		return usageErrorf("domain create: --name: %v", err)
	}
	if len(chain) == 0 {
		return usageErrorf("domain create: give the servers' host records in chain order with --chain HOSTFILE (the first is this host's own)")
	}
	if len(chain) > collections.MaxChainServers {
		return usageErrorf("domain create: %d servers in --chain; at most %d", len(chain), collections.MaxChainServers)
	}
	settings, err := failoverSettings(len(chain), majority)
	if err != nil {
		return err
	}
	home, key, _, err := env.loadHostKey(cmd.Context())
	if err != nil {
		return err
	}
	path := filepath.Join(home, genesisFile)
	if err := checkNoGenesis(home, path, force); err != nil {
		return err
	}
	ids, records, err := readGenesisHosts(env, key.ID(), chain, hosts)
	if err != nil {
		return err
	}
	raw, err := collections.NewGenesis(key, collections.DomainInfo{Name: name, Settings: settings},
		collections.Chain{Servers: ids}, records, env.now())
	if err != nil {
		return fmt.Errorf("creating domain %s: %w", name, err)
	}
	g, err := collections.OpenGenesis(raw)
	if err != nil {
		return fmt.Errorf("creating domain %s: the new genesis does not verify: %w", name, err)
	}
	if err := makeHome(home); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, armorBytes(raw), 0o644); err != nil {
		return fmt.Errorf("saving the domain genesis: %w", err)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "Created domain %s (%s)\n", name, shortHash(g.Hash()))
	printGenesisChain(w, g)
	if len(ids) < 3 {
		fmt.Fprintf(w, "Warning: %d server(s) cannot fail over: a change needs a majority of the chain, so the domain stops taking changes while any server is down. Add servers to make three or more: add a third server or a witness ('baton init --witness': it votes and keeps the log, hosts no folders and takes no logins).\n", len(ids))
	}
	fmt.Fprintf(w, "Saved %s. On the other hosts: 'baton domain join FILE' with the output of 'baton domain export'.\n", path)
	return nil
}

// failoverSettings are the failover settings of a chain of n servers with
// --majority majority.
func failoverSettings(n int, majority string) (collections.FailoverSettings, error) {
	settings := collections.DefaultFailover(n)
	switch majority {
	case "auto":
	case "on":
		settings.Majority = true
	case "off":
		if n >= 3 {
			return settings, usageErrorf("domain create: --majority off: a chain of %d servers needs majority failover (the plain chain rule is for one or two)", n)
		}
		settings.Majority = false
	default:
		return settings, usageErrorf("domain create: --majority %q: want auto, on or off", majority)
	}
	return settings, nil
}

// checkNoGenesis refuses to replace the genesis at path without force.
func checkNoGenesis(home, path string, force bool) error {
	exists, err := fileExists(path)
	if err != nil {
		return err
	}
	if !exists || force {
		return nil
	}
	if g, err := loadGenesis(home); err == nil {
		return fmt.Errorf("this host already belongs to domain %s (%s): give --force to replace %s", g.Domain.Name, shortHash(g.Hash()), path)
	}
	return fmt.Errorf("%s already exists: give --force to replace it", path)
}

// readGenesisHosts reads the host record files of a new domain: chain, the
// servers in order, the first of them self; hosts, the other members. It
// returns the chain's IDs and every record, each host once.
func readGenesisHosts(env *cliEnv, self lpeer.ID, chain, hosts []string) (ids []string, records [][]byte, err error) {
	seen := map[lpeer.ID]string{}
	add := func(hf hostFile) error {
		if prev, dup := seen[hf.rec.ID()]; dup {
			return fmt.Errorf("%s and %s are both the host record of %s (%s)", prev, hf.path, hf.rec.Name, hf.rec.ID())
		}
		seen[hf.rec.ID()] = hf.path
		records = append(records, hf.record)
		return nil
	}
	for i, p := range chain {
		hf, err := readHostFile(env, p)
		if err != nil {
			return nil, nil, err
		}
		if i == 0 && hf.rec.ID() != self {
			return nil, nil, fmt.Errorf("%s is the host record of %s (%s), not of this host (%s): the first --chain record must be this host's own ('baton keys export'), because the genesis is signed by the first server of the chain",
				p, hf.rec.Name, hf.rec.ID(), self)
		}
		if hf.rec.Role != identity.RoleServer {
			return nil, nil, fmt.Errorf("%s: host %s (%s) has role %s; the chain holds servers only", p, hf.rec.Name, hf.rec.ID(), hf.rec.Role)
		}
		if err := add(hf); err != nil {
			return nil, nil, err
		}
		ids = append(ids, hf.rec.ID().String())
	}
	for _, p := range hosts {
		hf, err := readHostFile(env, p)
		if err != nil {
			return nil, nil, err
		}
		if err := add(hf); err != nil {
			return nil, nil, err
		}
	}
	return ids, records, nil
}

func newDomainExportCmd(env *cliEnv) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the domain genesis, for 'baton domain join' on the other hosts",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := env.homeDir()
			if err != nil {
				return err
			}
			g, err := loadGenesis(home)
			if err != nil {
				return err
			}
			data := armorBytes(g.Marshal())
			if out == "" || out == "-" {
				_, err := cmd.OutOrStdout().Write(data)
				return err
			}
			if err := atomicfile.WriteFile(out, data, 0o644); err != nil {
				return fmt.Errorf("exporting the domain genesis: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote the genesis of domain %s (%s) to %s\n", g.Domain.Name, shortHash(g.Hash()), out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to `FILE` instead of stdout")
	return cmd
}

func newDomainJoinCmd(env *cliEnv) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "join FILE",
		Short: "Verify a domain genesis and make this host a member of its domain",
		Long: `Verify FILE, a domain genesis ('baton domain export' on a server of the
domain; "-" is stdin), and save it as <home>/domain.genesis.

This host must be in the genesis: in the chain, or among its hosts. A server
added to the chain after the domain was founded ('baton server add' at the
master) is not in the genesis: it may join, with a warning, and takes part once
the master's change reaches it.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			home, keyPath, err := env.requireHostKey()
			if err != nil {
				return err
			}
			info, err := identity.ReadKeyFileInfo(keyPath)
			if err != nil {
				return err
			}
			cfg, err := env.hostSettings(home)
			if err != nil {
				return err
			}
			data, err := readRecordFile(env, args[0])
			if err != nil {
				return err
			}
			g, err := openGenesisFile(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			path := filepath.Join(home, genesisFile)
			if old, err := loadGenesis(home); err == nil {
				if old.Hash() == g.Hash() {
					fmt.Fprintf(cmd.OutOrStdout(), "Already a member of domain %s (%s)\n", g.Domain.Name, shortHash(g.Hash()))
					return nil
				}
				if !force {
					return fmt.Errorf("this host already belongs to domain %s (%s): give --force to replace %s", old.Domain.Name, shortHash(old.Hash()), path)
				}
			} else if exists, _ := fileExists(path); exists && !force {
				return fmt.Errorf("%w; give --force to replace it", err)
			}

			w := cmd.OutOrStdout()
			member := genesisMember(g, info.ID)
			if member == "" {
				if cfg.Role != identity.RoleServer {
					return fmt.Errorf("this host (%s) is not a member of domain %s: ask the admin to add it to the domain", info.ID, g.Domain.Name)
				}
				fmt.Fprintf(env.stderr, "baton: warning: this host (%s) is not in the genesis of domain %s: it takes part once the master has added it with 'baton server add'\n", info.ID, g.Domain.Name)
			}
			if err := atomicfile.WriteFile(path, armorBytes(g.Marshal()), 0o644); err != nil {
				return fmt.Errorf("saving the domain genesis: %w", err)
			}
			fmt.Fprintf(w, "Joined domain %s (%s)", g.Domain.Name, shortHash(g.Hash()))
			if member != "" {
				fmt.Fprintf(w, " as %s", member)
			}
			fmt.Fprintln(w)
			printGenesisChain(w, g)
			fmt.Fprintf(w, "Saved %s. Start the host with 'baton run'.\n", path)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing domain.genesis of another domain")
	return cmd
}

// genesisMember says what id is in g: "server N of the chain", "member
// host", or "" if g does not list it.
func genesisMember(g collections.Genesis, id string) string {
	for i, s := range g.Chain.Servers {
		if s == id {
			return fmt.Sprintf("server %d of the chain", i+1)
		}
	}
	for _, b := range g.Hosts {
		if r, err := (collections.Host{Record: b}).Open(); err == nil && r.ID().String() == id {
			return "member host"
		}
	}
	return ""
}

// genesisHosts returns g's host records by peer ID.
func genesisHosts(g collections.Genesis) map[string]identity.HostRecord {
	m := make(map[string]identity.HostRecord, len(g.Hosts))
	for _, b := range g.Hosts {
		if r, err := (collections.Host{Record: b}).Open(); err == nil {
			m[r.ID().String()] = r
		}
	}
	return m
}

func printGenesisChain(w io.Writer, g collections.Genesis) {
	hosts := genesisHosts(g)
	for i, id := range g.Chain.Servers {
		label := "  chain:    "
		if i > 0 {
			label = "            "
		}
		fmt.Fprintf(w, "%s%d. %s %s\n", label, i+1, hosts[id].Name, id)
	}
	fmt.Fprintf(w, "  failover: %s\n", failoverText(g.Domain.Settings))
}

func failoverText(s collections.FailoverSettings) string {
	rule := "plain chain rule"
	if s.Majority {
		rule = "majority"
	}
	return fmt.Sprintf("%s, heartbeat %d ms, fail after %d ms", rule, s.HeartbeatMillis, s.FailAfterMillis)
}

// domainJSON is 'domain show --json'. The field names are stable.
type domainJSON struct {
	Name     string       `json:"name"`
	Hash     string       `json:"hash"` // BLAKE3 of the signed genesis, hex
	Created  time.Time    `json:"created"`
	Failover failoverJSON `json:"failover"`
	Chain    []string     `json:"chain"` // peer IDs, in order
	Hosts    []hostJSON   `json:"hosts"` // every host record, chain servers first
}

type failoverJSON struct {
	Majority        bool `json:"majority"`
	HeartbeatMillis int  `json:"heartbeat_ms"`
	FailAfterMillis int  `json:"fail_after_ms"`
}

type hostJSON struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Role         string   `json:"role"`
	PublicAddrs  []string `json:"public_addrs"`
	PrivateAddrs []string `json:"private_addrs"`
}

func hostToJSON(r identity.HostRecord) hostJSON {
	return hostJSON{
		ID:           r.ID().String(),
		Name:         r.Name,
		Role:         string(r.Role),
		PublicAddrs:  nonNil(r.PublicAddrs),
		PrivateAddrs: nonNil(r.PrivateAddrs),
	}
}

func newDomainShowCmd(env *cliEnv) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show the domain genesis: name, hash, chain, failover settings, hosts",
		Long: `Show <home>/domain.genesis: the domain as it was founded. The live chain,
users and hosts (after 'server add', 'user add', ...) are in the running
daemon: see 'baton status', 'baton user list' and 'baton server list'.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := env.homeDir()
			if err != nil {
				return err
			}
			g, err := loadGenesis(home)
			if err != nil {
				return err
			}
			hosts := genesisHosts(g)
			h := g.Hash()
			d := domainJSON{
				Name:    g.Domain.Name,
				Hash:    hex.EncodeToString(h[:]),
				Created: g.CreatedAt(),
				Failover: failoverJSON{
					Majority:        g.Domain.Settings.Majority,
					HeartbeatMillis: g.Domain.Settings.HeartbeatMillis,
					FailAfterMillis: g.Domain.Settings.FailAfterMillis,
				},
				Chain: append([]string{}, g.Chain.Servers...),
				Hosts: []hostJSON{},
			}
			for _, id := range g.Chain.Servers {
				d.Hosts = append(d.Hosts, hostToJSON(hosts[id]))
			}
			for _, b := range g.Hosts {
				r, err := (collections.Host{Record: b}).Open()
				if err != nil || g.Chain.Contains(r.ID()) {
					continue
				}
				d.Hosts = append(d.Hosts, hostToJSON(r))
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, d)
			}
			fmt.Fprintf(w, "domain:   %s\n", d.Name)
			fmt.Fprintf(w, "hash:     %s\n", d.Hash)
			fmt.Fprintf(w, "created:  %s\n", d.Created.Format(time.RFC3339))
			printGenesisChain(w, g)
			fmt.Fprintf(w, "  hosts:\n")
			for _, hj := range d.Hosts {
				fmt.Fprintf(w, "    %-16s %-6s %s\n", hj.Name, hj.Role, hj.ID)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (fields: name, hash, created, failover, chain, hosts)")
	return cmd
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
