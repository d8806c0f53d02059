// Package syncfstest helps test folder sync. Device is an in-memory model
// of a synced folder: a tree of files, directories and symlinks on one
// device, the index a scanner would keep for it, and an applier for
// syncfs.Plan's actions that checks every precondition an on-disk applier
// relies on. FakeFS is an in-memory file system for syncfs.Scanner.FS and
// syncfs.Applier.FS, case-insensitive and storing names in NFD at will,
// with failures injected at will (FakeFS.Fail). SmallDisk is a real filesystem that fills up, for what
// happens on disk when it is full.
//
// Usage:
//
//	a := syncfstest.NewDevice("A", chunking)
//	a.WriteFile("docs/x.txt", data, 0o644, t)
//	b := a.Clone("B")
//	err := b.Apply(syncfs.Plan(b.Index, a.Index, b.ID), a.Block)
//
//	resize := syncfstest.SmallDisk(t, dir, 1<<20) // writes in dir fail with ENOSPC past 1 MiB
package syncfstest

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/baton-sync/baton/syncfs"
)

// Node is one entry of a tree.
type Node struct {
	Name    string
	Type    syncfs.FileType
	Data    []byte
	Target  string
	Mode    uint32
	ModTime int64
}

// Device is a folder on one device: its tree and its index, kept in step
// as a scanner would.
type Device struct {
	ID       string
	Index    syncfs.Snapshot
	Chunking syncfs.Chunking
	// FoldCase makes the tree behave like a case-insensitive, normalizing
	// filesystem: names with the same syncfs.Canonical form are one entry.
	FoldCase bool

	nodes map[string]*Node // by key(name)
}

// NewDevice returns an empty folder on device id.
func NewDevice(id string, c syncfs.Chunking) *Device {
	return &Device{ID: id, Index: syncfs.Snapshot{}, Chunking: c, nodes: map[string]*Node{}}
}

func (d *Device) key(name string) string {
	if d.FoldCase {
		return syncfs.Canonical(name)
	}
	return name
}

// Clone returns a deep copy of d as device id.
func (d *Device) Clone(id string) *Device {
	c := NewDevice(id, d.Chunking)
	c.FoldCase = d.FoldCase
	maps.Copy(c.Index, d.Index)
	for k, n := range d.nodes {
		cp := *n
		cp.Data = bytes.Clone(n.Data)
		c.nodes[k] = &cp
	}
	return c
}

// Lookup returns the entry called name (or, with FoldCase, one that clashes
// with it).
func (d *Device) Lookup(name string) (*Node, bool) {
	n, ok := d.nodes[d.key(name)]
	return n, ok
}

