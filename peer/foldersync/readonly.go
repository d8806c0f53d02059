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
	if hosting(a, fo, self) || roleOf(a, fo, self) != roleReader {
		return fmt.Errorf("folder %s: %w", f.id, ErrNotReadOnly)
	}
	if err := f.scan(ctx, ""); err != nil {
		return err
	}
	f.setState(StateSyncing)
	defer f.setState(StateIdle)
	// The index of a hosting server, the connected ones first.
	var hub lpeer.ID
	var ri *remoteIndex
	err := fmt.Errorf("folder %s has no hosting server", f.id)
	for _, h := range f.hubs(a, fo) {
		if ri, err = f.e.requestIndex(ctx, h, f.id, f.remotes[h]); err == nil {
			hub = h
			break
		}
	}
	if err != nil {
		return fmt.Errorf("reverting folder %s needs a hosting server's index: %w", f.id, err)
	}
	f.remotes[hub] = ri
	f.reached[hub] = true
	all, err := f.e.loadRemoteAll(ri)
	if err != nil {
		return fmt.Errorf("reverting folder %s: %w", f.id, err)
	}
	remote := f.visible(all)
	peers := f.sources(a, fo, hub)
	acts, stuck := syncfs.ReadOnlyOverrides(&f.local, remote, self.String(), true, f.e.cfg.Now())
	res := f.applyTracked(ctx, peers, f.safeActions(acts))
	res.add(f.applyTracked(ctx, peers, syncfs.PlanWith(&f.local, syncfs.WithoutConcurrent(&f.local, remote), self.String(), f.planOptions())))
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
