package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/internal/control"
)

// The history commands: a folder's versions, restore and export. On a
// server, for the folders it hosts; on an agent, asked of the folder's
// hosting server.

const historyHelp = `The hosting server keeps every version of the folders it hosts: each change
of its copy is kept as a snapshot (a version, numbered from 1), its files as
content-addressed blocks stored once whatever version holds them. On a server
these commands read its store, for a folder it hosts (--owner tells same-named
folders apart); on a desktop agent they ask the folder's hosting server, for
one of the user's folders: every member may list and export, only the owner and
read-write members may restore.

TIME is RFC 3339 (2026-12-04T15:04:05Z), a local date and time (2026-12-04
15:04[:05], or a date alone, at midnight), or a duration ago (90m, 2h, 3d).`

func newFolderHistoryCmd(env *cliEnv) *cobra.Command {
	var (
		owner  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "history NAME [PATH] [--json]",
		Short: "List the versions of a folder's files kept by its hosting server",
		Long: `List the versions of PATH (a file, or every entry under a directory; the
whole folder if left out) in the folder NAME, oldest first: the version, when
the server kept it, the device and user that made it (for a restore, who
asked for it, and the path is marked restored), the size and hash of the
file, or that it was deleted. 'baton folder restore NAME PATH --version V'
brings one back.

` + historyHelp,
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			req := control.HistoryRequest{FolderRefRequest: control.FolderRefRequest{Folder: args[0], Owner: owner}}
			if len(args) == 2 {
				req.Path = args[1]
			}
			h, err := c.FolderHistory(cmd.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), h)
			}
			printHistory(cmd.OutOrStdout(), h)
			return nil
		},
	}
	cmd.Flags().StringVar(&owner, "owner", "", "on a server: the owner of the folder, when several have its name")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printHistory writes h as a table.
func printHistory(w io.Writer, h control.FolderHistory) {
	if len(h.Versions) == 0 {
		fmt.Fprintf(w, "no versions of %s in folder %s (%s)\n", orAll(h.Path), h.Name, h.ID)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tTIME\tUSER\tDEVICE\tSIZE\tHASH\tPATH")
	for _, v := range h.Versions {
		size, hash := "-", "-"
		switch {
		case v.Deleted:
			size = "deleted"
		case v.Type == "file":
			size = fmt.Sprint(v.Size)
			hash = v.Hash[:min(len(v.Hash), 16)]
		default:
			size = v.Type
		}
		user, dev := v.User, v.Device
		if v.RestoredByDevice != "" {
			// A restore: the server made it, on behalf of whoever asked.
			user, dev = v.RestoredBy, v.RestoredByDevice
		}
		if user == "" {
			user = "-"
		}
		if len(dev) > 12 {
			dev = "…" + dev[len(dev)-12:]
		}
		p := v.Path
		if v.RestoredByDevice != "" {
			p += " (restored)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Version, v.Time.Local().Format("2006-01-02 15:04:05"), user, dev, size, hash, p)
	}
	tw.Flush()
}

func orAll(p string) string {
	if p == "" {
		return "any file"
	}
	return p
}

func newFolderRestoreCmd(env *cliEnv) *cobra.Command {
	var (
		owner   string
		version uint64
		at      string
		all     bool
	)
	cmd := &cobra.Command{
		Use:   "restore NAME PATH [--version V | --at TIME] | restore NAME --all --at TIME",
		Short: "Restore a file, a directory or a whole folder from its history",
		Long: `Restore PATH of the folder NAME (a file, or a directory with everything under
it) as it was at version V ('baton folder history' lists them) or at TIME;
with --all, the whole folder as it was at TIME. Without --version or --at,
PATH is restored to its last version that was not a deletion: a deleted file
comes back as it was when deleted.

A restore is a new change, made on the hosting server: it syncs to every
member as any change, and it never rewrites history (the restore is kept as a
new version, and the versions it replaces stay). Files made since that time are
deleted where a directory or the whole folder is restored. Before anything is
written every block is read from the store and checked against its hash.

` + historyHelp,
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := control.RestoreRequest{FolderRefRequest: control.FolderRefRequest{Folder: args[0], Owner: owner}, All: all, Version: version}
			if len(args) == 2 {
				req.Path = args[1]
			}
			switch {
			case all && len(args) == 2:
				return usageErrorf("give PATH or --all, not both")
			case !all && len(args) == 1:
				return usageErrorf("name the PATH to restore, or --all --at TIME for the whole folder")
			case all && at == "" && version == 0:
				return usageErrorf("--all needs --at TIME")
			}
			var err error
			if req.At, err = pointFlags(version, at); err != nil {
				return err
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			res, err := c.RestoreFolder(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %s\n", res.Done)
			for _, f := range res.Failed {
				fmt.Fprintf(cmd.ErrOrStderr(), "not restored: %s\n", f)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&owner, "owner", "", "on a server: the owner of the folder, when several have its name")
	cmd.Flags().Uint64Var(&version, "version", 0, "the version to restore ('folder history' lists them)")
	cmd.Flags().StringVar(&at, "at", "", "restore as it was at `TIME`")
	cmd.Flags().BoolVar(&all, "all", false, "restore the whole folder (with --at)")
	return cmd
}

func newFolderExportCmd(env *cliEnv) *cobra.Command {
	var (
		owner   string
		version uint64
		at      string
	)
	cmd := &cobra.Command{
		Use:   "export NAME DIR [--at TIME | --version V]",
		Short: "Write a folder as it was into a directory, as plain files",
		Long: `Write the folder NAME as it was at TIME or version V (its last version kept if
neither is given) into DIR, which must be new or empty, as plain files: for
backups and audits. Every block is checked against its hash before it is
written. On an agent the files come from the folder's hosting server.

` + historyHelp,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[1])
			if err != nil {
				return err
			}
			req := control.ExportRequest{FolderRefRequest: control.FolderRefRequest{Folder: args[0], Owner: owner}, Dir: dir, Version: version}
			if req.At, err = pointFlags(version, at); err != nil {
				return err
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			res, err := c.ExportFolder(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %s\n", res.Done)
			return nil
		},
	}
	cmd.Flags().StringVar(&owner, "owner", "", "on a server: the owner of the folder, when several have its name")
	cmd.Flags().Uint64Var(&version, "version", 0, "the version to export")
	cmd.Flags().StringVar(&at, "at", "", "export the folder as it was at `TIME`")
	return cmd
}

// pointFlags checks the --version and --at flags and returns --at's time
// (zero if not given).
func pointFlags(version uint64, at string) (time.Time, error) {
	switch {
	case version != 0 && at != "":
		return time.Time{}, usageErrorf("give --version or --at, not both")
	case at == "":
		return time.Time{}, nil
	}
	t, err := parseHistoryTime(at, time.Now())
	if err != nil {
		return time.Time{}, usageError{err}
	}
	return t, nil
}

// parseHistoryTime reads a TIME of the history commands, now being the
// current time: RFC 3339, a local date and time, or a duration ago.
func parseHistoryTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	ago := strings.TrimSuffix(strings.TrimSpace(strings.TrimSuffix(s, "ago")), " ")
	if d, ok := strings.CutSuffix(ago, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err == nil && fmt.Sprint(n) == d && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(ago); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-12-04T15:04:05Z), a local date and time (2026-12-04 15:04), or a duration ago (2h, 3d)", s)
}
