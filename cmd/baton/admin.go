package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/bytesize"
	"github.com/baton-sync/baton/internal/control"
)

// master; elsewhere they fail with one line naming it.

func newUserCmd(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Provision users: add, set, remove, list (at the master); passwd (at their home server)",
		Long: `Users are provisioned in the Domain, at the master: each has a home server,
where the user logs in and where their folders are hosted. These commands ask
the running daemon ('baton run') of this home.`,
		Args: groupArgs,
		RunE: groupRun,
	}
	cmd.AddCommand(newUserAddCmd(env), newUserSetCmd(env), newUserRemoveCmd(env), newUserListCmd(env), newUserPasswdCmd(env))
	return cmd
}

func newUserAddCmd(env *cliEnv) *cobra.Command {
	var (
		homeServer string
		quota      string
		admin      bool
		wait       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "add NAME --home-server SERVER [--quota SIZE] [--admin]",
		Short: "Add a user with a home server (at the master)",
		Long: `Add user NAME to the domain. SERVER, a server of the chain given by host
name or peer ID, is the user's home server: the user logs in there and their
folders are hosted there. --quota bounds the bytes of the folders the user
owns, as the home server holds them; --admin makes the user an administrator,
who may log in to a server's console with their password. Run at the master.`,
		Example: `  baton user add ann --home-server s2
  baton user add ann --home-server s2 --quota 10GiB --admin`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := identity.ValidateName(args[0]); err != nil {
				return usageErrorf("user add: user name: %v", err)
			}
			if homeServer == "" {
				return usageErrorf("user add: give the user's home server with --home-server SERVER (a server's name or peer ID)")
			}
			if err := checkWait(cmd, wait); err != nil {
				return err
			}
			req := control.AddUserRequest{Name: args[0], HomeServer: homeServer, Admin: admin}
			if quota != "" {
				q, err := parseQuota(quota)
				if err != nil {
					return usageErrorf("user add: %v", err)
				}
				req.Quota = q
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			return printMutation(cmd)(c.AddUser(cmd.Context(), wait, req))
		},
	}
	cmd.Flags().StringVar(&homeServer, "home-server", "", "the user's home `SERVER`: a server's host name or peer ID")
	cmd.Flags().StringVar(&quota, "quota", "", "bound the bytes of the user's folders at their home server (`SIZE`: 10GiB, 500MiB, 2TB; none: no bound)")
	cmd.Flags().BoolVar(&admin, "admin", false, "make the user an administrator of the domain")
	waitFlag(cmd, &wait)
	return cmd
}

// parseQuota reads --quota: a size, or none (0: no bound).
func parseQuota(s string) (int64, error) {
	if strings.EqualFold(strings.TrimSpace(s), "none") {
		return 0, nil
	}
	q, err := bytesize.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("--quota: %v (or none)", err)
	}
	return q, nil
}

func newUserSetCmd(env *cliEnv) *cobra.Command {
	var (
		quota string
		admin bool
		wait  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "set NAME [--quota SIZE|none] [--admin[=false]]",
		Short: "Change a user's quota or admin flag (at the master)",
		Long: `Change user NAME's settings; those not given stay as they are.
--quota SIZE bounds the bytes of the folders the user owns, as their home
server holds them (the current files, not their history): a device's change
that would take the user past it is refused by the servers hosting the folder
and waits on the device, which keeps its files, until there is room; --quota
none removes the bound. --admin makes the user an administrator of the domain, who may log
in to a server's console with their password; --admin=false takes it back.
Only the server's own command line or an admin may change these. Run at the
master.`,
		Example: `  baton user set ann --quota 10GiB
  baton user set ann --quota none
  baton user set ann --admin
  baton user set ann --admin=false`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req control.SetUserRequest
			if cmd.Flags().Changed("quota") {
				q, err := parseQuota(quota)
				if err != nil {
					return usageErrorf("user set: %v", err)
				}
				req.Quota = &q
			}
			if cmd.Flags().Changed("admin") {
				req.Admin = &admin
			}
			if req.Quota == nil && req.Admin == nil {
				return usageErrorf("user set: nothing to change: give --quota SIZE|none or --admin[=false]")
			}
			if err := checkWait(cmd, wait); err != nil {
				return err
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			return printMutation(cmd)(c.SetUser(cmd.Context(), wait, args[0], req))
		},
	}
	cmd.Flags().StringVar(&quota, "quota", "", "bound the bytes of the user's folders at their home server (`SIZE`: 10GiB, 500MiB, 2TB), or none")
	cmd.Flags().BoolVar(&admin, "admin", false, "make the user an administrator (--admin=false: no longer)")
	waitFlag(cmd, &wait)
	return cmd
}

