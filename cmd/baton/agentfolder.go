package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/bytesize"
	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer/foldersync"
)

// The agent's folder commands: through the agent daemon's control API,
// which asks the folder's hosting server and drives the sync engine.

// isAgent asks the daemon whether it runs as a desktop agent.
func (c *controlClient) isAgent(ctx context.Context) (bool, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return false, err
	}
	return st.Role == string(identity.RoleAgent), nil
}

// requireAgent fails unless the daemon is a desktop agent.
func (c *controlClient) requireAgent(cmd *cobra.Command) error {
	agent, err := c.isAgent(cmd.Context())
	if err != nil {
		return err
	}
	if !agent {
		return fmt.Errorf("%sthis host is a server: this command is for desktop agents", cmdPrefix(cmd))
	}
	return nil
}

// printAgentResult returns a function that prints an agent folder
// change's result: "ok: <what>", or "queued: <what>; ..." when the hosting
// server waits for the master. A warning goes to stderr.
func (c *controlClient) printAgentResult(cmd *cobra.Command, env *cliEnv) func(control.AgentResult, error) error {
	return func(res control.AgentResult, err error) error {
		if err != nil {
			return err
		}
		return writeAgentResult(cmd, env, res)
	}
}

func writeAgentResult(cmd *cobra.Command, env *cliEnv, res control.AgentResult) error {
	w := cmd.OutOrStdout()
	if res.Queued {
		fmt.Fprintf(w, "queued: %s (the hosting server sends it when a master is reachable)\n", res.Done)
	} else {
		fmt.Fprintf(w, "ok: %s\n", res.Done)
	}
	if res.Warning != "" {
		fmt.Fprintf(env.stderr, "baton: warning: %s\n", oneLine(res.Warning))
	}
	return nil
}

// agentList prints the user's folders.
func (c *controlClient) agentList(cmd *cobra.Command, asJSON bool) error {
	folders, err := c.AgentFolders(cmd.Context())
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if asJSON {
		return writeJSON(w, folders)
	}
	if len(folders) == 0 {
		fmt.Fprintln(w, "no folders (create one with 'baton folder create NAME PATH')")
		return nil
	}
	fmt.Fprintf(w, "%-16s %-20s %-12s %-6s %-12s %s\n", "ID", "NAME", "OWNER", "ROLE", "SERVER", "PATH")
	for _, f := range folders {
		path := f.Path
		if path == "" {
			path = "-"
			if f.Right != "owner" {
				path = "- (not synced here: 'baton folder accept')"
			}
		}
		fmt.Fprintf(w, "%-16s %-20s %-12s %-6s %-12s %s\n", f.ID, f.Name, f.Owner, f.Right, f.ServerName, path)
	}
	return nil
}

// folderDir makes arg an absolute, clean directory path; with create it
// makes the directory if it is missing.
func folderDir(arg string, create bool) (string, error) {
	if strings.TrimSpace(arg) == "" {
		return "", usageErrorf("the folder path is empty")
	}
	path, err := filepath.Abs(arg)
	if err != nil {
		return "", fmt.Errorf("folder path %s: %w", arg, err)
	}
	if create {
		if err := control.MakeFolderDir(path); err != nil {
			return "", err
		}
		return path, nil
	}
	st, err := os.Stat(path)
	switch {
	case err == nil && !st.IsDir():
		return "", fmt.Errorf("%s is not a directory", path)
	case err != nil:
		return "", fmt.Errorf("folder path: %w", err)
	}
	return path, nil
}

func newFolderUnshareCmd(env *cliEnv) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "unshare NAME USER",
		Short: "Stop sharing your folder with USER (on an agent)",
		Long: `Remove USER from the members of the folder NAME. Only the folder's owner
unshares it; the agent asks the folder's hosting server. USER's devices stop
syncing it; the files they have stay.`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := identity.ValidateName(args[1]); err != nil {
				return usageErrorf("folder unshare: user name: %v", err)
			}
			if err := checkWait(cmd, wait); err != nil {
				return err
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			if err := c.requireAgent(cmd); err != nil {
				return err
			}
			return c.printAgentResult(cmd, env)(c.AgentUnshare(cmd.Context(), wait, control.AgentShareRequest{Folder: args[0], User: args[1]}))
		},
	}
	waitFlag(cmd, &wait)
	return cmd
}

