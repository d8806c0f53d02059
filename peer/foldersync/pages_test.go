package foldersync

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/peer/wire"
	"github.com/baton-sync/baton/syncfs"
)

// pagesFixture returns a key and an index of n directories signed by it.
func pagesFixture(t *testing.T, n int) (*identity.PrivateKey, *published) {
	t.Helper()
	key, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dev := key.Public().ID().String()
	snap := syncfs.Snapshot{}
	for i := range n {
		name := fmt.Sprintf("dir/file%06d", i)
		snap[name] = syncfs.FileInfo{Name: name, Type: syncfs.TypeDir, Version: syncfs.Vector{}.Update(dev)}
	}
	p, _ := newPublished(nil, "f", dev, 1, 5, snap, nil, true, nil)
	return key, p
}

// pageNames returns the names the pages of s hold, checking each page's
// signature.
func pageNames(t *testing.T, s *pageSet) []string {
	t.Helper()
	var names []string
	for i := range s.len() {
		pg, err := s.page(i)
		if err != nil {
			t.Fatal(err)
		}
		idx, _, err := syncfs.OpenIndex(pg)
		if err != nil {
			t.Fatal(err)
		}
		for _, fi := range idx.Files {
			names = append(names, fi.Name)
		}
	}
	return names
}

// dirFiles returns the names of the files in dir.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// An index's signed pages held in memory are kept for the next peer that
// asks until dropPages, and are signed again, holding the same, after it.
func TestPagesKeptUntilDropped(t *testing.T) {
	key, p := pagesFixture(t, 20000)
	first, err := p.pages(key, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.release(first)
	again, err := p.pages(key, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.release(again)
	if first.len() < 2 || again != first || first.file != nil {
		t.Errorf("the %d pages (in a file: %v) were not kept for the next request", first.len(), first.file != nil)
	}
	p.dropPages()
	if p.cache.full != nil {
		t.Errorf("dropPages kept pages")
	}
	after, err := p.pages(key, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.release(after)
	if n := len(pageNames(t, after)); n != 20000 {
		t.Errorf("the pages signed again hold %d entries; want %d", n, 20000)
	}
}

// Large pages go to a file of the cache directory, are made once for every
// request and sent as the frames they were made, stay when dropPages drops
// what is in memory, and are removed once the index is replaced and the
// last request sending them ended; pages asked of a replaced index are not
// kept.
func TestPagesInAFile(t *testing.T) {
	key, p := pagesFixture(t, 20000)
	dir := t.TempDir()
	p.cache.dir = dir
	first, err := p.pages(key, 0)
	if err != nil {
		t.Fatal(err)
	}
	if first.file == nil || first.mem != nil {
		t.Fatalf("%d bytes of pages were kept in memory", first.bytes())
	}
	if files := dirFiles(t, dir); len(files) != 1 {
		t.Fatalf("cache directory holds %v; want one file", files)
	}
	want := make([]string, 0, 20000)
	for i := range 20000 {
		want = append(want, fmt.Sprintf("dir/file%06d", i))
	}
	if got := pageNames(t, first); !slices.Equal(got, want) {
		t.Errorf("the pages in the file hold %d names; want %d in order", len(got), len(want))
	}

	// Sent: frames a reader takes one by one, the same pages.
	var buf bytes.Buffer
	calls := 0
	if err := first.send(&buf, func() { calls++ }); err != nil {
		t.Fatal(err)
	}
	if calls != first.len() {
		t.Errorf("send called before %d times for %d pages", calls, first.len())
	}
	br := bufio.NewReader(&buf)
	for i := range first.len() {
		got, err := wire.ReadFrame(br, syncfs.MaxIndexSize)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		pg, _ := first.page(i)
		if !bytes.Equal(got, pg) {
			t.Errorf("frame %d sent differs from page %d", i, i)
		}
	}
	if br.Buffered() != 0 {
		t.Errorf("%d bytes after the last frame", br.Buffered())
	}

	second, err := p.pages(key, 0)
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Errorf("a second request had the pages made again")
	}
	p.release(second)
	p.dropPages()
	if p.cache.full != first || len(dirFiles(t, dir)) != 1 {
		t.Errorf("dropPages dropped the pages in a file")
	}

	// Replaced while first is being sent: its file stays until released.
	p.close()
	if files := dirFiles(t, dir); len(files) != 1 {
		t.Fatalf("the file being sent went when its index was replaced: %v", files)
	}
	if n := len(pageNames(t, first)); n != 20000 {
		t.Errorf("after the index was replaced the file holds %d entries; want 20000", n)
	}
	p.release(first)
	if files := dirFiles(t, dir); len(files) != 0 {
		t.Errorf("after the last request the cache directory holds %v", files)
	}

	// Asked of the replaced index: made for the request alone.
	late, err := p.pages(key, 0)
	if err != nil {
		t.Fatal(err)
	}
	if late.file == nil || p.cache.full != nil {
		t.Errorf("pages of a replaced index were kept (in a file: %v)", late.file != nil)
	}
	p.release(late)
	if files := dirFiles(t, dir); len(files) != 0 {
		t.Errorf("the late request's file stayed: %v", files)
	}
}

// Requests of the whole index and of deltas, at the same time as the
// index is replaced, get whole pages and leave no file behind.
func TestPagesConcurrentWithReplace(t *testing.T) {
	key, p := pagesFixture(t, 5000)
	dir := t.TempDir()
	p.cache.dir = dir
	saved := spillAt
	spillAt = 1 << 10
	t.Cleanup(func() { spillAt = saved })
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := p.pages(key, uint64(i%3)) // 0: whole; 1, 2: since before every entry
			if err != nil {
				errs <- err
				return
			}
			defer p.release(s)
			var buf bytes.Buffer
			if err := s.send(&buf, func() {}); err != nil {
				errs <- err
				return
			}
			br := bufio.NewReader(&buf)
			n := 0
			for range s.len() {
				pg, err := wire.ReadFrame(br, syncfs.MaxIndexSize)
				if err != nil {
					errs <- err
					return
				}
				idx, _, err := syncfs.OpenIndex(pg)
				if err != nil {
					errs <- err
					return
				}
				n += len(idx.Files)
			}
			if n != 5000 {
				errs <- fmt.Errorf("request since %d got %d entries; want 5000", i%3, n)
			}
		}()
		if i == 8 {
			p.close()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if files := dirFiles(t, dir); len(files) != 0 {
		t.Errorf("the cache directory holds %v after every request ended", files)
	}
}

// Hosts whose every index response goes through a file sync as ever; an
// engine keeps the files of its current indexes only, and empties the
// cache directory when it starts.
func TestSyncWithPagesInFiles(t *testing.T) {
	saved := spillAt
	spillAt = 0
	t.Cleanup(func() { spillAt = saved })
	n := newTestNet(t, map[string]collections.Right{"alice": collections.RightOwner, "bob": collections.RightReadWrite}, nil)
	alice, bob, server := n.nodes["alice"], n.nodes["bob"], n.server
	for i := range 50 {
		alice.write(t, fmt.Sprintf("d/f%02d.txt", i), fmt.Sprintf("file %d", i))
	}
	n.waitEqual(alice, server, bob)
	bob.write(t, "d/f07.txt", "changed by bob")
	n.waitEqual(bob, server, alice)

	cache := filepath.Join(server.dataDir, pagesDir)
	if len(dirFiles(t, cache)) == 0 {
		t.Errorf("no index pages in the server's cache directory")
	}
	for _, d := range []*testNode{server, alice, bob} {
		var have, want []string
		waitFor(t, 30*time.Second, d.name+"'s cache directory to hold the files of its current index only", func() bool {
			have, want = dirFiles(t, filepath.Join(d.dataDir, pagesDir)), cachedFiles(n.running(d).pub.Load())
			return slices.Equal(have, want)
		})
	}
	n.stop(server)
	stale := filepath.Join(cache, "index-stale.pages")
	if err := os.WriteFile(stale, []byte("left by a crash"), 0o600); err != nil {
		t.Fatal(err)
	}
	n.start(server)
	n.running(server)
	waitFor(t, 30*time.Second, "the stale page file to go", func() bool {
		_, err := os.Stat(stale)
		return os.IsNotExist(err)
	})
	alice.write(t, "after.txt", "after the restart")
	n.waitEqual(alice, server, bob)
}

// cachedFiles returns the names of the files p's page cache holds, sorted.
func cachedFiles(p *published) []string {
	c := &p.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range append([]*pageSet{c.full}, slices.Collect(maps.Values(c.deltas))...) {
		if s != nil && s.file != nil {
			out = append(out, filepath.Base(s.file.Name()))
		}
	}
	slices.Sort(out)
	return out
}
