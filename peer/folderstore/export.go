package folderstore

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/baton-sync/baton/syncfs"
)

// BlockReader returns the contents of blocks, in order, one for each. What
// it returns is checked (WriteTree), so it may come from another host.
type BlockReader func(bs []syncfs.Block) ([][]byte, error)

// A file's blocks are asked of a BlockReader in batches of at most
// ExportBatchBlocks blocks and ExportBatchBytes bytes (one block at least).
const (
	ExportBatchBlocks = 256
	ExportBatchBytes  = 16 << 20
)

// WriteTree writes the live entries each gives into dir (new, or empty) as
// plain files: directories, symlinks, and files whose blocks read gives,
// each checked against its size and hash before it is written (an error
// wrapping ErrCorruptBlock otherwise). Each entry's name is checked
// (syncfs.FileInfo.Validate), and files are written through an os.Root, so
// that no entry writes outside dir. Files get their modification time.
// It holds one batch of blocks at a time. Store.Export and an agent's
// export of a hosting server's snapshot share it.
func WriteTree(dir string, each func(yield func(syncfs.FileInfo) error) error, read BlockReader) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("the directory %s is not empty", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return each(func(fi syncfs.FileInfo) error {
		if fi.Deleted {
			return nil
		}
		if err := fi.Validate(); err != nil {
			return fmt.Errorf("entry %q: %w", fi.Name, err)
		}
		return writeEntry(root, fi, read)
	})
}

func writeEntry(root *os.Root, fi syncfs.FileInfo, read BlockReader) error {
	name := filepath.FromSlash(fi.Name)
	if d := filepath.Dir(name); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	switch fi.Type {
	case syncfs.TypeDir:
		return root.MkdirAll(name, 0o755)
	case syncfs.TypeSymlink:
		return root.Symlink(fi.SymlinkTarget, name)
	case syncfs.TypeFile:
		return writeFile(root, name, fi, read)
	}
	return nil
}

func writeFile(root *os.Root, name string, fi syncfs.FileInfo, read BlockReader) error {
	f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	for i := 0; i < len(fi.Blocks); {
		j, size := i, 0
		for j < len(fi.Blocks) && j-i < ExportBatchBlocks && (j == i || size+int(fi.Blocks[j].Size) <= ExportBatchBytes) {
			size += int(fi.Blocks[j].Size)
			j++
		}
		data, err := read(fi.Blocks[i:j])
		if err != nil {
			return fmt.Errorf("reading %s: %w", fi.Name, err)
		}
		if len(data) != j-i {
			return fmt.Errorf("reading %s: asked %d blocks, got %d", fi.Name, j-i, len(data))
		}
		for k, b := range fi.Blocks[i:j] {
			if uint32(len(data[k])) != b.Size || syncfs.HashBytes(data[k]) != b.Hash {
				return fmt.Errorf("reading %s: block %x: %w", fi.Name, b.Hash[:8], ErrCorruptBlock)
			}
			if _, err := f.WriteAt(data[k], b.Offset); err != nil {
				return err
			}
		}
		i = j
	}
	if err := f.Close(); err != nil {
		return err
	}
	mt := time.Unix(0, fi.ModTime)
	return root.Chtimes(name, mt, mt)
}
