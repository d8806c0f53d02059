// Command baton is the baton host agent: it manages this host's key, founds
// and joins domains, runs the host as a server or desktop agent ('baton
// run'), and asks the running daemon over its control socket (status, users,
// passwords, devices, servers, folders, reports).
//
// On a desktop agent: 'baton init --agent', 'baton login USER@ADDRESS' (no
// daemon needed: it saves the device certificate and the domain genesis),
// 'baton run', then 'baton folder create|share|unshare|list|accept|leave|
// status|revert', which the agent daemon carries out by asking the folder's
// hosting server and driving the sync engine.
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
