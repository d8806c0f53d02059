package foldersync

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer/wire"
	"github.com/baton-sync/baton/syncfs"
)

// The signed pages of an index response are kept for the next request of
// the same (a second peer asking the whole index does not have 100,000
// entries signed again; every member device asks for the same delta when
// an index changes). A response of more than spillAt bytes is kept in a
// file of the engine's cache directory, as the frames it is sent in, and
// read back at each request: the kernel's page cache holds it, not the
// process's heap. The files of an index are removed once it is replaced
// (when the last request still reading one ends), and the directory is
// emptied when the engine starts.

// spillAt is the size above which signed pages go to a file.
var spillAt int64 = 256 << 10 // a variable for tests

// pagesDir is the cache directory of the signed pages, in the data
// directory.
const pagesDir = "pages"

// pageCache holds what an index keeps of its signed pages.
type pageCache struct {
	dir string // where large responses go ("": kept in memory)

	making sync.Mutex // held while a response is made, so it is made once

	mu     sync.Mutex
	closed bool                // the index was replaced: nothing more is kept
	full   *pageSet            // the whole index's pages, once made
	deltas map[uint64]*pageSet // the deltas since a sequence, a few
}

// pageSet is the signed pages of one response, in memory or in a file.
// Its refs and cached are under its pageCache's mu.
type pageSet struct {
	mem    [][]byte
	file   *os.File
	ends   []int64 // where each page's frame ends in file
	refs   int     // requests sending it
	cached bool    // held by the cache
}

// len returns how many pages s holds.
func (s *pageSet) len() int {
	if s.file != nil {
		return len(s.ends)
	}
	return len(s.mem)
}

// bytes returns the size of s's pages, framed.
func (s *pageSet) bytes() int64 {
	if s.file != nil {
		return s.ends[len(s.ends)-1]
	}
	var n int64
	for _, pg := range s.mem {
		n += int64(len(pg))
	}
	return n
}

// page returns page i of s, read from its file if it is in one.
func (s *pageSet) page(i int) ([]byte, error) {
	if s.file == nil {
		return s.mem[i], nil
	}
	start := int64(0)
	if i > 0 {
		start = s.ends[i-1]
	}
	b, err := wire.ReadFrame(io.NewSectionReader(s.file, start, s.ends[i]-start), syncfs.MaxIndexSize)
	if err != nil {
		return nil, fmt.Errorf("reading page %d from %s: %w", i, s.file.Name(), err)
	}
	return b, nil
}

// send writes s's pages to w, one frame each, calling before ahead of
// each. Pages in a file are copied from it through a small buffer.
func (s *pageSet) send(w io.Writer, before func()) error {
	if s.file == nil {
		for _, pg := range s.mem {
			before()
			if err := wire.WriteFrame(w, pg); err != nil {
				return err
			}
		}
		return nil
	}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	start := int64(0)
	for _, end := range s.ends {
		before()
		if _, err := io.CopyBuffer(w, io.NewSectionReader(s.file, start, end-start), *buf); err != nil {
			return fmt.Errorf("sending index pages from %s: %w", s.file.Name(), err)
		}
		start = end
	}
	return nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// destroy closes and removes s's file.
func (s *pageSet) destroy() {
	if s.file == nil {
		return
	}
	s.file.Close()
	_ = os.Remove(s.file.Name())
	s.file = nil
}

// pageWriter makes a pageSet page by page: in memory up to spillAt bytes,
// then in a new file of dir.
type pageWriter struct {
	dir  string
	set  *pageSet
	size int64
}

func (pw *pageWriter) add(page []byte) error {
	s := pw.set
	if s.file == nil && (pw.dir == "" || pw.size+int64(len(page)) <= spillAt) {
		s.mem = append(s.mem, page)
		pw.size += int64(len(page))
		return nil
	}
	if s.file == nil {
		f, err := os.CreateTemp(pw.dir, "index-*.pages")
		if err != nil {
			// The cache directory cannot be written: the pages stay in
			// memory, as they would without one.
			pw.dir = ""
			return pw.add(page)
		}
		s.file = f
		mem := s.mem
		s.mem, pw.size = nil, 0
		for _, pg := range mem {
			if err := pw.write(pg); err != nil {
				return err
			}
		}
	}
	return pw.write(page)
}

func (pw *pageWriter) write(page []byte) error {
	hdr := wire.AppendFrameHeader(nil, len(page))
	if _, err := pw.set.file.Write(hdr); err != nil {
		return fmt.Errorf("writing index pages to %s: %w", pw.set.file.Name(), err)
	}
	if _, err := pw.set.file.Write(page); err != nil {
		return fmt.Errorf("writing index pages to %s: %w", pw.set.file.Name(), err)
	}
	pw.size += int64(len(hdr) + len(page))
	pw.set.ends = append(pw.set.ends, pw.size)
	return nil
}

// pages returns the signed pages of the entries changed after since (all
// of them when since is zero), made once for the requests of the same
// until the index is replaced. The caller sends them and then calls
// release.
func (p *published) pages(key *identity.PrivateKey, since uint64) (*pageSet, error) {
	c := &p.cache
	if s := c.take(since); s != nil {
		return s, nil
	}
	c.making.Lock()
	defer c.making.Unlock()
	if s := c.take(since); s != nil {
		return s, nil
	}
	s, err := p.makePages(key, since, c.dir)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.refs++
	if c.closed {
		return s, nil
	}
	s.cached = true
	if since == 0 {
		c.full = s
		return s, nil
	}
	if c.deltas == nil {
		c.deltas = map[uint64]*pageSet{}
	}
	if len(c.deltas) >= 8 {
		for k, old := range c.deltas {
			c.forget(old)
			delete(c.deltas, k)
		}
	}
	c.deltas[since] = s
	return s, nil
}

// take returns the cached pages since since, with a reference, or nil.
func (c *pageCache) take(since uint64) *pageSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.full
	if since != 0 {
		s = c.deltas[since]
	}
	if s != nil {
		s.refs++
	}
	return s
}

