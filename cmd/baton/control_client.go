package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/peer"
)

// maxResponse caps a control API response.
const maxResponse = 64 << 20

// queryTimeout bounds a read-only control request.
const queryTimeout = 30 * time.Second

// controlClient talks to the daemon of one home over its control socket.
type controlClient struct {
	home string
	sock string
	hc   *http.Client
}

func (e *cliEnv) controlClient() (*controlClient, error) {
	home, err := e.homeDir()
	if err != nil {
		return nil, err
	}
	sock := socketPath(home)
	return &controlClient{
		home: home,
		sock: sock,
		hc: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
			DisableKeepAlives: true, // one request per command
		}},
	}, nil
}

// remoteError is an error the daemon answered with.
type remoteError struct {
	code string
	msg  string
}

func (e *remoteError) Error() string { return e.msg }

// noDaemonError says that nothing answers on the home's control socket:
// there is none, or the daemon that made it is gone.
type noDaemonError struct{ home string }

func (e *noDaemonError) Error() string {
	return fmt.Sprintf("no daemon running in %s (start it with 'baton run --home %s')", e.home, shellQuote(e.home))
}

// call sends a request with body (nil for none) as JSON and decodes the
// answer into out. query may be nil.
func (c *controlClient) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	u := url.URL{Scheme: "http", Host: "baton", Path: path}
	if query != nil {
		u.RawQuery = query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || refused(err) {
			return &noDaemonError{home: c.home}
		}
		if ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("the daemon in %s did not answer in time", c.home)
			}
			return ctx.Err()
		}
		return fmt.Errorf("control socket %s: %w", c.sock, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("reading the daemon's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var ej errorJSON
		if err := json.Unmarshal(data, &ej); err != nil || ej.Error == "" {
			return fmt.Errorf("the daemon answered %s", resp.Status)
		}
		if ej.Code == codeNotMaster {
			nm := &peer.NotMasterError{MasterName: ej.MasterName}
			if id, err := lpeer.Decode(ej.Master); err == nil {
				nm.Master = id
			}
			return nm
		}
		return &remoteError{code: ej.Code, msg: ej.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the daemon's answer: %w", err)
	}
	return nil
}

// query runs a read-only request.
func (c *controlClient) query(ctx context.Context, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	return c.call(ctx, http.MethodGet, path, nil, nil, out)
}

// mutate runs a mutation that waits up to wait for the master's receipt,
// and prints its result.
func (c *controlClient) mutate(cmd *cobra.Command, method, path string, wait time.Duration, body any) error {
	// The daemon answers "queued" after wait; allow for the round trip.
	ctx, cancel := context.WithTimeout(cmd.Context(), wait+queryTimeout)
	defer cancel()
	var res mutationResult
	if err := c.call(ctx, method, path, url.Values{"wait": {wait.String()}}, body, &res); err != nil {
		return err
	}
	printMutation(cmd.OutOrStdout(), res)
	return nil
}

// printMutation prints "ok: <what> (committed at term T, index I)", or the
// queued line.
func printMutation(w io.Writer, res mutationResult) {
	if res.Queued {
		fmt.Fprintf(w, "queued: not committed yet: no master, or no majority of the chain reachable; it waits in the outbox and is proposed again (%s)\n", res.Done)
		return
	}
	fmt.Fprintf(w, "ok: %s (committed at term %d, index %d)\n", res.Done, res.Epoch, res.Seq)
}

// waitFlag binds --wait on a mutating command.
func waitFlag(cmd *cobra.Command, wait *time.Duration) {
	cmd.Flags().DurationVar(wait, "wait", defaultWait, "how long to wait for the master's receipt before reporting the change as queued")
}

// checkWait rejects a non-positive --wait.
func checkWait(cmd *cobra.Command, wait time.Duration) error {
	if wait <= 0 {
		return usageErrorf("%s--wait %s: want a positive duration like 10s", cmdPrefix(cmd), wait)
	}
	return nil
}
