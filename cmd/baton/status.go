package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
)

func newStatusCmd(env *cliEnv) *cobra.Command {
	var (
		asJSON   bool
		waitRole string
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running daemon: role, master, epoch, peers, collections",
		Long: `Ask the running daemon ('baton run') of this home for its status: host name
and ID, role (master, slave, candidate or agent), the current master and epoch,
the connected peers and the address each connection uses (private or public),
and per collection the record count, digest and last update time, the outbox
(updates waiting for the master's receipt) and data files quarantined after
changing behind the daemon's back.

--wait ROLE asks again every 100ms until the daemon answers with that role,
then prints its status as usual; a daemon that is not answering yet (still
starting, or not started) is waited for too. It gives up after --timeout
(default 30s) with an error naming the role of the daemon's last answer, or
saying that it never answered. Scripts use it rather than sleeping: 'baton
status --wait master' after starting the servers or killing the master.

An agent adds its login: the user and home server and the certificate's
expiry, or how to log in again when it expired or there is none.

A witness ('baton init --witness') says so on a line of its own ("witness": true
in JSON), and the voters known to be witnesses are marked.

--json prints the status as JSON for scripts. Its fields are stable: id, name,
role, witness, master, master_name, epoch, chain {term, commit, applied,
leader, leader_name, voters, learners, witnesses, witness_ids, warning}, domain, listen, peers [{id, name, addr,
network}], collections {domain, catalog, report} {records, digest,
last_update}, outbox, quarantined [{time, collection, file, moved_to, reason}].`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			waiting := cmd.Flags().Changed("wait")
			if waiting && !slices.Contains(statusRoles, waitRole) {
				return usageErrorf("status: --wait %q: want %s or %s", waitRole,
					strings.Join(statusRoles[:len(statusRoles)-1], ", "), statusRoles[len(statusRoles)-1])
			}
			if cmd.Flags().Changed("timeout") && !waiting {
				return usageErrorf("status: --timeout goes with --wait")
			}
			if timeout <= 0 {
				return usageErrorf("status: --timeout %s: want a positive duration", timeout)
			}
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			var st peer.Status
			if waiting {
				st, err = c.waitRole(cmd.Context(), waitRole, timeout)
			} else {
				st, err = c.Status(cmd.Context())
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				if st.Collections == nil {
					st.Collections = map[string]peer.CollectionStatus{}
				}
				return writeJSON(w, st)
			}
			printStatus(w, st)
			if st.Role == "agent" {
				if d, err := c.AgentDevice(cmd.Context()); err != nil {
					fmt.Fprintf(w, "login:       unknown: %v\n", err)
				} else {
					printLogin(w, d)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (see above for the fields)")
	cmd.Flags().StringVar(&waitRole, "wait", "", "wait until the daemon answers with `ROLE` (master, slave, candidate or agent)")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultRoleTimeout, "with --wait, give up after `D`")
	return cmd
}

// statusRoles are the roles a daemon's status names.
var statusRoles = []string{"master", "slave", "candidate", "agent"}

// rolePoll is how often 'status --wait' asks again.
const rolePoll = 100 * time.Millisecond

// defaultRoleTimeout is how long 'status --wait' waits by default.
const defaultRoleTimeout = 30 * time.Second

// waitRole asks the daemon for its status every rolePoll until it answers
// with role, and returns that status. A daemon that does not answer yet (no
// socket, or one left by a daemon that died) is waited for. After timeout it
// gives up with an error naming the role the daemon last answered with.
func (c *controlClient) waitRole(ctx context.Context, role string, timeout time.Duration) (peer.Status, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(rolePoll)
	defer tick.Stop()
	last := "" // the role of the last answer; "" while there was none
	for {
		st, err := c.Status(wctx)
		var nd *control.NoDaemonError
		switch {
		case err == nil:
			if st.Role == role {
				return st, nil
			}
			last = st.Role
		case errors.As(err, &nd), wctx.Err() != nil:
			// Not answering yet, or the wait ended during the request.
		default:
			return peer.Status{}, err
		}
		select {
		case <-wctx.Done():
			if err := ctx.Err(); err != nil {
				return peer.Status{}, err
			}
			if last == "" {
				return peer.Status{}, fmt.Errorf("waited %s for the daemon in %s to be %s; it never answered (start it with 'baton run --home %s')",
					timeout, c.Home(), role, shellQuote(c.Home()))
			}
			return peer.Status{}, fmt.Errorf("waited %s for the daemon in %s to be %s; its last answer was %s", timeout, c.Home(), role, last)
		case <-tick.C:
		}
	}
}

// printLogin prints an agent's login for people: who, where, until when,
// and how to log in again when it expired or there is none.
func printLogin(w io.Writer, d control.AgentDevice) {
	switch {
	case !d.LoggedIn:
		fmt.Fprintf(w, "login:       none: log in with 'baton login USER@ADDRESS', then restart 'baton run'\n")
	case d.Expired:
		fmt.Fprintf(w, "login:       %s at %s: expired at %s: log in again with 'baton login %s@ADDRESS', then restart 'baton run'\n",
			d.User, cmp.Or(d.HomeServerName, d.HomeServer), d.Expires.Format(time.RFC3339), d.User)
	default:
		fmt.Fprintf(w, "login:       %s at %s, certificate until %s\n", d.User, cmp.Or(d.HomeServerName, d.HomeServer), d.Expires.Format(time.RFC3339))
	}
}

// printStatus prints st for people.
func printStatus(w io.Writer, st peer.Status) {
	fmt.Fprintf(w, "name:        %s\n", st.Name)
	fmt.Fprintf(w, "id:          %s\n", st.ID)
	fmt.Fprintf(w, "role:        %s\n", st.Role)
	if st.Witness {
		fmt.Fprintf(w, "witness:     yes: votes and keeps the consensus log; hosts no folders, takes no logins, hands the master role on\n")
	}
	switch {
	case st.Master == "":
		fmt.Fprintf(w, "master:      (none reachable)\n")
	case st.Master == st.ID:
		fmt.Fprintf(w, "master:      %s (%s, this host)\n", st.MasterName, st.Master)
	default:
		fmt.Fprintf(w, "master:      %s (%s)\n", st.MasterName, st.Master)
	}
	fmt.Fprintf(w, "epoch:       %d\n", st.Epoch)
	if c := st.Chain; c != nil {
		fmt.Fprintf(w, "consensus:   term %d, commit index %d, applied %d\n", c.Term, c.Commit, c.Applied)
		voters := slices.Clone(c.Voters)
		for i, v := range voters {
			if slices.Contains(c.Witnesses, v) {
				voters[i] += " (witness)"
			}
		}
		fmt.Fprintf(w, "voters:      %s\n", listOrNone(voters))
		fmt.Fprintf(w, "learners:    %s\n", listOrNone(c.Learners))
		if c.Warning != "" {
			fmt.Fprintf(w, "warning:     %s\n", c.Warning)
		}
	}
	fmt.Fprintf(w, "domain:      %s\n", st.Domain)
	printAddrs(w, "listen:      ", st.Listen)
	if len(st.Peers) == 0 {
		fmt.Fprintf(w, "peers:       (none connected)\n")
	} else {
		fmt.Fprintf(w, "peers:       %d connected\n", len(st.Peers))
		for _, p := range st.Peers {
			name := p.Name
			if name == "" {
				name = p.ID
			}
			network := p.Network
			if p.Relayed {
				network = "relayed"
			}
			fmt.Fprintf(w, "  %-16s %-8s %s %s\n", name, network, p.Addr, p.ID)
		}
	}
	if len(st.Relays) > 0 {
		// The servers whose relay holds a reservation of this agent, by
		// name where a connected peer gives it.
		names := make([]string, 0, len(st.Relays))
		for _, id := range st.Relays {
			name := id
			for _, p := range st.Peers {
				if p.ID == id && p.Name != "" {
					name = p.Name
				}
			}
			names = append(names, name)
		}
		fmt.Fprintf(w, "relays:      %s\n", strings.Join(names, ", "))
	}
	fmt.Fprintf(w, "collections:\n")
	for _, k := range collections.Kinds {
		cs, ok := st.Collections[k.String()]
		if !ok {
			fmt.Fprintf(w, "  %-8s (unknown)\n", k)
			continue
		}
		last := "never"
		if !cs.LastUpdate.IsZero() {
			last = cs.LastUpdate.UTC().Format(time.RFC3339)
		}
		digest := cs.Digest
		if len(digest) > 16 {
			digest = digest[:16]
		}
		fmt.Fprintf(w, "  %-8s %5d records  digest %-16s  last update %s\n", k, cs.Records, digest, last)
	}
	fmt.Fprintf(w, "outbox:      %d waiting for the master\n", st.Outbox)
	if len(st.Quarantined) == 0 {
		fmt.Fprintf(w, "quarantine:  none\n")
		return
	}
	fmt.Fprintf(w, "quarantine:  %d events\n", len(st.Quarantined))
	for _, q := range st.Quarantined {
		fmt.Fprintf(w, "  %s %s: %s moved to %s: %s\n", q.Time.UTC().Format(time.RFC3339), q.Collection, q.File, q.MovedTo, q.Reason)
	}
}

// listOrNone is names joined by commas, or "(none)".
func listOrNone(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}