func newFolderAcceptCmd(env *cliEnv) *cobra.Command {
	var allowOutside, windowsNames bool
	cmd := &cobra.Command{
		Use:   "accept NAME PATH",
		Short: "Start syncing a folder shared with you at PATH (on an agent)",
		Long: `Sync the folder NAME, shared with the logged-in user (or their own, on another
of their devices), at the directory PATH, made if missing. A folder that
another owner's folder shares a name with is named OWNER/NAME, or by its ID.

Symlinks from other members whose target is absolute or leaves the folder are
not created ('folder status' lists them as skipped) unless the folder allows
them (its option, 'folder set NAME --allow-outside-symlinks', for every member
and the hosting server) or --allow-outside-symlinks is given here: a local
override that takes them on this device alone, whatever the folder's option.
Those that reach this device through the hosting server come only when the
folder allows them, as the server takes them only then.

With --windows-names, the folder keeps to the names Windows can hold, as it
always does on Windows: other members' entries that Windows could not hold
(reserved names such as CON or NUL, trailing dots and spaces, <>:"|?*\,
paths over 259 characters) are neither created nor deleted here, and 'folder
status' lists them as skipped. It is recorded in folders.toml as
windows_names.`,
		Example: `  baton folder accept Photos ~/Photos-from-ann
  baton folder accept ann/Photos ~/Photos-from-ann
  baton folder accept Builds ~/builds --allow-outside-symlinks
  baton folder accept Shared ~/shared --windows-names`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			if err := c.requireAgent(cmd); err != nil {
				return err
			}
			path, err := folderDir(args[1], true)
			if err != nil {
				return err
			}
			return c.printAgentResult(cmd, env)(c.AgentAccept(cmd.Context(), control.DefaultWait,
				control.AgentAcceptRequest{Folder: args[0], Path: path, OutsideSymlinks: allowOutside, WindowsNames: windowsNames}))
		},
	}
	cmd.Flags().BoolVar(&allowOutside, "allow-outside-symlinks", false, "create other members' symlinks whose target is absolute or leaves the folder")
	cmd.Flags().BoolVar(&windowsNames, "windows-names", false, "keep to the names Windows can hold (always so on Windows)")
	return cmd
}

func newFolderLeaveCmd(env *cliEnv) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "leave NAME",
		Short: "Leave a folder shared with you (on an agent)",
		Long: `Remove the logged-in user from the members of the folder NAME (the owner
cannot leave their own folder), and stop syncing it here. The local files stay.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkWait(cmd, wait); err != nil {
				return err
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			if err := c.requireAgent(cmd); err != nil {
				return err
			}
			return c.printAgentResult(cmd, env)(c.AgentLeave(cmd.Context(), wait, control.AgentFolderRequest{Folder: args[0]}))
		},
	}
	waitFlag(cmd, &wait)
	return cmd
}

func newFolderRevertCmd(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revert NAME",
		Short: "Undo local changes to a read-only folder (on an agent)",
		Long: `Make the copy of the folder NAME synced here equal to the hosting server's.
For a read-only member, whose local changes nobody accepts: local content the
server does not have is kept beside it as a conflict copy, never deleted.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			if err := c.requireAgent(cmd); err != nil {
				return err
			}
			res, err := c.AgentRevert(cmd.Context(), control.AgentFolderRequest{Folder: args[0]})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %s\n", res.Done)
			return nil
		},
	}
	return cmd
}

// statusPoll is how often 'folder status --wait' and 'folder rescan
// --wait' ask again.
const statusPoll = 250 * time.Millisecond

// folderWaitFlags are the --wait, --timeout and --json flags of 'folder
// status' and 'folder rescan'.
type folderWaitFlags struct {
	wait, asJSON bool
	timeout      time.Duration
	owner        string
}

func (fl *folderWaitFlags) add(cmd *cobra.Command, waitUsage string) {
	cmd.Flags().BoolVar(&fl.wait, "wait", false, waitUsage)
	cmd.Flags().DurationVar(&fl.timeout, "timeout", 0, "with --wait, give up after `D` (e.g. 5m; default: no limit)")
	cmd.Flags().BoolVar(&fl.asJSON, "json", false, "print JSON ({id, name, root, role, state, local_files, local_dirs, local_bytes, need_files, need_bytes, local_changes, in_sync, last_error, hint, progress, last_scan})")
	cmd.Flags().StringVar(&fl.owner, "owner", "", "on a server: the folder's owner `USER`, if several folders here have that name")
}

