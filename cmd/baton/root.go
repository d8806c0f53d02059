package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer"
)

// Exit codes.
const (
	exitOK          = 0
	exitError       = 1   // the command failed
	exitUsage       = 2   // bad command line: unknown command or flag, wrong arguments
	exitInterrupted = 130 // SIGINT or SIGTERM
)

// cliEnv is everything a command touches besides its flags and the
// filesystem: the standard streams, the environment, the terminal, and the
// clock and randomness. run fills it from the process; tests build their own
// and call execute, so commands never reach for os.Stdin, os.Getenv or the
// real terminal directly.
type cliEnv struct {
	stdin  io.Reader
	stdout io.Writer // human and --json output
	stderr io.Writer // prompts and diagnostics

	getenv        func(string) string
	userConfigDir func() (string, error) // the default home is <this>/baton
	hostname      func() (string, error) // the default host name, sanitized

	// prompt prints msg to stderr and reads a line from the terminal without
	// echo. It is nil when stdin is not a terminal: passphrases must then
	// come from --passphrase-file or BATON_PASSPHRASE.
	prompt func(ctx context.Context, msg string) ([]byte, error)

	kdf  identity.KDFParams // argon2id parameters for newly encrypted key files
	rand io.Reader
	now  func() time.Time

	// newNode builds the node 'baton run' runs; nil means peer.New.
	newNode func(peer.Config) (node, error)
	// login logs a device in ('baton login'); nil means peer.Login.
	login loginFunc
	// systemctl runs systemctl for 'service install' and 'service
	// remove'; nil means the real one. euid stands for os.Geteuid and
	// systemUnitDir for /etc/systemd/system when set.
	systemctl     func(ctx context.Context, args ...string) error
	euid          func() int
	systemUnitDir string
	// stdoutTTY: stdout is a terminal (progress bars).
	stdoutTTY bool

	// gui is 'baton run's console flags (--gui, --gui-tls).
	gui guiOptions

	// Global flags, bound by newRootCmd.
	homeFlag       string
	passphraseFile string
}

// newOSEnv is the cliEnv of the running process.
func newOSEnv(stdin io.Reader, stdout, stderr io.Writer) *cliEnv {
	return &cliEnv{
		stdin:         stdin,
		stdout:        stdout,
		stderr:        stderr,
		getenv:        os.Getenv,
		userConfigDir: os.UserConfigDir,
		hostname:      os.Hostname,
		prompt:        terminalPrompt(stdin, stderr),
		kdf:           identity.DefaultKDF,
		rand:          rand.Reader,
		now:           time.Now,
		newNode:       newPeerNode,
		login:         peer.Login,
		stdoutTTY:     isTerminal(stdout),
	}
}

// run runs the command line args and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return execute(ctx, newOSEnv(stdin, stdout, stderr), args)
}

// execute runs args against a fresh root command in env. An error prints as
// one line, "baton: <message>", on env.stderr.
func execute(ctx context.Context, env *cliEnv, args []string) int {
	if args == nil {
		args = []string{} // nil makes cobra read os.Args
	}
	root := newRootCmd(env)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(env.stderr, "baton: interrupted")
		return exitInterrupted
	}
	fmt.Fprintf(env.stderr, "baton: %s\n", oneLine(err.Error()))
	var uerr usageError
	if errors.As(err, &uerr) {
		return exitUsage
	}
	return exitError
}

// newRootCmd builds the whole command tree.
//
// To add a command: write newFooCmd(env *cliEnv) *cobra.Command in foo.go
// (use RunE, wrap positional-argument checks in usageArgs, read the home with
// env.homeDir or env.requireHostKey and the key with env.loadHostKey), then
// add it to the AddCommand list below. A command group (like keys) uses
// groupArgs and groupRun so a mistyped subcommand is a usage error.
func newRootCmd(env *cliEnv) *cobra.Command {
	root := &cobra.Command{
		Use:   "baton",
		Short: "Peer-to-peer folder sync with signed host identities",
		Long: `baton syncs folders between hosts. Every host has an Ed25519 key (its
libp2p identity) and signs everything it sends.

The host's files live in its home directory: --home, else $BATON_HOME, else
the per-user config directory (e.g. ~/.config/baton).`,
		Args:          groupArgs,
		RunE:          groupRun,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(env.stdin)
	root.SetOut(env.stdout)
	root.SetErr(env.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%s%w (see '%s --help')", cmdPrefix(c), err, c.CommandPath())}
	})

	pf := root.PersistentFlags()
	pf.StringVar(&env.homeFlag, "home", "", "baton home `DIR` (default $BATON_HOME, else ~/.config/baton)")
	pf.StringVar(&env.passphraseFile, "passphrase-file", "", "read the key passphrase from the first line of `FILE` (else $BATON_PASSPHRASE, else a terminal prompt)")

	root.AddCommand(
		newInitCmd(env),
		newKeysCmd(env),
		newDomainCmd(env),
		newRunCmd(env),
		newStatusCmd(env),
		newUserCmd(env),
		newServerCmd(env),
		newFolderCmd(env),
		newReportCmd(env),
		newLoginCmd(env),
		newDeviceCmd(env),
		newDemoCmd(env),
		newServiceCmd(env),
		newGUICmd(env),
	)
	return root
}

// usageError marks a bad command line; execute exits with code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// usageArgs makes a positional-argument check's failure a usage error.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageErrorf("%s%v (see '%s --help')", cmdPrefix(cmd), err, cmd.CommandPath())
		}
		return nil
	}
}

// noArgs is the Args of a command that takes no positional arguments.
var noArgs = usageArgs(cobra.NoArgs)

// groupArgs is the Args of a command that only groups subcommands: any
// argument left over is a subcommand that does not exist.
func groupArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return usageErrorf("%s (see '%s --help')", msg, cmd.CommandPath())
}

// groupRun is the RunE of a command group: it prints the group's help.
func groupRun(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// cmdPrefix is "keys gen: " for 'baton keys gen', and "" for the root, so
// messages read "baton: keys gen: ...".
func cmdPrefix(c *cobra.Command) string {
	if !c.HasParent() {
		return ""
	}
	return strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ") + ": "
}

// oneLine folds a multi-line message onto one line, printable.
func oneLine(s string) string {
	return printable(strings.NewReplacer("\r\n", "; ", "\n", "; ", "\r", "; ").Replace(strings.TrimSpace(s)))
}
