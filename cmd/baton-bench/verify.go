package main

import (
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zeebo/blake3"

	"github.com/baton-sync/baton/syncfs"
)

// node is one entry of a tree on disk.
type node struct {
	kind string // file, dir, symlink
	mode fs.FileMode
	size int64
	sum  [32]byte // a file's content hash
	link string   // a symlink's target
}

// hashTree reads the tree at root, hashing every file, without the sync
// engine's temporary files.
func hashTree(root string) (map[string]node, error) {
	out := map[string]node{}
	buf := make([]byte, 1<<20)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if name == "." || syncfs.IsTemp(name) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[name] = node{kind: "symlink", link: target}
		case fi.IsDir():
			out[name] = node{kind: "dir", mode: fi.Mode().Perm()}
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := blake3.New()
			n, err := io.CopyBuffer(h, f, buf)
			f.Close()
			if err != nil {
				return fmt.Errorf("hashing %s: %w", p, err)
			}
			nd := node{kind: "file", mode: fi.Mode().Perm(), size: n}
			h.Sum(nd.sum[:0])
			out[name] = nd
		default:
			out[name] = node{kind: "other"}
		}
		return nil
	})
	return out, err
}

// treeDiff says how the target tree differs from the source tree (a few
// differences at most), "" if not.
func treeDiff(src, dst map[string]node) string {
	var d []string
	for _, n := range slices.Sorted(maps.Keys(src)) {
		s := src[n]
		t, ok := dst[n]
		switch {
		case !ok:
			d = append(d, "missing "+n)
		case t != s:
			d = append(d, fmt.Sprintf("%s differs (%s %o %d bytes on the target, %s %o %d bytes on the source)", n, t.kind, t.mode, t.size, s.kind, s.mode, s.size))
		}
	}
	for n := range dst {
		if _, ok := src[n]; !ok {
			d = append(d, "extra "+n)
		}
	}
	if len(d) > 5 {
		d = append(d[:5], fmt.Sprintf("and %d more", len(d)-5))
	}
	return strings.Join(d, "; ")
}
