package main

import (
	"context"
	"fmt"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/internal/sandbox"
	"github.com/baton-sync/baton/peer/foldersync"
)

// sandboxDomain is a whole domain in this process (internal/sandbox): one
// server, users alice and bob at home there, each with a logged-in agent;
// alice's agent creates the folder and shares it read-write with bob,
// whose agent accepts it. Everything the real nodes do runs: catalog
// replication, device certificates, the connection gater.
type sandboxDomain struct {
	sb           *sandbox.Sandbox
	alice, bob   *sandbox.Agent
	id           string
	source       string
	target       string
	serverStatus func(context.Context, string) (foldersync.FolderStatus, error)
	backlog      func() int
}

// statusCallTimeout bounds one status call to a node.
const statusCallTimeout = 5 * time.Second

// newSandboxDomain starts it. It fails with an error wrapping
// sandbox.ErrNoFolderSync if the node does not sync folders yet.
func newSandboxDomain(ctx context.Context, o domainOptions) (_ *sandboxDomain, err error) {
	sb, err := sandbox.New(ctx, sandbox.Options{Servers: 1, Domain: "bench", Dir: o.Dir, Log: o.Logger})
	if err != nil {
		return nil, err
	}
	d := &sandboxDomain{sb: sb}
	defer func() {
		if err != nil {
			sb.Close()
		}
	}()
	for _, u := range []string{"alice", "bob"} {
		if _, err := sb.AddUser(ctx, u, 0, u+"'s password"); err != nil {
			return nil, err
		}
	}
	if d.alice, err = sb.AddAgent(ctx, "alice-laptop", "alice", "alice's password"); err != nil {
		return nil, err
	}
	if d.bob, err = sb.AddAgent(ctx, "bob-laptop", "bob", "bob's password"); err != nil {
		return nil, err
	}
	if d.id, d.source, err = d.alice.CreateFolder(ctx, "bench"); err != nil {
		return nil, err
	}
	if err := d.alice.Share(ctx, d.id, "bob", collections.RightReadWrite); err != nil {
		return nil, err
	}
	if d.target, err = d.bob.Accept(ctx, d.id); err != nil {
		return nil, err
	}
	// The server's engine, if its node says (found by method, as the
	// sandbox finds the agents').
	type folderStatuser interface {
		FolderStatus(context.Context, string) (foldersync.FolderStatus, error)
	}
	if n, ok := any(sb.Server(0).Node()).(folderStatuser); ok {
		d.serverStatus = n.FolderStatus
	}
	if n, ok := any(sb.Server(0).Node()).(interface{ HistoryBacklog() int }); ok {
		d.backlog = n.HistoryBacklog
	}
	for _, a := range []*sandbox.Agent{d.alice, d.bob} {
		if err := a.WaitInSync(ctx, d.id); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *sandboxDomain) Describe() string {
	return "in-process domain (internal/sandbox): server s1 on 127.0.0.1, agents alice-laptop and bob-laptop logged in as alice and bob, folder shared rw"
}

func (d *sandboxDomain) Source() string { return d.source }
func (d *sandboxDomain) Target() string { return d.target }

func (d *sandboxDomain) SourceStatus() (foldersync.FolderStatus, bool) {
	return d.agentStatus(d.alice)
}

func (d *sandboxDomain) TargetStatus() (foldersync.FolderStatus, bool) {
	return d.agentStatus(d.bob)
}

func (d *sandboxDomain) agentStatus(a *sandbox.Agent) (foldersync.FolderStatus, bool) {
	st, err := a.FolderStatus(context.Background(), d.id)
	return st, err == nil
}

func (d *sandboxDomain) ServerStatus() (foldersync.FolderStatus, bool) {
	if d.serverStatus == nil {
		return foldersync.FolderStatus{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusCallTimeout)
	defer cancel()
	st, err := d.serverStatus(ctx, d.id)
	return st, err == nil
}

func (d *sandboxDomain) HistoryBacklog() (int, bool) {
	if d.backlog == nil {
		return 0, false
	}
	return d.backlog(), true
}

func (d *sandboxDomain) Close() error {
	if err := d.sb.Close(); err != nil {
		return fmt.Errorf("stopping the sandbox: %w", err)
	}
	return nil
}
