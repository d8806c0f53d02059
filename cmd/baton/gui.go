package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/internal/console"
	"github.com/baton-sync/baton/internal/control"
)

// guiOptions are 'baton run's console flags, and how 'baton gui' opens a
// browser.
type guiOptions struct {
	addr string
	tls  bool
	// open opens url in a browser; nil: the system's (see openBrowser).
	// It reports false when there is no browser to open.
	open func(url string) (bool, error)
}

func (o *guiOptions) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.addr, "gui", console.AddrAuto, "serve the web console at `ADDR`: HOST:PORT on loopback (with --gui-tls, on any address: an agent's for its user, a server's for the domain's admins), "+console.AddrAuto+" (127.0.0.1, the last port if free) or "+console.AddrOff)
	cmd.Flags().BoolVar(&o.tls, "gui-tls", false, "serve the console over HTTPS with a self-signed certificate kept in the home")
}

// listenConsole listens for the console as 'baton run's flags say and
// returns what serves it until its context ends (nothing with --gui off).
// The console checks passwords at the users' home servers with passwords
// (the node): an agent's for its user, a server's for the domain's admins.
func (e *cliEnv) listenConsole(home string, ctl *control.Server, mon *console.Monitor, log *slog.Logger, passwords console.PasswordChecker) (func(context.Context), error) {
	if console.Off(e.gui.addr) {
		return func(context.Context) {}, nil
	}
	tok, err := console.LoadToken(home, e.rand)
	if err != nil {
		return nil, err
	}
	ln, err := console.Listen(console.ListenConfig{Home: home, Addr: e.gui.addr, TLS: e.gui.tls, Passwords: passwords != nil, Now: e.now, Rand: e.rand})
	if err != nil {
		return nil, err
	}
	api := ctl.Handler()
	client := control.NewHandlerClient(home, api)
	con, err := console.New(console.Config{
		API: api, Source: client, Actions: client, Monitor: mon, Token: tok, Secure: e.gui.tls, Passwords: passwords,
		Now: e.now, Rand: e.rand, Log: log,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	log.Info("console", "url", ln.URL, "token_file", filepath.Join(home, console.TokenFile))
	return func(ctx context.Context) {
		if err := con.Serve(ctx, ln); err != nil {
			log.Error("the console stopped", "err", err)
		}
	}, nil
}

func newGUICmd(env *cliEnv) *cobra.Command {
	var noBrowser bool
	cmd := &cobra.Command{
		Use:   "gui",
		Short: "Show the web console's address and open it in a browser",
		Long: `Prints the address of the running daemon's web console ('baton run' serves it
on 127.0.0.1 unless given --gui off) and how to log in: with the token in
HOME/gui.token, which API clients send as 'Authorization: Bearer TOKEN'.
When a browser is available it is opened, logged in with a one-time code.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return env.gui.show(cmd.Context(), env, !noBrowser)
		},
	}
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "only print the address, do not open a browser")
	return cmd
}

// show is 'baton gui'.
func (o *guiOptions) show(ctx context.Context, e *cliEnv, browse bool) error {
	home, err := e.homeDir()
	if err != nil {
		return err
	}
	u, err := console.ReadURL(home)
	if err != nil {
		return err
	}
	tokFile := filepath.Join(home, console.TokenFile)
	fmt.Fprintf(e.stdout, "Console: %s\n", u)
	fmt.Fprintf(e.stdout, "Log in with the token in %s (API clients send it as 'Authorization: Bearer TOKEN').\n", tokFile)
	if strings.HasPrefix(u, "https:") {
		fmt.Fprintf(e.stdout, "Its certificate is self-signed: %s (check the fingerprint your browser shows against it).\n", filepath.Join(home, console.CertFile))
	}
	if !browse {
		return nil
	}
	open := o.open
	if open == nil {
		open = openBrowser
	}
	code, err := loginCode(ctx, home, u)
	if err != nil {
		return err
	}
	opened, err := open(strings.TrimSuffix(u, "/") + code.Path)
	switch {
	case err != nil:
		fmt.Fprintf(e.stdout, "Could not open a browser (%v): open %s yourself.\n", err, u)
	case !opened:
		fmt.Fprintf(e.stdout, "No browser found: open %s yourself.\n", u)
	default:
		fmt.Fprintln(e.stdout, "Opened in your browser (logged in with a one-time code).")
	}
	return nil
}

// loginCode asks the console at u for a one-time login code, with the
// home's token (and, over HTTPS, its certificate pinned).
func loginCode(ctx context.Context, home, u string) (console.LoginCode, error) {
	var code console.LoginCode
	tok, err := console.ReadToken(home)
	if err != nil {
		return code, err
	}
	tr := &http.Transport{}
	if strings.HasPrefix(u, "https:") {
		pool, err := console.CertPool(home)
		if err != nil {
			return code, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(u, "/")+"/login/code", nil)
	if err != nil {
		return code, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		return code, fmt.Errorf("the console at %s does not answer (is the daemon running?): %w", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return code, fmt.Errorf("the console at %s refused a login code: %s %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &code); err != nil || code.Path == "" {
		return code, fmt.Errorf("the console at %s answered a login code badly: %q", u, body)
	}
	return code, nil
}

// openBrowser opens url with the system's browser, if there is one: open
// on macOS, the URL handler on Windows, $BROWSER or xdg-open (in a
// graphical session) elsewhere. It reports false when there is none.
func openBrowser(url string) (bool, error) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		if b := os.Getenv("BROWSER"); b != "" {
			cmd = exec.Command(b, url)
		} else if os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "" {
			p, err := exec.LookPath("xdg-open")
			if err != nil {
				return false, nil
			}
			cmd = exec.Command(p, url)
		} else {
			return false, nil
		}
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	go cmd.Wait() // reap it; the browser outlives this command
	return true, nil
}