func newUserRemoveCmd(env *cliEnv) *cobra.Command {
	var (
		wait       time.Duration
		transferTo string
	)
	cmd := &cobra.Command{
		Use:   "remove NAME [--transfer-to USER]",
		Short: "Remove a user (at the master)",
		Long: `Remove user NAME, for good, in one change: every device of the user stops
being accepted everywhere and every folder shared with the user no longer is.
The user's identity is never valid again: a user added later with the same
name is another user, with none of the removed one's devices or folders. The
folders NAME owns go to --transfer-to USER (a user with the same home server,
where they stay hosted), or without it are archived: kept, read-only for their
members, with no owner. Run at the master.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkWait(cmd, wait); err != nil {
				return err
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			return printMutation(cmd)(c.RemoveUser(cmd.Context(), wait, args[0], control.RemoveUserRequest{TransferTo: transferTo}))
		},
	}
	cmd.Flags().StringVar(&transferTo, "transfer-to", "", "hand the user's folders to `USER` (else they are archived)")
	waitFlag(cmd, &wait)
	return cmd
}

func newUserListCmd(env *cliEnv) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the domain's users and their home servers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			users, err := c.Users(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, users)
			}
			if len(users) == 0 {
				fmt.Fprintln(w, "no users")
				return nil
			}
			fmt.Fprintf(w, "%-20s %-16s %-10s %-6s %s\n", "USER", "HOME SERVER", "QUOTA", "ADMIN", "HOME SERVER ID")
			for _, u := range users {
				quota, adm := "none", "-"
				if u.Quota > 0 {
					quota = strings.ReplaceAll(bytesize.Format(u.Quota), " ", "")
				}
				if u.Admin {
					adm = "yes"
				}
				fmt.Fprintf(w, "%-20s %-16s %-10s %-6s %s\n", u.Name, u.HomeServerName, quota, adm, u.HomeServer)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (a list of {name, home_server, home_server_name, quota, admin})")
	return cmd
}

func newServerCmd(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Change the server chain: add, remove, list (changes at the master)",
		Long: `The server chain orders the domain's servers: the first live one is the
master. Changes are made at the master; these commands ask the running daemon
('baton run') of this home.`,
		Args: groupArgs,
		RunE: groupRun,
	}
	cmd.AddCommand(newServerAddCmd(env), newServerRemoveCmd(env), newServerListCmd(env), newServerPromoteCmd(env))
	return cmd
}

func newServerAddCmd(env *cliEnv) *cobra.Command {
	var (
		position int
		wait     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "add HOSTFILE [--position N]",
		Short: "Add a server to the chain from its signed host record (at the master)",
		Long: `Add the server whose signed host record ('baton keys export' on it) is in
HOSTFILE to the domain and to the chain, at position N (1 is the front: the
master while it lives; default: the end). Adding a third server turns on
majority failover if it was off. Then run 'baton domain join' on the new server
with the domain's genesis, and start it. Run at the master.`,
		Example: `  baton server add s4.host
  baton server add s4.host --position 2`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("position") && position < 1 {
				return usageErrorf("server add: --position %d: positions start at 1", position)
			}
			if err := checkWait(cmd, wait); err != nil {
				return err
			}
			hf, err := readHostFile(env, args[0])
			if err != nil {
				return err
			}
			if hf.rec.Role != identity.RoleServer {
				return fmt.Errorf("%s: host %s (%s) has role %s; only servers join the chain", args[0], hf.rec.Name, hf.rec.ID(), hf.rec.Role)
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			return printMutation(cmd)(c.AddServer(cmd.Context(), wait, control.AddServerRequest{Record: hf.record, Position: position}))
		},
	}
	cmd.Flags().IntVar(&position, "position", 0, "place in the chain, from `N`=1 (default: last)")
	waitFlag(cmd, &wait)
	return cmd
}

func newServerRemoveCmd(env *cliEnv) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a server from the chain and the domain (at the master)",
		Long: `Remove the server NAME (host name or peer ID) from the chain and its host
record from the domain. The master cannot remove itself, the last server cannot
be removed, and a server that is still some user's home server is refused
(remove or move those users first). Run at the master.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkWait(cmd, wait); err != nil {
				return err
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			return printMutation(cmd)(c.RemoveServer(cmd.Context(), wait, args[0]))
		},
	}
	waitFlag(cmd, &wait)
	return cmd
}

func newServerListCmd(env *cliEnv) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the server chain, in order",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			servers, err := c.Servers(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, servers)
			}
			for _, s := range servers {
				fmt.Fprintf(w, "%d. %-16s %s\n", s.Position, s.Name, s.ID)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (a list of {position, id, name, public_addrs, private_addrs})")
	return cmd
}

func newServerPromoteCmd(env *cliEnv) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "promote --force",
		Short: "Make this server the chain's only voter when the majority is lost for good",
		Long: `A chain takes changes only while a majority of its voters is reachable: with
three voters, two; with five, three. If a majority is lost for good (disks
gone, machines destroyed), 'baton server promote --force', run on a surviving
server, makes it the chain's only voter, and the domain takes changes again.

It is an operator's decision, not a failover: every entry of this server's
log is kept, but a change the lost servers committed among themselves that
never reached this server is not in its history. When such a server comes
back it gets this server's history (its own log is copied aside, as
raft-generation-N.db in its data directory), rejoins as a learner and is made
a voter again once caught up; the changes it held that this history lacks are
logged and listed in forced-promotion-N.json in its data directory, and its
'baton status' says so. Never promote while the other servers may still run
cut off from this one: both sides would take changes.

The server refuses while it knows a master. The command talks to the running
daemon ('baton run') of this home.`,
		Example: `  baton server promote --force`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force {
				return usageErrorf("server promote: the other servers' changes not replicated here are left out of the chain's history; give --force to confirm")
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			p, err := c.PromoteForce(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "ok: this server is the chain's only voter (generation %d; its log ends at term %d, index %d", p.Generation, p.Term, p.Index)
			if p.Uncommitted > 0 {
				fmt.Fprintf(w, ", of which %d entries at the end were not known committed and now are", p.Uncommitted)
			}
			fmt.Fprintf(w, ")\n")
			fmt.Fprintf(w, "the log as it was is kept in %s\n", p.OldLog)
			fmt.Fprintf(w, "the other servers rejoin as learners when they come back, are made voters once caught up, and report what their logs held that this one lacks\n")
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "confirm: this server's history becomes the chain's")
	return cmd
}
