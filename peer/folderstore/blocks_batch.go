package folderstore

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/baton-sync/baton/internal/durable"
	"github.com/baton-sync/baton/syncfs"
)

// BatchPutter is a BlockStore that stores several blocks at once more
// cheaply than one by one (Append stores each chunk's new blocks with it).
// PutBatch has Put's guarantees for every block once it returns nil; on
// an error some blocks may be stored, none half.
type BatchPutter interface {
	PutBatch(hs []syncfs.Hash, data [][]byte) error
}

// PutBatch implements BatchPutter. On Linux it writes each block to a
// temporary file, makes them all durable with one syncfs(2) of the store's
// filesystem, renames them into place and makes the renames durable with
// a second: two flushes a batch instead of two fsyncs a block. A crash
// leaves each block whole under its name, or absent (its temporary file
// is removed by CleanTemp). Elsewhere it Puts each block.
func (d *Disk) PutBatch(hs []syncfs.Hash, data [][]byte) error {
	return d.putBatch(hs, data, false)
}

// putBatch is PutBatch; hashed says the caller has just hashed each block
// (Append, which reads them from a folder's files), which are then not
// hashed again.
func (d *Disk) putBatch(hs []syncfs.Hash, data [][]byte, hashed bool) error {
	if len(hs) != len(data) {
		return fmt.Errorf("storing blocks: %d hashes for %d blocks", len(hs), len(data))
	}
	if !durable.Batched {
		for i, h := range hs {
			if err := d.Put(h, data[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if !hashed {
		for i, h := range hs {
			if got := syncfs.HashBytes(data[i]); got != h {
				return fmt.Errorf("storing block %x: content hashes to %x: %w", h[:8], got[:8], ErrCorruptBlock)
			}
		}
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("storing blocks: %w", err)
	}
	// Opened before the writes, so that its syncfs reports their errors.
	root, err := os.Open(d.dir)
	if err != nil {
		return fmt.Errorf("storing blocks: %w", err)
	}
	defer root.Close()
	type temp struct {
		h         syncfs.Hash
		tmp, file string
		renamed   bool
	}
	var temps []*temp
	defer func() {
		d.mu.Lock()
		for _, t := range temps {
			delete(d.inflight, t.tmp)
		}
		d.mu.Unlock()
		for _, t := range temps {
			// A crash runs no cleanup: tests fail this step to leave
			// the temporary files behind, as a crash would.
			if !t.renamed && d.step("cleanup") == nil {
				os.Remove(t.tmp)
			}
		}
	}()
	seen := make(map[syncfs.Hash]bool, len(hs))
	for i, h := range hs {
		if seen[h] {
			continue
		}
		seen[h] = true
		shard, file := d.path(h)
		if _, err := os.Lstat(file); err == nil {
			// Held already: renewed (see Put); the barriers below make a
			// rename an earlier Put did not sync durable too.
			now := time.Now()
			if err := os.Chtimes(file, now, now); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("storing block %x: %w", h[:8], err)
			}
			continue
		}
		if err := d.step("mkdir"); err != nil {
			return fmt.Errorf("storing block %x: %w", h[:8], err)
		}
		if err := os.MkdirAll(shard, 0o700); err != nil {
			return fmt.Errorf("storing block %x: %w", h[:8], err)
		}
		if err := d.step("create"); err != nil {
			return fmt.Errorf("storing block %x: %w", h[:8], err)
		}
		d.mu.Lock()
		f, err := os.CreateTemp(shard, "."+filepath.Base(file)[:16]+".tmp-*")
		if err == nil {
			d.inflight[f.Name()] = struct{}{}
			temps = append(temps, &temp{h: h, tmp: f.Name(), file: file})
		}
		d.mu.Unlock()
		if err != nil {
			return fmt.Errorf("storing block %x: %w", h[:8], err)
		}
		err = d.step("write")
		if err == nil {
			_, err = f.Write(data[i])
		}
		if err == nil {
			err = d.step("close")
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("storing block %x: %w", h[:8], err)
		}
	}
	// The blocks' content is durable before any has its name.
	if err := d.step("fsync"); err != nil {
		return fmt.Errorf("storing blocks: %w", err)
	}
	if err := durable.SyncFS(root); err != nil {
		return fmt.Errorf("storing blocks: %w", err)
	}
	for _, t := range temps {
		if err := d.step("rename"); err != nil {
			return fmt.Errorf("storing block %x: %w", t.h[:8], err)
		}
		if err := os.Rename(t.tmp, t.file); err != nil {
			return fmt.Errorf("storing block %x: %w", t.h[:8], err)
		}
		t.renamed = true
	}
	if err := d.step("syncdir"); err != nil {
		return fmt.Errorf("storing blocks: %w", err)
	}
	if err := durable.SyncFS(root); err != nil {
		return fmt.Errorf("storing blocks: %w", err)
	}
	return nil
}
