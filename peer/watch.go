package peer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/baton-sync/baton/collections"
)

// fileStamp is what a data file looked like after the node's own last
// write; a file that no longer matches changed behind the node's back.
type fileStamp struct {
	exists bool
	size   int64
	mtime  time.Time
	id     fileID // zero where the system does not say
}

func stampOf(path string) fileStamp {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{exists: true, size: st.Size(), mtime: st.ModTime(), id: fileIDOf(path, st)}
}

func (d *driver) stamp(k collections.Kind) { d.stamps[k] = stampOf(d.store.Path(k)) }

func (d *driver) stampMatches(k collections.Kind) bool {
	return stampOf(d.store.Path(k)) == d.stamps[k]
}

// startWatcher watches the data directory with fsnotify and marks changed
// data files dirty; the driver checks them once they are quiet.
func (d *driver) startWatcher(ctx context.Context, wg *sync.WaitGroup) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	if err := w.Add(d.store.Dir()); err != nil {
		w.Close()
		return err
	}
	kinds := map[string]collections.Kind{}
	for _, k := range collections.Kinds {
		kinds[filepath.Base(d.store.Path(k))] = k
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op == fsnotify.Chmod {
					continue
				}
				if k, ok := kinds[filepath.Base(ev.Name)]; ok {
					d.post(func(_ context.Context, d *driver) { d.dirty[k] = d.cfg.Now() })
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				// An overflow loses events: check every file.
				d.post(func(_ context.Context, d *driver) {
					d.log.Warn("data file watcher error; checking every data file", "err", err)
					for _, k := range collections.Kinds {
						d.dirty[k] = d.cfg.Now()
					}
				})
			}
		}
	}()
	return nil
}

// checkDataFile verifies a data file that changed behind the node's back.
// A file that does not verify, or holds less than the node (truncated,
// deleted, replaced by an older copy), is moved aside and rewritten from the
// verified in-memory state. Valid records the node lacked are applied first.
func (d *driver) checkDataFile(k collections.Kind) {
	if d.stampMatches(k) {
		return
	}
	path := d.store.Path(k)
	probe := d.state.Clone()
	res, err := probe.Load(d.store, k)
	if err != nil {
		d.log.Warn("data file changed behind our back and does not verify", "file", path, "err", err)
		d.quarantineFile(k, err.Error())
		return
	}
	if res.Accepted > 0 {
		// Verified records we did not have (for example a copy restored
		// from another host): keep them.
		if _, err := d.state.Load(d.store, k); err == nil {
			d.log.Info("applied verified records found in a changed data file", "file", path, "records", res.Accepted)
			d.lastUpdate[k] = d.cfg.Now()
			if k == collections.Domain {
				d.onDomainChanged()
			}
		}
	}
	// Does the file hold everything the node holds?
	fresh, err := collections.NewState(d.cfg.Genesis)
	if err == nil && k != collections.Domain {
		_, err = fresh.Load(memStorage{collections.Domain: d.state.Snapshot(collections.Domain)}, collections.Domain)
	}
	if err == nil {
		_, err = fresh.Load(d.store, k)
	}
	if err != nil || fresh.Digest(k) != d.state.Digest(k) {
		reason := "file holds less than this host (truncated, deleted or an older copy)"
		if err != nil {
			reason = err.Error()
		}
		d.log.Warn("data file changed behind our back", "file", path, "problem", reason)
		d.quarantineFile(k, reason)
		return
	}
	if res.TornAt >= 0 {
		// The node never leaves a torn tail while it runs (a failed
		// append is rewritten at once), so someone else appended to the
		// file: tampering, to be moved aside and reported like any other.
		reason := fmt.Sprintf("unexpected bytes after the last whole record (offset %d)", res.TornAt)
		d.log.Warn("data file changed behind our back", "file", path, "problem", reason)
		d.quarantineFile(k, reason)
		return
	}
	d.stamp(k)
}

// quarantineFile moves a bad data file aside and rewrites it from the state.
func (d *driver) quarantineFile(k collections.Kind, reason string) {
	path := d.store.Path(k)
	ev := QuarantineEvent{Time: d.cfg.Now().UTC(), Collection: k.String(), File: path, Reason: reason}
	moved, err := d.store.Quarantine(k, d.cfg.Now())
	switch {
	case err == nil:
		ev.MovedTo = moved
	case errors.Is(err, fs.ErrNotExist):
		// Deleted: nothing to move aside.
	default:
		d.log.Error("quarantining data file", "file", path, "err", err)
	}
	if err := d.rewrite(k); err != nil {
		d.log.Error("rewriting data file", "file", path, "err", err)
	}
	d.log.Warn("data file quarantined and rewritten from verified state", "file", path, "moved_to", ev.MovedTo, "reason", reason)
	d.quarantine = append(d.quarantine, ev)
	if len(d.quarantine) > 100 {
		d.quarantine = d.quarantine[len(d.quarantine)-100:]
	}
}