// Nodes returns the live entries sorted by name.
func (d *Device) Nodes() []Node {
	out := make([]Node, 0, len(d.nodes))
	for _, n := range d.nodes {
		out = append(out, *n)
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (d *Device) checkParent(name string) error {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return nil
	}
	p, ok := d.Lookup(name[:i])
	if !ok || p.Type != syncfs.TypeDir {
		return fmt.Errorf("%s: parent %s is not a directory", name, name[:i])
	}
	return nil
}

func (d *Device) hasChildren(name string) bool {
	for _, n := range d.nodes {
		if strings.HasPrefix(d.key(n.Name), d.key(name)+"/") {
			return true
		}
	}
	return false
}

// info builds the index entry for n at version v.
func (d *Device) info(n *Node, v syncfs.Vector) syncfs.FileInfo {
	f := syncfs.FileInfo{Name: n.Name, Type: n.Type, Mode: n.Mode, Version: v}
	switch n.Type {
	case syncfs.TypeFile:
		hs, err := syncfs.NewHasher(d.Chunking)
		if err != nil {
			panic(err)
		}
		blocks, sum, err := hs.HashFile(bytes.NewReader(n.Data))
		if err != nil {
			panic(err)
		}
		f.Size, f.ModTime, f.Blocks, f.FileHash = int64(len(n.Data)), n.ModTime, blocks, sum
	case syncfs.TypeSymlink:
		f.Mode, f.SymlinkTarget = 0, n.Target
	}
	return f
}

// bump records a local change to n as a scanner would.
func (d *Device) bump(n *Node) {
	d.Index[n.Name] = d.info(n, d.Index[n.Name].Version.Update(d.ID))
}

func (d *Device) put(n *Node) error {
	if err := syncfs.CheckName(n.Name); err != nil {
		return err
	}
	if err := d.checkParent(n.Name); err != nil {
		return err
	}
	if old, ok := d.Lookup(n.Name); ok {
		if old.Name != n.Name {
			return fmt.Errorf("%s: clashes with %s", n.Name, old.Name)
		}
		if old.Type == syncfs.TypeDir && d.hasChildren(n.Name) && n.Type != syncfs.TypeDir {
			return fmt.Errorf("%s: replacing a non-empty directory", n.Name)
		}
	}
	d.nodes[d.key(n.Name)] = n
	return nil
}

// WriteFile creates or replaces a file, as a user would.
func (d *Device) WriteFile(name string, data []byte, mode uint32, mtime int64) error {
	n := &Node{Name: name, Type: syncfs.TypeFile, Data: bytes.Clone(data), Mode: mode & syncfs.PermMask, ModTime: mtime}
	if err := d.put(n); err != nil {
		return err
	}
	d.bump(n)
	return nil
}

// Mkdir creates a directory.
func (d *Device) Mkdir(name string, mode uint32) error {
	if _, ok := d.Lookup(name); ok {
		return fmt.Errorf("mkdir %s: exists", name)
	}
	n := &Node{Name: name, Type: syncfs.TypeDir, Mode: mode & syncfs.PermMask}
	if err := d.put(n); err != nil {
		return err
	}
	d.bump(n)
	return nil
}

// Symlink creates or replaces a symlink.
func (d *Device) Symlink(name, target string) error {
	n := &Node{Name: name, Type: syncfs.TypeSymlink, Target: target}
	if err := d.put(n); err != nil {
		return err
	}
	d.bump(n)
	return nil
}

// Chmod changes an entry's mode, and SetModTime a file's mtime.
func (d *Device) Chmod(name string, mode uint32) error {
	n, ok := d.Lookup(name)
	if !ok || n.Type == syncfs.TypeSymlink {
		return fmt.Errorf("chmod %s: no such file or directory", name)
	}
	n.Mode = mode & syncfs.PermMask
	d.bump(n)
	return nil
}

// SetModTime changes a file's mtime.
func (d *Device) SetModTime(name string, mtime int64) error {
	n, ok := d.Lookup(name)
	if !ok || n.Type != syncfs.TypeFile {
		return fmt.Errorf("touch %s: not a file", name)
	}
	n.ModTime = mtime
	d.bump(n)
	return nil
}

// Remove deletes an entry and everything under it, recording tombstones.
func (d *Device) Remove(name string) error {
	n, ok := d.Lookup(name)
	if !ok {
		return fmt.Errorf("remove %s: not found", name)
	}
	for _, c := range d.Nodes() {
		if strings.HasPrefix(c.Name, n.Name+"/") {
			d.removeOne(c.Name)
		}
	}
	d.removeOne(n.Name)
	return nil
}

func (d *Device) removeOne(name string) {
	n := d.nodes[d.key(name)]
	delete(d.nodes, d.key(name))
	old := d.Index[name]
	d.Index[name] = syncfs.FileInfo{Name: name, Type: n.Type, Deleted: true, ModTime: n.ModTime, Version: old.Version.Update(d.ID)}
}

// Rename moves a file or symlink.
func (d *Device) Rename(from, to string) error {
	n, ok := d.Lookup(from)
	if !ok || n.Type == syncfs.TypeDir {
		return fmt.Errorf("rename %s: not a file", from)
	}
	if _, ok := d.Lookup(to); ok {
		return fmt.Errorf("rename %s: %s exists", from, to)
	}
	moved := *n
	moved.Name = to
	if err := d.put(&moved); err != nil {
		return err
	}
	d.removeOne(n.Name)
	d.bump(&moved)
	return nil
}

// Block serves a block by hash from d's files, as a peer would.
func (d *Device) Block(h syncfs.Hash) ([]byte, bool) {
	for _, f := range d.Index {
		if f.Deleted || f.Type != syncfs.TypeFile {
			continue
		}
		n, ok := d.Lookup(f.Name)
		if !ok {
			continue
		}
		for _, b := range f.Blocks {
			end := b.Offset + int64(b.Size)
			if b.Hash == h && end <= int64(len(n.Data)) && syncfs.HashBytes(n.Data[b.Offset:end]) == h {
				return n.Data[b.Offset:end], true
			}
		}
	}
	return nil, false
}

// Apply runs a plan's actions in order, checking each precondition an
// on-disk applier relies on: it never overwrites an entry the action does
// not name (including one that merely clashes by case), never removes a
// non-empty directory, and verifies every block and file hash. fetch
// supplies the blocks in Need.
func (d *Device) Apply(actions []syncfs.Action, fetch func(syncfs.Hash) ([]byte, bool)) error {
	for _, a := range actions {
		if err := d.apply(a, fetch); err != nil {
			return fmt.Errorf("%v: %w", a, err)
		}
	}
	return nil
}

func (d *Device) apply(a syncfs.Action, fetch func(syncfs.Hash) ([]byte, bool)) error {
	if err := syncfs.CheckName(a.Name); err != nil {
		return err
	}
	cur, exists := d.Lookup(a.Name)
	recordGone := a.Kind == syncfs.ActRecord && a.File.Deleted
	if exists && cur.Name != a.Name {
		if a.Kind != syncfs.ActSkip && !recordGone {
			return fmt.Errorf("would clobber %s", cur.Name)
		}
		exists = false // another name's entry, which the action leaves alone
	}
	switch a.Kind {
	case syncfs.ActSkip:
		return nil
	case syncfs.ActRecord:
		if exists == a.File.Deleted || exists && cur.Type != a.File.Type {
			return fmt.Errorf("record does not match the tree")
		}
	case syncfs.ActDelete:
		if !exists {
			return fmt.Errorf("nothing to delete")
		}
		if cur.Type == syncfs.TypeDir && d.hasChildren(a.Name) {
			return fmt.Errorf("directory not empty")
		}
		delete(d.nodes, d.key(a.Name))
	case syncfs.ActMkDir:
		if exists {
			return fmt.Errorf("exists")
		}
		if err := d.put(&Node{Name: a.Name, Type: syncfs.TypeDir, Mode: a.File.Mode}); err != nil {
			return err
		}
	case syncfs.ActFetch, syncfs.ActSymlink:
		if exists && cur.Type == syncfs.TypeDir {
			return fmt.Errorf("replacing a directory")
		}
		n, err := d.build(a, fetch)
		if err != nil {
			return err
		}
		if err := d.put(n); err != nil {
			return err
		}
	case syncfs.ActRename:
		if err := d.rename(a, exists); err != nil {
			return err
		}
	case syncfs.ActMeta:
		if !exists || cur.Type != a.File.Type {
			return fmt.Errorf("nothing to change")
		}
		cur.Mode = a.File.Mode
		if cur.Type == syncfs.TypeFile {
			cur.ModTime = a.File.ModTime
		}
	case syncfs.ActConflict:
		if !exists || cur.Type == syncfs.TypeDir {
			return fmt.Errorf("no file to keep")
		}
		if err := d.conflict(a, cur, fetch); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown action")
	}
	d.Index[a.Name] = a.File
	return nil
}

// rename applies the ActRename a; exists: an entry has a's name.
func (d *Device) rename(a syncfs.Action, exists bool) error {
	src, ok := d.Lookup(a.From)
	if !ok || src.Name != a.From || src.Type != syncfs.TypeFile || d.FileHash(src.Data) != a.File.FileHash {
		return fmt.Errorf("rename source %s missing or changed", a.From)
	}
	if exists && d.key(a.From) != d.key(a.Name) {
		return fmt.Errorf("rename target exists")
	}
	delete(d.nodes, d.key(a.From))
	if err := d.put(&Node{Name: a.Name, Type: syncfs.TypeFile, Data: src.Data, Mode: a.File.Mode, ModTime: a.File.ModTime}); err != nil {
		return err
	}
	d.Index[a.From] = *a.Also
	return nil
}

// conflict applies the ActConflict a over the file cur: cur is kept as
// the conflict copy and a's version takes its name.
func (d *Device) conflict(a syncfs.Action, cur *Node, fetch func(syncfs.Hash) ([]byte, bool)) error {
	if _, taken := d.Lookup(a.ConflictName); taken {
		return fmt.Errorf("conflict copy %s exists", a.ConflictName)
	}
	var n *Node
	if a.File.Type == syncfs.TypeDir {
		n = &Node{Name: a.Name, Type: syncfs.TypeDir, Mode: a.File.Mode}
	} else {
		var err error
		if n, err = d.build(a, fetch); err != nil {
			return err
		}
	}
	kept := *cur
	kept.Name = a.ConflictName
	delete(d.nodes, d.key(a.Name))
	if err := d.put(&kept); err != nil {
		return err
	}
	d.Index[a.ConflictName] = *a.Also
	return d.put(n)
}

// FileHash returns the file hash of data as d chunks it.
func (d *Device) FileHash(data []byte) syncfs.Hash {
	hs, err := syncfs.NewHasher(d.Chunking)
	if err != nil {
		panic(err)
	}
	_, sum, err := hs.HashFile(bytes.NewReader(data))
	if err != nil {
		panic(err)
	}
	return sum
}

// build assembles a fetched file or symlink, verifying every block and the
// file hash.
func (d *Device) build(a syncfs.Action, fetch func(syncfs.Hash) ([]byte, bool)) (*Node, error) {
	f := a.File
	if f.Type == syncfs.TypeSymlink {
		return &Node{Name: a.Name, Type: syncfs.TypeSymlink, Target: f.SymlinkTarget}, nil
	}
	data := make([]byte, f.Size)
	covered := int64(0)
	for _, c := range a.Copy {
		src, ok := d.Lookup(c.From)
		end := c.FromOffset + int64(c.Block.Size)
		if !ok || src.Type != syncfs.TypeFile || end > int64(len(src.Data)) {
			return nil, fmt.Errorf("copy source %s missing", c.From)
		}
		b := src.Data[c.FromOffset:end]
		if syncfs.HashBytes(b) != c.Block.Hash {
			return nil, fmt.Errorf("copy source %s changed", c.From)
		}
		copy(data[c.Block.Offset:], b)
		covered += int64(c.Block.Size)
	}
	for _, blk := range a.Need {
		b, ok := fetch(blk.Hash)
		if !ok || syncfs.HashBytes(b) != blk.Hash || len(b) != int(blk.Size) {
			return nil, fmt.Errorf("block at %d unavailable", blk.Offset)
		}
		copy(data[blk.Offset:], b)
		covered += int64(blk.Size)
	}
	if covered != f.Size || d.FileHash(data) != f.FileHash {
		return nil, fmt.Errorf("assembled file does not verify")
	}
	return &Node{Name: a.Name, Type: syncfs.TypeFile, Data: data, Mode: f.Mode, ModTime: f.ModTime}, nil
}

// Diff describes how the live trees of a and b differ, or returns "".
func Diff(a, b *Device) string {
	var out []string
	an, bn := map[string]Node{}, map[string]Node{}
	for _, n := range a.Nodes() {
		an[n.Name] = n
	}
	for _, n := range b.Nodes() {
		bn[n.Name] = n
	}
	for _, name := range slices.Sorted(maps.Keys(an)) {
		x := an[name]
		y, ok := bn[name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("only in %s: %s", a.ID, name))
		case !SameNode(x, y):
			out = append(out, fmt.Sprintf("%s differs: %s %+v vs %s %+v", name, a.ID, brief(x), b.ID, brief(y)))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(bn)) {
		if _, ok := an[name]; !ok {
			out = append(out, fmt.Sprintf("only in %s: %s", b.ID, name))
		}
	}
	return strings.Join(out, "\n")
}

// SameNode reports whether two entries are the same as a sync sees them
// (directory mtimes are not synced).
func SameNode(x, y Node) bool {
	if x.Type != y.Type || x.Mode != y.Mode || x.Target != y.Target || !bytes.Equal(x.Data, y.Data) {
		return false
	}
	return x.Type != syncfs.TypeFile || x.ModTime == y.ModTime
}

func brief(n Node) string {
	h := syncfs.HashBytes(n.Data)
	return fmt.Sprintf("{%s mode %o mtime %d %d bytes %x target %q}", n.Type, n.Mode, n.ModTime, len(n.Data), h[:4], n.Target)
}