// forget drops the cache's hold of s; under c.mu.
func (c *pageCache) forget(s *pageSet) {
	s.cached = false
	if s.refs == 0 {
		s.destroy()
	}
}

// release ends a request's use of s, which pages returned.
func (p *published) release(s *pageSet) {
	c := &p.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	s.refs--
	if s.refs == 0 && !s.cached {
		s.destroy()
	}
}

// dropPages forgets the signed pages kept in memory: for a large folder
// they held as much memory as its index again. The folder drops them once
// its index stayed the same for a while; a peer that asks later has them
// signed again. Pages in a file stay: they cost no memory.
func (p *published) dropPages() {
	c := &p.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.full != nil && c.full.file == nil {
		c.forget(c.full)
		c.full = nil
	}
	for k, s := range c.deltas {
		if s.file == nil {
			c.forget(s)
			delete(c.deltas, k)
		}
	}
}

// close drops every page kept, files included (a file being sent goes when
// its last request ends), and keeps none made after: p was replaced.
func (p *published) close() {
	c := &p.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.full != nil {
		c.forget(c.full)
		c.full = nil
	}
	for _, s := range c.deltas {
		c.forget(s)
	}
	c.deltas = nil
}

// makePages signs the entries changed after since in pages of about
// pageTarget bytes, spilled to a file of dir once large.
func (p *published) makePages(key *identity.PrivateKey, since uint64, dir string) (*pageSet, error) {
	pw := &pageWriter{dir: dir, set: &pageSet{}}
	var (
		page  []syncfs.FileInfo
		bytes int
	)
	flush := func() error {
		signed, err := p.sign(key, page)
		if err != nil {
			return err
		}
		for _, pg := range signed {
			if err := pw.add(pg); err != nil {
				return err
			}
		}
		if pw.set.len() > maxPages {
			return fmt.Errorf("index of folder %s needs more than %d pages", p.folder, maxPages)
		}
		page, bytes = page[:0], 0
		return nil
	}
	fail := func(err error) (*pageSet, error) {
		pw.set.destroy()
		return nil, err
	}
	for e := range p.tree.since(since) {
		sz := entrySize(e.fi)
		if len(page) > 0 && bytes+sz > pageTarget {
			if err := flush(); err != nil {
				return fail(err)
			}
		}
		page = append(page, e.fi)
		bytes += sz
	}
	if len(page) > 0 || pw.set.len() == 0 && since == 0 {
		if err := flush(); err != nil {
			return fail(err)
		}
	}
	return pw.set, nil
}

// sign signs files as one page, or as several if the encoding turns out
// larger than an index may be.
func (p *published) sign(key *identity.PrivateKey, files []syncfs.FileInfo) ([][]byte, error) {
	signed, err := syncfs.SignIndex(key, syncfs.Index{Folder: p.folder, Device: p.device, Sequence: p.seq, Files: files})
	if err == nil && len(signed) <= syncfs.MaxIndexSize {
		return [][]byte{signed}, nil
	}
	if len(files) < 2 {
		if err == nil {
			err = fmt.Errorf("entry %s does not fit in an index", files[0].Name)
		}
		return nil, err
	}
	a, err := p.sign(key, files[:len(files)/2])
	if err != nil {
		return nil, err
	}
	b, err := p.sign(key, files[len(files)/2:])
	if err != nil {
		return nil, err
	}
	return append(a, b...), nil
}

// resetPagesDir empties the cache directory of signed pages under dataDir
// (what an engine stopped without removing its files left) and returns it.
func resetPagesDir(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, pagesDir)
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("emptying the index page cache: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("making the index page cache: %w", err)
	}
	return dir, nil
}
