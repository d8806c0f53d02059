package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/baton-sync/baton/identity"
)

// Where passphrases come from, in order: the --passphrase-file flag, the
// BATON_PASSPHRASE environment variable, then a no-echo terminal prompt when
// stdin is a terminal. Daemons and scripts use the first two.

const passphraseEnv = "BATON_PASSPHRASE"

// maxPassphraseFile caps how much of a passphrase file is read.
const maxPassphraseFile = 64 << 10

// fromTerminal is the source of a passphrase typed at the prompt.
const fromTerminal = "the terminal"

// readPassphraseFile returns the first line of path, without its line ending.
func readPassphraseFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(io.LimitReader(f, maxPassphraseFile), 4096).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("passphrase file %s: %w", path, err)
	}
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	if len(line) == 0 {
		return nil, fmt.Errorf("passphrase file %s: the first line is empty", path)
	}
	return line, nil
}

// existingPassphrase gets the passphrase that unlocks what (e.g. "host key
// /x/host.key") and says where it came from.
func (e *cliEnv) existingPassphrase(ctx context.Context, what string) (pass []byte, from string, err error) {
	if e.passphraseFile != "" {
		p, err := readPassphraseFile(e.passphraseFile)
		return p, "--passphrase-file " + e.passphraseFile, err
	}
	if v := e.getenv(passphraseEnv); v != "" {
		return []byte(v), passphraseEnv, nil
	}
	if e.prompt != nil {
		p, err := e.prompt(ctx, "Passphrase for "+what+": ")
		if err != nil {
			return nil, "", err
		}
		if len(p) == 0 {
			return nil, "", fmt.Errorf("%s: no passphrase given", what)
		}
		return p, fromTerminal, nil
	}
	return nil, "", fmt.Errorf("%s is encrypted: give --passphrase-file or %s", what, passphraseEnv)
}

// newPassphrase gets a new passphrase for what: from file if it is set
// (flag names it in messages), else from BATON_PASSPHRASE if allowEnv, else
// typed twice at the terminal.
func (e *cliEnv) newPassphrase(ctx context.Context, what, file, flag string, allowEnv bool) ([]byte, error) {
	if file != "" {
		return readPassphraseFile(file)
	}
	if allowEnv {
		if v := e.getenv(passphraseEnv); v != "" {
			return []byte(v), nil
		}
	}
	if e.prompt == nil {
		if allowEnv {
			return nil, fmt.Errorf("no passphrase for %s: give %s or %s (stdin is not a terminal)", what, flag, passphraseEnv)
		}
		return nil, fmt.Errorf("no new passphrase for %s: give %s (stdin is not a terminal)", what, flag)
	}
	p1, err := e.prompt(ctx, "New passphrase for "+what+": ")
	if err != nil {
		return nil, err
	}
	if len(p1) == 0 {
		return nil, errors.New("empty passphrase: nothing changed")
	}
	p2, err := e.prompt(ctx, "Repeat the new passphrase: ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(p1, p2) {
		return nil, errors.New("the passphrases do not match: nothing changed")
	}
	return p1, nil
}

// promptAttempts is how many times a wrong passphrase may be typed at the
// terminal before giving up.
const promptAttempts = 3

// unlockKeyFile loads the key file at path (described as what), asking for
// a passphrase if it is encrypted. It returns the passphrase too (nil if the
// file is not encrypted).
func (e *cliEnv) unlockKeyFile(ctx context.Context, path, what string) (*identity.PrivateKey, []byte, error) {
	info, err := identity.ReadKeyFileInfo(path)
	if err != nil {
		return nil, nil, err
	}
	if !info.Encrypted {
		k, err := identity.LoadKeyFile(path, nil)
		return k, nil, err
	}
	for attempt := 1; ; attempt++ {
		pass, from, err := e.existingPassphrase(ctx, what)
		if err != nil {
			return nil, nil, err
		}
		k, err := identity.LoadKeyFile(path, pass)
		if err == nil {
			return k, pass, nil
		}
		if !errors.Is(err, identity.ErrWrongPassphrase) {
			return nil, nil, err
		}
		if from != fromTerminal {
			return nil, nil, fmt.Errorf("%w (the passphrase from %s)", err, from)
		}
		if attempt == promptAttempts {
			return nil, nil, err
		}
		fmt.Fprintln(e.stderr, "Wrong passphrase, try again.")
	}
}

// terminalPrompt returns a prompt that reads without echo from stdin, or nil
// if stdin is not a terminal. If ctx is cancelled while it waits (Ctrl-C),
// it restores the terminal and returns ctx's error.
func terminalPrompt(stdin io.Reader, stderr io.Writer) func(context.Context, string) ([]byte, error) {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	fd := int(f.Fd())
	return func(ctx context.Context, msg string) ([]byte, error) {
		fmt.Fprint(stderr, msg)
		state, err := term.GetState(fd)
		if err != nil {
			return nil, fmt.Errorf("reading passphrase: %w", err)
		}
		type result struct {
			line []byte
			err  error
		}
		done := make(chan result, 1)
		go func() {
			line, err := term.ReadPassword(fd)
			done <- result{line, err}
		}()
		select {
		case r := <-done:
			fmt.Fprintln(stderr)
			if r.err != nil {
				return nil, fmt.Errorf("reading passphrase: %w", r.err)
			}
			return r.line, nil
		case <-ctx.Done():
			// The reader stays blocked until the process exits; put the
			// terminal back the way it was so echo returns.
			term.Restore(fd, state)
			fmt.Fprintln(stderr)
			return nil, ctx.Err()
		}
	}
}
