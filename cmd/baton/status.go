package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer"
)

func newStatusCmd(env *cliEnv) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running daemon: role, master, epoch, peers, collections",
		Long: `Ask the running daemon ('baton run') of this home for its status: host name
and ID, role (master, slave, candidate or agent), the current master and epoch,
the connected peers and the address each connection uses (private or public),
and per collection the record count, digest and last update time, the outbox
(updates waiting for the master's receipt) and data files quarantined after
changing behind the daemon's back.

--json prints the status as JSON for scripts. Its fields are stable: id, name,
role, master, master_name, epoch, domain, listen, peers [{id, name, addr,
network}], collections {domain, catalog, report} {records, digest,
last_update}, outbox, quarantined [{time, collection, file, moved_to, reason}].`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := env.controlClient()
			if err != nil {
				return err
			}
			var st peer.Status
			if err := c.query(cmd.Context(), "/v1/status", &st); err != nil {
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
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (see above for the fields)")
	return cmd
}

// printStatus prints st for people.
func printStatus(w io.Writer, st peer.Status) {
	fmt.Fprintf(w, "name:        %s\n", st.Name)
	fmt.Fprintf(w, "id:          %s\n", st.ID)
	fmt.Fprintf(w, "role:        %s\n", st.Role)
	switch {
	case st.Master == "":
		fmt.Fprintf(w, "master:      (none reachable)\n")
	case st.Master == st.ID:
		fmt.Fprintf(w, "master:      %s (%s, this host)\n", st.MasterName, st.Master)
	default:
		fmt.Fprintf(w, "master:      %s (%s)\n", st.MasterName, st.Master)
	}
	fmt.Fprintf(w, "epoch:       %d\n", st.Epoch)
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
			fmt.Fprintf(w, "  %-16s %-8s %s %s\n", name, p.Network, p.Addr, p.ID)
		}
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
