package main

import (
	"fmt"
	"io"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer"
)

// Users' passwords and devices: made at the user's home server, where the
// password is kept and device certificates are issued.

func newUserPasswdCmd(env *cliEnv) *cobra.Command {
	var passwordFile string
	cmd := &cobra.Command{
		Use:   "passwd NAME [--password-file FILE]",
		Short: "Set a user's password (at the user's home server)",
		Long: `Set the password user NAME logs in with ('baton login' on a desktop agent).
Run it at the user's home server: only that server keeps the password (an
argon2id hash in its data directory) and checks it. Elsewhere the command
names the home server.

The password is read from the first line of --password-file, else
$BATON_PASSWORD, else asked for twice at the terminal without echo.`,
		Example: `  baton user passwd ann
  baton user passwd ann --password-file /run/secrets/ann`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := identity.ValidateName(args[0]); err != nil {
				return usageErrorf("user passwd: user name: %v", err)
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			// Ask the daemon first, so a wrong server is said before a
			// password is typed.
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if st.Role == "agent" {
				return fmt.Errorf("this host is a desktop agent: set passwords at the user's home server")
			}
			users, err := c.Users(cmd.Context())
			if err != nil {
				return err
			}
			found := false
			for _, u := range users {
				if u.Name == args[0] {
					found = true
					if u.HomeServer != st.ID {
						return fmt.Errorf("user %s's home server is %s (%s): set the password there", u.Name, u.HomeServerName, u.HomeServer)
					}
				}
			}
			if !found {
				return fmt.Errorf("no user %s in the domain (add one at the master with 'baton user add')", args[0])
			}
			pw, err := env.password(cmd.Context(), passwordFile, "New password for "+args[0]+": ", true)
			if err != nil {
				return err
			}
			defer clear(pw)
			if len(pw) > peer.MaxPasswordSize {
				return fmt.Errorf("the password is %d bytes; at most %d", len(pw), peer.MaxPasswordSize)
			}
			res, err := c.SetPassword(cmd.Context(), args[0], pw)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %s\n", res.Done)
			return nil
		},
	}
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "read the password from the first line of `FILE` (else $BATON_PASSWORD, else a terminal prompt)")
	return cmd
}

func newDeviceCmd(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Users' devices: list, revoke (at the user's home server)",
		Long: `A device is a desktop agent a user logged in on: its key is bound to the user
by a certificate the user's home server signed. Every server lists every
device; revoke one at its user's home server, and every host closes its
connections and refuses it within seconds. These commands ask the running
daemon ('baton run') of this home.`,
		Args: groupArgs,
		RunE: groupRun,
	}
	cmd.AddCommand(newDeviceListCmd(env), newDeviceRevokeCmd(env))
	return cmd
}

func newDeviceListCmd(env *cliEnv) *cobra.Command {
	var (
		asJSON bool
		user   string
	)
	cmd := &cobra.Command{
		Use:   "list [--user USER] [--json]",
		Short: "List the devices of every user, or of USER",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user != "" {
				if err := identity.ValidateName(user); err != nil {
					return usageErrorf("device list: --user: %v", err)
				}
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			ds, err := c.Devices(cmd.Context(), user)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, ds)
			}
			printDevices(w, ds, env.now())
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "only `USER`'s devices")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (a list of {id, user, name, server, server_name, issued, expires, revoked, revocation_queued, valid})")
	return cmd
}

func printDevices(w io.Writer, ds []peer.DeviceInfo, now time.Time) {
	if len(ds) == 0 {
		fmt.Fprintln(w, "no devices")
		return
	}
	fmt.Fprintf(w, "%-52s %-12s %-20s %-12s %-20s %s\n", "ID", "USER", "NAME", "HOME SERVER", "EXPIRES", "STATE")
	for _, d := range ds {
		state := "valid"
		switch {
		case d.Revoked:
			state = "revoked"
		case d.RevocationQueued:
			state = "revocation queued"
		case !d.Expires.After(now):
			state = "expired"
		case !d.Valid:
			state = "not accepted"
		}
		fmt.Fprintf(w, "%-52s %-12s %-20s %-12s %-20s %s\n", printable(d.ID), printable(d.User), printable(d.Name), printable(d.ServerName), d.Expires.UTC().Format(time.RFC3339), state)
	}
}

func newDeviceRevokeCmd(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a device (at its user's home server)",
		Long: `Revoke the device ID (its peer ID, from 'baton device list'): every server and
device closes its connections and refuses it from then on. A revocation is
final: no renewal, login or later record makes the device valid again; its
user logs in again only from a new device key. Run at the user's home server.

It prints "ok: ..." once the revocation is committed by the chain, and
"queued: ..." when no master is reachable: the revocation then waits in this
server's outbox, this server refuses the device's logins and renewals, and
'baton device list' shows it as "revocation queued" until it is committed.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := lpeer.Decode(args[0]); err != nil {
				return usageErrorf("device revoke: %q is not a device ID (a peer ID, see 'baton device list')", args[0])
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			return printMutation(cmd)(c.RevokeDevice(cmd.Context(), args[0]))
		},
	}
	return cmd
}
