package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/internal/control"
)

// queryTimeout bounds a request that does not wait for the master.
const queryTimeout = control.QueryTimeout

// controlClient is the client of the home's daemon, with the commands'
// helpers that print what it answers.
type controlClient struct{ *control.Client }

func (e *cliEnv) controlClient() (*controlClient, error) {
	home, err := e.homeDir()
	if err != nil {
		return nil, err
	}
	c := control.NewClient(home)
	c.StartHint = fmt.Sprintf("start it with 'baton run --home %s'", shellQuote(home))
	return &controlClient{c}, nil
}

// printMutation returns a function that prints a mutation's result, "ok:
// <what> (committed at term T, index I)" or the queued line, or returns
// the mutation's error.
func printMutation(cmd *cobra.Command) func(control.MutationResult, error) error {
	return func(res control.MutationResult, err error) error {
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if res.Queued {
			fmt.Fprintf(w, "queued: not committed yet: no master, or no majority of the chain reachable; it waits in the outbox and is proposed again (%s)\n", res.Done)
			return nil
		}
		fmt.Fprintf(w, "ok: %s (committed at term %d, index %d)\n", res.Done, res.Epoch, res.Seq)
		return nil
	}
}

// waitFlag binds --wait on a mutating command.
func waitFlag(cmd *cobra.Command, wait *time.Duration) {
	cmd.Flags().DurationVar(wait, "wait", control.DefaultWait, "how long to wait for the master's receipt before reporting the change as queued")
}

// checkWait rejects a non-positive --wait.
func checkWait(cmd *cobra.Command, wait time.Duration) error {
	if wait <= 0 {
		return usageErrorf("%s--wait %s: want a positive duration like 10s", cmdPrefix(cmd), wait)
	}
	return nil
}
