package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/control"
)

// The Catalog and Report commands: made at any server, for that server's own
// users and reports; the server sends them to the master, which certifies
// and republishes them.

func newFolderCmd(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "folder",
		Short: "Shared folders: create, share, list, status, rescan, history, restore, export, and on an agent accept, leave, revert",
		Long: `Folders (iFolders) are Catalog records hosted by their owner's home server,
which keeps the canonical copy. These commands ask the running daemon ('baton
run') of this home, and do what fits its role:

On a desktop agent, as the logged-in user: 'create NAME PATH' makes a folder
owned by the user and starts syncing PATH; 'share', 'unshare', 'set' and
'leave' ask the hosting server; 'list' shows the user's folders and those shared with them;
'accept NAME PATH' starts syncing a folder shared with the user; 'status',
'rescan' and 'revert' are about the copy synced here. The synced folders are
recorded in <home>/folders.toml.

On a server, for the users whose home server it is: 'create NAME --owner USER',
'share NAME USER --rights ro|rw', 'set NAME' and 'list' (every folder of the domain);
'status' and 'rescan' are about the copy of a folder it hosts.

On both: 'history', 'restore' and 'export' read the versions the hosting
server keeps (an agent asks it).

A folder is named by its name, OWNER/NAME when several have that name, or its ID.`,
		Args: groupArgs,
		RunE: groupRun,
	}
	cmd.AddCommand(newFolderCreateCmd(env), newFolderShareCmd(env), newFolderListCmd(env),
		newFolderUnshareCmd(env), newFolderAcceptCmd(env), newFolderLeaveCmd(env),
		newFolderStatusCmd(env), newFolderRescanCmd(env), newFolderRevertCmd(env), newFolderSetCmd(env),
		newFolderHistoryCmd(env), newFolderRestoreCmd(env), newFolderExportCmd(env))
	return cmd
}

func newFolderCreateCmd(env *cliEnv) *cobra.Command {
	var (
		owner        string
		wait         time.Duration
		allowOutside bool
		keep         string
		replicas     int
	)
	cmd := &cobra.Command{
		Use:   "create NAME PATH | create NAME --owner USER",
		Short: "Create a folder: on an agent, yours, synced at PATH; on a server, USER's",
		Long: `On a desktop agent: create the folder NAME owned by the logged-in user, hosted
on their home server, and sync the directory PATH (made if missing) with it.

On a server: create the folder NAME owned by USER, hosted on this server, which
must be USER's home server.

--allow-outside-symlinks sets the folder option by which the hosting server and
every member create the symlinks members make whose target is absolute or
leaves the folder (by default they are skipped), for a team whose members are
all trusted; 'folder set' changes it later.

--keep POLICY sets the retention policy of the folder's history on its hosting
server (see 'folder set'); the default keeps every version for a day, then one
a day for 30 days, then one a week for a year.

--replicas N: how many servers beside the home server host the folder, each
with its own copy and history, so that members keep syncing through them while
the home server is down: the next N servers of the chain after the home server.
The default is 1 (when the domain has two servers or more); 0 hosts it on the
home server alone. Asking more than the chain has gets every other server.`,
		Example: `  baton folder create Photos ~/Photos          # on an agent
  baton folder create Photos --owner ann        # on ann's home server
  baton folder create Archive ~/Archive --replicas 2`,
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkWait(cmd, wait); err != nil {
				return err
			}
			reps, err := replicasFlag(cmd, "folder create", replicas)
			if err != nil {
				return err
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			agent, err := c.isAgent(cmd.Context())
			if err != nil {
				return err
			}
			if agent {
				if owner != "" {
					return usageErrorf("folder create: --owner is for servers; on an agent the folder is the logged-in user's")
				}
				if len(args) != 2 {
					return usageErrorf("folder create: give the folder's NAME and the local PATH to sync it at")
				}
				if strings.TrimSpace(args[0]) == "" {
					return usageErrorf("folder create: the folder name is empty")
				}
				path, err := folderDir(args[1], true)
				if err != nil {
					return err
				}
				return c.printAgentResult(cmd, env)(c.AgentCreate(cmd.Context(), wait, control.AgentCreateRequest{Name: args[0], Path: path, OutsideSymlinks: allowOutside, Keep: keep, Replicas: reps}))
			}
			if len(args) != 1 {
				return usageErrorf("folder create: on a server, give NAME and --owner USER (PATH is for agents)")
			}
			if owner == "" {
				return usageErrorf("folder create: give the folder's owner with --owner USER")
			}
			if err := identity.ValidateName(owner); err != nil {
				return usageErrorf("folder create: --owner: %v", err)
			}
			if strings.TrimSpace(args[0]) == "" {
				return usageErrorf("folder create: the folder name is empty")
			}
			return printMutation(cmd)(c.CreateFolder(cmd.Context(), wait, control.CreateFolderRequest{Name: args[0], Owner: owner, OutsideSymlinks: allowOutside, Keep: keep, Replicas: reps}))
		},
	}
	cmd.Flags().IntVar(&replicas, "replicas", collections.DefaultReplicas, "how many servers beside the home server host the folder (`N`; 0: the home server alone)")
	cmd.Flags().StringVar(&owner, "owner", "", "the owning `USER` (servers: this server must be their home server)")
	cmd.Flags().BoolVar(&allowOutside, "allow-outside-symlinks", false, "the hosting server and every member create members' symlinks whose target is absolute or leaves the folder")
	cmd.Flags().StringVar(&keep, "keep", "", "the retention `POLICY` of the folder's history, such as all:1d,daily:30d,weekly:365d (the default)")
	waitFlag(cmd, &wait)
	return cmd
}

