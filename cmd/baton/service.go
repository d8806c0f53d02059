package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/internal/atomicfile"
)

func newServiceCmd(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Run the daemon as a service: install, remove",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(newServiceInstallCmd(env), newServiceRemoveCmd(env))
	return cmd
}

func newServiceInstallCmd(env *cliEnv) *cobra.Command {
	var user bool
	cmd := &cobra.Command{
		Use:   "install [--user]",
		Short: "Write, enable and start a system service (a server), or a per-user one (--user)",
		Long: `Without --user (a server, on Linux, as root): writes the hardened systemd
system unit /etc/systemd/system/baton.service that runs this home's daemon
('baton --home HOME run') at boot as the home's owner and again if it fails,
the same as contrib/systemd/baton-server.service but for its home and
executable; then enables and starts it. Its output goes to the journal
(journalctl -u baton).

With --user: writes what makes this home's daemon start at the user's login
and restart if it fails: on Linux a systemd user unit in
~/.config/systemd/user (output in the journal), which it enables and starts;
on macOS a launchd agent in ~/Library/LaunchAgents (output in HOME/baton.log)
and on Windows a scheduled task at logon (its XML in HOME, registered with
schtasks), printing how to start them.

The key must be usable without a prompt: unencrypted, or with
--passphrase-file, which the service is given. 'baton service remove'
undoes it.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, _, err := env.requireHostKey()
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the baton executable: %w", err)
			}
			if !user {
				s, err := env.systemSpec(exe, home)
				if err != nil {
					return err
				}
				return env.installSystemService(cmd.Context(), runtime.GOOS, s)
			}
			userHome, err := os.UserHomeDir()
			if err != nil {
				return fmt.Errorf("finding the user's home directory: %w", err)
			}
			return env.installService(cmd.Context(), runtime.GOOS, exe, home, userHome)
		},
	}
	cmd.Flags().BoolVar(&user, "user", false, "install for the current user, started at login")
	return cmd
}

func newServiceRemoveCmd(env *cliEnv) *cobra.Command {
	var user bool
	cmd := &cobra.Command{
		Use:   "remove [--user]",
		Short: "Stop, disable and delete the service 'service install' wrote",
		Long: `Stops, disables and deletes the systemd unit 'baton service install' wrote:
the system unit /etc/systemd/system/baton.service (as root), or with --user
the per-user unit ~/.config/systemd/user/baton.service; then reloads systemd.
On macOS and Windows it prints the commands that remove the per-user
service instead.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			userHome, err := os.UserHomeDir()
			if err != nil && user {
				return fmt.Errorf("finding the user's home directory: %w", err)
			}
			return env.removeService(cmd.Context(), runtime.GOOS, user, userHome)
		},
	}
	cmd.Flags().BoolVar(&user, "user", false, "remove the current user's service")
	return cmd
}

// systemSpec is the system unit of the daemon of home run by exe, as the
// home's owner.
func (e *cliEnv) systemSpec(exe, home string) (systemSpec, error) {
	s := systemSpec{serviceSpec: serviceSpec{Exe: exe, Home: home}}
	if e.passphraseFile != "" {
		abs, err := filepath.Abs(e.passphraseFile)
		if err != nil {
			return systemSpec{}, fmt.Errorf("passphrase file: %w", err)
		}
		s.PassphraseFile = abs
	}
	u, g, err := homeOwner(home)
	if err != nil {
		return systemSpec{}, err
	}
	s.User, s.Group = u, g
	return s, nil
}

// installService writes the per-user service of goos for the daemon of
// home run by exe, and says what it wrote and how to start it; on Linux
// it also enables and starts the systemd user unit.
func (e *cliEnv) installService(ctx context.Context, goos, exe, home, userHome string) error {
	spec := serviceSpec{Exe: exe, Home: home, LogFile: filepath.Join(home, "baton.log")}
	if e.passphraseFile != "" {
		abs, err := filepath.Abs(e.passphraseFile)
		if err != nil {
			return fmt.Errorf("passphrase file: %w", err)
		}
		spec.PassphraseFile = abs
	}
	f, err := userService(goos, spec, userHome)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
		return fmt.Errorf("writing the service: %w", err)
	}
	if err := atomicfile.WriteFile(f.Path, f.Data, 0o644); err != nil {
		return fmt.Errorf("writing the service: %w", err)
	}
	line := windowsArgs(append([]string{exe}, spec.args()...))
	if goos != "windows" {
		line = shellQuote(exe)
		for _, a := range spec.args() {
			line += " " + shellQuote(a)
		}
	}
	if goos == "linux" {
		for _, args := range [][]string{{"--user", "daemon-reload"}, {"--user", "enable", "--now", systemdUnitName}} {
			if err := e.runSystemctl(ctx, args...); err != nil {
				return fmt.Errorf("wrote %s but did not start it (start it with 'systemctl --user enable --now %s' in the user's session): %w", f.Path, systemdUnitName, err)
			}
		}
		fmt.Fprintf(e.stdout, "Wrote %s, enabled and started it (systemctl --user enable --now %s): it runs %s at login.\n", f.Path, systemdUnitName, line)
		fmt.Fprintf(e.stdout, "To run it also while you are logged out: loginctl enable-linger \"$USER\"\n")
		fmt.Fprintln(e.stdout, "Stop and remove it with: baton service remove --user, or:")
		for _, c := range f.Stop {
			fmt.Fprintf(e.stdout, "  %s\n", c)
		}
		return nil
	}
	fmt.Fprintf(e.stdout, "Wrote %s: it runs %s at login.\nStart it now with:\n", f.Path, line)
	for _, c := range f.Start {
		fmt.Fprintf(e.stdout, "  %s\n", c)
	}
	fmt.Fprintln(e.stdout, "Stop and remove it with:")
	for _, c := range f.Stop {
		fmt.Fprintf(e.stdout, "  %s\n", c)
	}
	return nil
}
