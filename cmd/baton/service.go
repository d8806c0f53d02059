package main

import (
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
		Short: "Run the daemon as a per-user service: install",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(newServiceInstallCmd(env))
	return cmd
}

func newServiceInstallCmd(env *cliEnv) *cobra.Command {
	var user bool
	cmd := &cobra.Command{
		Use:   "install --user",
		Short: "Write a per-user service that runs 'baton run' at login",
		Long: `Writes what makes this home's daemon ('baton --home HOME run') start at the
user's login and restart if it fails, and prints how to start it now:
on macOS a launchd agent in ~/Library/LaunchAgents (output in HOME/baton.log),
on Windows a scheduled task at logon (its XML in HOME, registered with
schtasks), on Linux a systemd user unit in ~/.config/systemd/user (output
in the journal). For a server started at boot, see the hardened system
unit in contrib/systemd. The key must be usable without a prompt: unencrypted, or with
--passphrase-file, which the service is given.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !user {
				return usageErrorf("service install: only --user is supported: give --user")
			}
			home, _, err := env.requireHostKey()
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the baton executable: %w", err)
			}
			userHome, err := os.UserHomeDir()
			if err != nil {
				return fmt.Errorf("finding the user's home directory: %w", err)
			}
			return env.installService(runtime.GOOS, exe, home, userHome)
		},
	}
	cmd.Flags().BoolVar(&user, "user", false, "install for the current user, started at login")
	return cmd
}

// installService writes the per-user service of goos for the daemon of
// home run by exe, and says what it wrote and how to start it.
func (e *cliEnv) installService(goos, exe, home, userHome string) error {
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
