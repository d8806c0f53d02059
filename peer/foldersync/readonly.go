package foldersync

import (
	"context"
	"fmt"
	"strings"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/syncfs"
)

// revert undoes this read-only device's local changes (Engine.Revert).
func (f *folder) revert(ctx context.Context) error {
	if !f.ready {
		return fmt.Errorf("folder %s: not scanned yet", f.id)
	}
	a := f.e.access()
	fo, ok := a.Folder(f.id)
	if !ok {
		return fmt.Errorf("%w: folder %s is not in the Catalog", ErrUnknownFolder, f.id)
	}
	self := f.e.self
	if fo.Server == self.String() || roleOf(a, fo, self) != roleReader {
		return fmt.Errorf("folder %s: %w", f.id, ErrNotReadOnly)
	}
	if err := f.scan(ctx, ""); err != nil {
		return err
	}
	hub, err := lpeer.Decode(fo.Server)
	if err != nil {
		return fmt.Errorf("folder %s: server %q: %w", f.id, fo.Server, err)
	}
	f.setState(StateSyncing)
	defer f.setState(StateIdle)
	ri, err := f.e.requestIndex(ctx, hub, f.id, f.remotes[hub], f.share)
	if err != nil {
		return fmt.Errorf("reverting folder %s needs the server's index: %w", f.id, err)
	}
	f.remotes[hub] = ri
	remote := f.visible(ri.snap)
	peers := f.sources(a, fo, hub)
	acts, stuck := syncfs.ReadOnlyOverrides(f.local.Files, remote, self.String(), true, f.e.cfg.Now())
	res := f.applyTracked(ctx, peers, f.safeActions(acts))
	res.add(f.applyTracked(ctx, peers, syncfs.PlanWith(f.local.Files, syncfs.WithoutConcurrent(f.local.Files, remote), self.String(), f.planOptions())))
	f.noteFailures(hub, res)
	f.replanAll()
	f.refreshStatus(a, fo)
	if res.failed > 0 {
		return fmt.Errorf("reverting folder %s: %d changes failed, the first: %w", f.id, res.failed, res.first)
	}
	if len(stuck) > 0 {
		return fmt.Errorf("reverting folder %s: cannot undo %s", f.id, strings.Join(stuck, "; "))
	}
	return nil
}