func newFolderShareCmd(env *cliEnv) *cobra.Command {
	var (
		rights, owner string
		wait          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "share NAME USER --rights ro|rw",
		Short: "Share a folder with USER, read-only or read-write",
		Long: `Give USER read-only (ro) or read-write (rw) access to the folder NAME; sharing
again changes the right.

On a desktop agent: only the folder's owner shares it; the agent asks the
folder's hosting server. On a server: the folder (its name or ID) must be hosted
on this server; if several users have a folder of that name here, say whose
with --owner.`,
		Example: `  baton folder share Photos bob --rights ro`,
		Args:    usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rights != "ro" && rights != "rw" {
				return usageErrorf("folder share: --rights %q: want ro (read-only) or rw (read-write)", rights)
			}
			if err := identity.ValidateName(args[1]); err != nil {
				return usageErrorf("folder share: user name: %v", err)
			}
			if err := checkWait(cmd, wait); err != nil {
				return err
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			agent, err := c.isAgent(cmd.Context())
			if err != nil {
				return err
			}
			if agent {
				if owner != "" {
					return usageErrorf("folder share: --owner is for servers; on an agent name the folder as OWNER/NAME")
				}
				return c.printAgentResult(cmd, env)(c.AgentShare(cmd.Context(), wait, control.AgentShareRequest{Folder: args[0], User: args[1], Rights: rights}))
			}
			return printMutation(cmd)(c.ShareFolder(cmd.Context(), wait,
				control.ShareFolderRequest{Folder: args[0], Owner: owner, User: args[1], Rights: rights}))
		},
	}
	cmd.Flags().StringVar(&rights, "rights", "", "`ro` (read-only) or rw (read-write)")
	cmd.Flags().StringVar(&owner, "owner", "", "the folder's owner `USER`, if several folders here have that name")
	waitFlag(cmd, &wait)
	return cmd
}

func newFolderSetCmd(env *cliEnv) *cobra.Command {
	var (
		owner        string
		wait         time.Duration
		allowOutside bool
		keep         string
		replicas     int
	)
	cmd := &cobra.Command{
		Use:   "set NAME [--allow-outside-symlinks[=false]] [--keep POLICY] [--replicas N]",
		Short: "Set a folder's options (its owner, or the administrator of its hosting server)",
		Long: `Set the options of the folder NAME, recorded in its Catalog record.

--allow-outside-symlinks: the hosting server and every member create the
symlinks members make whose target is absolute or leaves the folder, for a team
whose members are all trusted; --allow-outside-symlinks=false skips them again
(the default). A change takes effect at each host's next sync of the folder.
A member's 'folder accept --allow-outside-symlinks' takes them on that member
alone, whatever the folder's option.

--keep POLICY: which versions of the folder the hosting server keeps in its
history. POLICY is tiers EVERY:FOR, separated by commas: within FOR of now,
keep one version per EVERY (all: every version; hourly, daily, weekly, or a
span), the tiers reaching further back in turn; older versions are dropped
(the latest is always kept). Spans are whole hours, days or weeks (12h, 30d,
52w), or forever. The default, all:1d,daily:30d,weekly:365d, keeps every
version for a day, then the last of each day for 30 days, then of each week for
a year; --keep default sets it back. The server prunes and then deletes the
blocks no kept version references at its start and every hour.

--replicas N: how many servers beside the home server host the folder (0: the
home server alone). The servers hosting it now stay, the last ones dropped
when N is smaller; more are taken in chain order after the home server. A
server that joins starts syncing the folder; one that leaves stops and keeps
its copy and history on disk. Asking more than the chain has gets every other
server, and says so.

On a desktop agent: only the folder's owner sets its options; the agent asks
the folder's hosting server. On a server: the folder must be hosted on this
server; --owner tells same-named folders apart.`,
		Example: `  baton folder set Builds --allow-outside-symlinks
  baton folder set Builds --allow-outside-symlinks=false
  baton folder set Photos --keep all:2d,daily:90d,weekly:forever
  baton folder set Photos --replicas 2`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var outside *bool
			if cmd.Flags().Changed("allow-outside-symlinks") {
				outside = &allowOutside
			}
			reps, err := replicasFlag(cmd, "folder set", replicas)
			if err != nil {
				return err
			}
			if outside == nil && !cmd.Flags().Changed("keep") && reps == nil {
				return usageErrorf("folder set: give an option to set: --allow-outside-symlinks[=false], --keep POLICY or --replicas N")
			}
			if cmd.Flags().Changed("keep") && strings.TrimSpace(keep) == "" {
				return usageErrorf("folder set: --keep needs a POLICY (or default)")
			}
			if err := checkWait(cmd, wait); err != nil {
				return err
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			agent, err := c.isAgent(cmd.Context())
			if err != nil {
				return err
			}
			if agent {
				if owner != "" {
					return usageErrorf("folder set: --owner is for servers; on an agent name the folder as OWNER/NAME")
				}
				return c.printAgentResult(cmd, env)(c.AgentSetOptions(cmd.Context(), wait, control.AgentOptionsRequest{Folder: args[0], OutsideSymlinks: outside, Keep: keep, Replicas: reps}))
			}
			return printMutation(cmd)(c.SetFolderOptions(cmd.Context(), wait,
				control.FolderOptionsRequest{Folder: args[0], Owner: owner, OutsideSymlinks: outside, Keep: keep, Replicas: reps}))
		},
	}
	cmd.Flags().IntVar(&replicas, "replicas", collections.DefaultReplicas, "how many servers beside the home server host the folder (`N`; 0: the home server alone)")
	cmd.Flags().BoolVar(&allowOutside, "allow-outside-symlinks", false, "the hosting server and every member create members' symlinks whose target is absolute or leaves the folder")
	cmd.Flags().StringVar(&keep, "keep", "", "the retention `POLICY` of the folder's history (all:1d,daily:30d,weekly:365d by default; default sets it back)")
	cmd.Flags().StringVar(&owner, "owner", "", "the folder's owner `USER`, if several folders here have that name")
	waitFlag(cmd, &wait)
	return cmd
}

