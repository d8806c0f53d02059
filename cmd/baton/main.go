// Command baton is the baton host agent: it manages this host's key, founds
// and joins domains, runs the host as a server or desktop agent ('baton
// run'), and asks the running daemon over its control socket (status, users,
// servers, folders, reports).
//
// main is thin: it builds a context cancelled by SIGINT or SIGTERM, runs the
// command line and exits with its code. Everything else lives in run and the
// command files (root.go, keys*.go, ...), so tests drive the commands in-process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling so a second
	// Ctrl-C kills a command that does not stop promptly.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