func (fl *folderWaitFlags) check(cmd *cobra.Command) error {
	if cmd.Flags().Changed("timeout") && !fl.wait {
		return usageErrorf("%s--timeout goes with --wait", cmdPrefix(cmd))
	}
	if fl.timeout < 0 {
		return usageErrorf("%s--timeout %s: want a positive duration", cmdPrefix(cmd), fl.timeout)
	}
	return nil
}

// folderStatusGetter returns a function that asks the daemon for the status
// of the folder ref (owned by owner, on a server).
func (c *controlClient) folderStatusGetter(ref, owner string) func(ctx context.Context) (control.FolderStatus, error) {
	return func(ctx context.Context) (control.FolderStatus, error) {
		return c.FolderStatus(ctx, control.FolderRefRequest{Folder: ref, Owner: owner})
	}
}

// waitFolder asks for the folder's status every statusPoll, showing the
// progress, until done says so, and returns the last status. It gives up
// after fl.timeout, if set, and when stop says the folder will not get
// there by itself.
func (fl *folderWaitFlags) waitFolder(cmd *cobra.Command, env *cliEnv, get func(context.Context) (control.FolderStatus, error),
	st control.FolderStatus, done, stop func(control.FolderStatus) bool) (control.FolderStatus, error) {
	ctx := cmd.Context()
	if fl.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, fl.timeout)
		defer cancel()
	}
	p := progressPrinter{w: cmd.OutOrStdout(), tty: env.stdoutTTY && !fl.asJSON, quiet: fl.asJSON}
	defer p.end()
	notInSync := func() error {
		return fmt.Errorf("folder %s is not in sync after %s: %d files, %s still needed", st.Name, fl.timeout, st.NeedFiles, bytesize.FormatTenths(st.NeedBytes))
	}
	tick := time.NewTicker(statusPoll)
	defer tick.Stop()
	for !done(st) {
		if stop != nil && stop(st) {
			p.end()
			return st, fmt.Errorf("folder %s is stopped: %s; %s", st.Name, st.LastError, st.Hint)
		}
		p.show(st)
		select {
		case <-ctx.Done():
			if cmd.Context().Err() != nil {
				return st, cmd.Context().Err()
			}
			return st, notInSync()
		case <-tick.C:
		}
		next, err := get(ctx)
		if err != nil {
			if ctx.Err() != nil && cmd.Context().Err() == nil {
				return st, notInSync()
			}
			return st, err
		}
		st = next
	}
	return st, nil
}

// inSync: the folder is in sync and nothing is being scanned.
func inSync(st control.FolderStatus) bool { return st.InSync && st.State == foldersync.StateIdle }

// roleHelp documents the role 'folder status' and 'folder list' show.
const roleHelp = `A folder's role is what the user (or this host) is to it: owner, rw
(read-write member), ro (read-only member) or, on the hosting server, server.
'folder list' shows it as ROLE ("right" in its JSON), 'folder status' as role:
("role" in its JSON).`