func newFolderListCmd(env *cliEnv) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List folders: on an agent, yours and those shared with you; on a server, all",
		Long: `List folders. On a desktop agent: the logged-in user's folders and those
shared with them, with the user's role and where each is synced here. On a
server: every folder of the domain, with its members and their roles.

` + roleHelp,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			agent, err := c.isAgent(cmd.Context())
			if err != nil {
				return err
			}
			if agent {
				return c.agentList(cmd, asJSON)
			}
			folders, err := c.Folders(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, folders)
			}
			if len(folders) == 0 {
				fmt.Fprintln(w, "no folders")
				return nil
			}
			fmt.Fprintf(w, "%-16s %-20s %-12s %-16s %s\n", "ID", "NAME", "OWNER", "SERVER", "MEMBERS")
			for _, f := range folders {
				members := make([]string, len(f.Members))
				for i, m := range f.Members {
					members[i] = m.User + ":" + m.Right
				}
				fmt.Fprintf(w, "%-16s %-20s %-12s %-16s %s\n", f.ID, f.Name, f.Owner, f.ServerName, strings.Join(members, ","))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (a list of {id, name, owner, server, server_name, members: [{user, right}], hosts, replicas}; on an agent also right (the user's role) and path)")
	return cmd
}

func newReportCmd(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Reports: generate this server's usage report, list and show reports",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(newReportGenerateCmd(env), newReportListCmd(env), newReportShowCmd(env))
	return cmd
}

func newReportGenerateCmd(env *cliEnv) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Generate a usage report of this server and publish it to the domain",
		Long: `Generate a usage report of this server (kind "usage"): the users whose home
server it is, the folders it hosts with their member counts, and the sizes of
its data files. The report is a JSON document, published in the Report
collection; read it with 'baton report show ID'.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkWait(cmd, wait); err != nil {
				return err
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			return printMutation(cmd)(c.GenerateReport(cmd.Context(), wait, control.GenerateReportRequest{Kind: "usage"}))
		},
	}
	waitFlag(cmd, &wait)
	return cmd
}

func newReportListCmd(env *cliEnv) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the domain's reports, oldest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			reports, err := c.Reports(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, reports)
			}
			if len(reports) == 0 {
				fmt.Fprintln(w, "no reports")
				return nil
			}
			fmt.Fprintf(w, "%-16s %-16s %-8s %-20s %s\n", "ID", "AUTHOR", "KIND", "CREATED", "BYTES")
			for _, r := range reports {
				fmt.Fprintf(w, "%-16s %-16s %-8s %-20s %d\n", r.ID, r.AuthorName, r.Kind, r.Created.Format(time.RFC3339), r.Size)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (a list of {id, author, author_name, kind, created, size})")
	return cmd
}

func newReportShowCmd(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Print a report's content",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			r, err := c.Report(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			var buf bytes.Buffer
			if json.Indent(&buf, r.Content, "", "  ") == nil {
				buf.WriteByte('\n')
				_, err := buf.WriteTo(w)
				return err
			}
			w.Write(r.Content)
			if len(r.Content) > 0 && r.Content[len(r.Content)-1] != '\n' {
				fmt.Fprintln(w)
			}
			return nil
		},
	}
	return cmd
}

// replicasFlag is the --replicas flag's value if it was given, else nil.
func replicasFlag(cmd *cobra.Command, what string, n int) (*int, error) {
	if !cmd.Flags().Changed("replicas") {
		return nil, nil
	}
	if n < 0 {
		return nil, usageErrorf("%s: --replicas %d: give 0 (the home server alone) or more", what, n)
	}
	return &n, nil
}