func newFolderStatusCmd(env *cliEnv) *cobra.Command {
	var fl folderWaitFlags
	cmd := &cobra.Command{
		Use:   "status NAME [--wait [--timeout D]] [--json]",
		Short: "Show a synced folder's state: files and bytes still needed, progress",
		Long: `Show the state of the folder NAME as synced here: idle, scanning, syncing or
error, the files and bytes still to fetch, local changes not (yet) accepted by
the server, and the progress. On a desktop agent NAME is one of the user's
folders synced on this device; on a server, a folder it hosts (--owner tells
same-named folders apart).

` + roleHelp + `

A folder whose directory is found empty, its ` + foldersync.MarkerFile + ` file gone, stops
with an error rather than deleting every file everywhere: if its drive is not
mounted, mount it; if the files were deleted on purpose, confirm it with
'baton folder rescan NAME'.

The transfer line (fetched, copied, resumed and served in the JSON) counts
block bytes since the daemon started: fetched from other hosts, reused from
files already here, resumed from the partial file of an interrupted fetch
instead of fetched again, and served to other hosts.

--wait blocks until the folder is in sync (with a progress bar on a terminal,
else a line each time the numbers change), up to --timeout if given; it exits
with status 1 if the time runs out or the folder is stopped as above. With
--json, one JSON object is printed (after the wait).`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := fl.check(cmd); err != nil {
				return err
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			get := c.folderStatusGetter(args[0], fl.owner)
			st, err := get(cmd.Context())
			if err != nil {
				return err
			}
			if fl.wait {
				stopped := func(st control.FolderStatus) bool { return st.Emptied }
				if st, err = fl.waitFolder(cmd, env, get, st, inSync, stopped); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			if fl.asJSON {
				return writeJSON(w, st)
			}
			printFolderStatus(w, st)
			return nil
		},
	}
	fl.add(cmd, "wait until the folder is in sync")
	return cmd
}

func newFolderRescanCmd(env *cliEnv) *cobra.Command {
	var fl folderWaitFlags
	cmd := &cobra.Command{
		Use:   "rescan NAME [--wait [--timeout D] [--json]]",
		Short: "Rescan a synced folder now; confirms a folder emptied on purpose",
		Long: `Ask the running daemon to rescan the folder NAME in full now, rather than at
the next periodic rescan. On a desktop agent NAME is one of the user's folders
synced on this device; on a server, a folder it hosts (--owner tells
same-named folders apart).

It is also how to confirm that a folder was emptied on purpose: a folder whose
directory is found empty, its ` + foldersync.MarkerFile + ` file gone, is stopped ('baton folder
status' says so) rather than taken for deleted, as when its drive is not
mounted. The rescan then takes its files for deleted, and the deletion reaches
every device that syncs the folder.

--wait blocks until the rescan is done and the folder in sync again (a
progress bar on a terminal, else a line each time the numbers change), up to
--timeout if given, then prints the folder's status (JSON with --json).`,
		Example: `  baton folder rescan Photos
  baton folder rescan Photos --wait --timeout 5m`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := fl.check(cmd); err != nil {
				return err
			}
			if fl.asJSON && !fl.wait {
				return usageErrorf("folder rescan: --json goes with --wait")
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			get := c.folderStatusGetter(args[0], fl.owner)
			var before control.FolderStatus
			if fl.wait {
				if before, err = get(cmd.Context()); err != nil {
					return err
				}
			}
			res, err := c.Rescan(cmd.Context(), control.FolderRefRequest{Folder: args[0], Owner: fl.owner})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if !fl.asJSON {
				fmt.Fprintf(w, "ok: %s\n", res.Done)
			}
			if !fl.wait {
				return nil
			}
			rescanned := func(st control.FolderStatus) bool { return !st.LastScan.Equal(before.LastScan) && inSync(st) }
			st, err := fl.waitFolder(cmd, env, get, before, rescanned, nil)
			if err != nil {
				return err
			}
			if fl.asJSON {
				return writeJSON(w, st)
			}
			printFolderStatus(w, st)
			return nil
		},
	}
	fl.add(cmd, "wait until the rescan is done and the folder in sync")
	return cmd
}

func printFolderStatus(w io.Writer, st control.FolderStatus) {
	st = printableStatus(st)
	state := st.State
	if st.InSync && st.State == "idle" {
		state = "in sync"
	}
	fmt.Fprintf(w, "folder %s (%s) at %s: %s\n", st.Name, st.ID, st.Root, state)
	if st.Role != "" {
		fmt.Fprintf(w, "  role:          %s\n", st.Role)
	}
	if st.Role != "server" {
		// The servers hosting the folder that this device syncs with.
		servers := "none connected"
		if len(st.Servers) > 0 {
			var names []string
			for _, s := range st.Servers {
				names = append(names, printable(s.Name))
			}
			servers = strings.Join(names, ", ")
		}
		fmt.Fprintf(w, "  syncing with:  %s\n", servers)
	}
	if st.Role == "server" || len(st.Devices) > 0 {
		// The member devices syncing through this server (on an agent:
		// with this device directly).
		devices := "none connected"
		if len(st.Devices) > 0 {
			var names []string
			for _, d := range st.Devices {
				names = append(names, printable(d.Name)+" ("+printable(d.User)+")")
			}
			devices = strings.Join(names, ", ")
		}
		fmt.Fprintf(w, "  devices:       %s\n", devices)
	}
	fmt.Fprintf(w, "  local:         %d files, %d directories, %s\n", st.LocalFiles, st.LocalDirs, bytesize.FormatTenths(st.LocalBytes))
	fmt.Fprintf(w, "  needed:        %d files, %s\n", st.NeedFiles, bytesize.FormatTenths(st.NeedBytes))
	fmt.Fprintf(w, "  progress:      %.0f%%\n", 100*st.Progress)
	if st.Fetched != 0 || st.Copied != 0 || st.Resumed != 0 || st.Served != 0 {
		fmt.Fprintf(w, "  transfer:      %s fetched, %s reused, %s resumed, %s served (since the daemon started)\n",
			bytesize.FormatTenths(st.Fetched), bytesize.FormatTenths(st.Copied), bytesize.FormatTenths(st.Resumed), bytesize.FormatTenths(st.Served))
	}
	if st.LocalChanges > 0 {
		what := "not yet accepted by the server"
		if st.Role == "ro" {
			what = "not accepted (read-only): 'baton folder revert " + st.Name + "' undoes them"
		}
		fmt.Fprintf(w, "  local changes: %d, %s\n", st.LocalChanges, what)
	}
	if q := st.Quota; q != nil {
		fmt.Fprintf(w, "  quota:         %s of %s used (%s's)\n", bytesize.FormatTenths(q.Used), bytesize.FormatTenths(q.Limit), printable(q.User))
	}
	if st.QuotaRefused != "" {
		fmt.Fprintf(w, "  refused:       %s\n", st.QuotaRefused)
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "  error:         %s\n", st.LastError)
	}
	for _, c := range st.Failed {
		fmt.Fprintf(w, "  failed:        %s (%d attempts): %s\n", printable(c.Path), c.Attempts, printable(c.Reason))
	}
	for _, b := range st.Busy {
		fmt.Fprintf(w, "  busy:          %s: in use by another program, retrying\n", printable(b.Path))
	}
	for _, s := range st.Skipped {
		fmt.Fprintf(w, "  skipped:       %s: %s\n", printable(s.Path), printable(s.Reason))
	}
	if more := st.SkippedCount - len(st.Skipped); more > 0 {
		fmt.Fprintf(w, "  skipped:       %d more\n", more)
	}
	if h := st.History; h != nil {
		if h.Versions == 0 {
			fmt.Fprintf(w, "  history:       no version kept yet (kept by %s)\n", h.Keep)
		} else {
			fmt.Fprintf(w, "  history:       %d versions since %s, %s in %d blocks, kept by %s\n",
				h.Versions, h.Oldest.Local().Format("2006-01-02 15:04"), bytesize.FormatTenths(h.Bytes), h.Blocks, h.Keep)
		}
	}
	if st.Hint != "" {
		fmt.Fprintf(w, "  hint:          %s\n", st.Hint)
	}
}

// progressPrinter shows a waiting folder's progress: a bar redrawn in
// place on a terminal, else a line each time the numbers change.
type progressPrinter struct {
	w     io.Writer
	tty   bool
	quiet bool
	last  string
	drawn bool
}

func (p *progressPrinter) show(st control.FolderStatus) {
	st = printableStatus(st)
	if p.quiet {
		return
	}
	line := fmt.Sprintf("%s: %s, %d files, %s to go", st.Name, st.State, st.NeedFiles, bytesize.FormatTenths(st.NeedBytes))
	if st.LastError != "" {
		line += " (" + st.LastError + ")"
	}
	if !p.tty {
		if line != p.last {
			fmt.Fprintln(p.w, line)
			p.last = line
		}
		return
	}
	const width = 30
	n := int(st.Progress * width)
	bar := strings.Repeat("#", n) + strings.Repeat(".", width-n)
	fmt.Fprintf(p.w, "\r\033[K[%s] %3.0f%% %s", bar, 100*st.Progress, line)
	p.drawn = true
}

// end finishes the bar's line.
func (p *progressPrinter) end() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
