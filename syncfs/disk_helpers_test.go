package syncfs

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	devA = "12D3KooWDeviceAAAAAAAAAA"
	devB = "12D3KooWDeviceBBBBBBBBBB"
)

// baseTime is a fixed mtime for test files, well in the past so their stats
// are never racy.
var baseTime = time.Date(2024, 3, 1, 12, 0, 0, 123456789, time.UTC)

// rnd returns n pseudo-random bytes from seed.
func rnd(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// put writes a file under root with mode and mtime, creating parents.
func put(t testing.TB, root, name string, data []byte, mode fs.FileMode, mtime time.Time) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// scanner returns a Scanner for root as device self, whose clock is an hour
// ahead so that files just written are not racy.
func scanner(root, self string) *Scanner {
	return &Scanner{Root: root, Self: self, Now: func() time.Time { return time.Now().Add(time.Hour) }}
}

// mustScan scans root and fails the test on error.
func mustScan(t testing.TB, s *Scanner, prev Local, paths ...string) (Local, ScanStats) {
	t.Helper()
	l, st, err := s.Scan(context.Background(), prev, paths...)
	if err != nil {
		t.Fatalf("Scan(%s): %v", s.Root, err)
	}
	return l, st
}

// localState is what a Local holds, in a form cmp and reflect compare.
type localState struct {
	Files Snapshot
	Disk  map[string]DiskStat
}

// stateOf returns what l holds.
func stateOf(l *Local) localState {
	return localState{Files: l.Snapshot(), Disk: maps.Collect(l.Stats())}
}

// tree describes every entry under root (temp files included) in a form
// two synced folders share: type, mode, content hash and mtime of files,
// symlink targets. Directory mtimes are not synced.
func tree(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "symlink -> " + target
		case fi.IsDir():
			out[rel] = fmt.Sprintf("dir %o", fi.Mode().Perm())
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := HashBytes(data)
			out[rel] = fmt.Sprintf("file %o %d bytes %x mtime %d", fi.Mode().Perm(), len(data), h[:6], fi.ModTime().UnixNano())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// treeDiff describes how two trees differ, or returns "".
func treeDiff(a, b map[string]string) string {
	var out []string
	for _, n := range slices.Sorted(maps.Keys(a)) {
		if v, ok := b[n]; !ok {
			out = append(out, "only in first: "+n+" "+a[n])
		} else if v != a[n] {
			out = append(out, fmt.Sprintf("%s: %s vs %s", n, a[n], v))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[n]; !ok {
			out = append(out, "only in second: "+n+" "+b[n])
		}
	}
	return strings.Join(out, "\n")
}

// dirSource serves blocks from another folder's files, as a peer would,
// counting the bytes it serves.
type dirSource struct {
	root   string
	mu     sync.Mutex
	byHash map[Hash]blockAt
	served atomic.Int64
}

type blockAt struct {
	name string
	off  int64
	size uint32
}

func newDirSource(root string, l Local) *dirSource {
	s := &dirSource{root: root, byHash: map[Hash]blockAt{}}
	for _, f := range l.All() {
		if f.Deleted || f.Type != TypeFile {
			continue
		}
		for _, b := range f.Blocks {
			s.byHash[b.Hash] = blockAt{f.Name, b.Offset, b.Size}
		}
	}
	return s
}

func (s *dirSource) Block(_ context.Context, h Hash, size uint32) (VerifiedBlock, error) {
	s.mu.Lock()
	at, ok := s.byHash[h]
	s.mu.Unlock()
	if !ok || at.size != size {
		return VerifiedBlock{}, fmt.Errorf("no block %x", h[:4])
	}
	f, err := os.Open(filepath.Join(s.root, filepath.FromSlash(at.name)))
	if err != nil {
		return VerifiedBlock{}, err
	}
	defer f.Close()
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, at.off); err != nil {
		return VerifiedBlock{}, err
	}
	s.served.Add(int64(size))
	return VerifyBlock(buf, h)
}

// syncInto makes dst take src's changes: Plan, then Apply with blocks from
// src's folder. It fails the test on any action error and returns the
// bytes fetched and the actions that changed something.
func syncInto(t testing.TB, dst *Local, dstRoot, dstID string, src Local, srcRoot string) (fetched int64, acts []Action) {
	t.Helper()
	plan := Plan(dst, src.Snapshot(), dstID)
	ap := &Applier{Root: dstRoot, Source: newDirSource(srcRoot, src)}
	for _, r := range ap.Apply(context.Background(), dst, plan) {
		if r.Err != nil {
			t.Fatalf("applying to %s: %v", dstID, r.Err)
		}
		fetched += r.Fetched
		if r.Action.Kind != ActSkip && r.Action.Kind != ActRecord {
			acts = append(acts, r.Action)
		}
	}
	return fetched, acts
}

// tempFiles lists applier temporary files under root.
func tempFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), TempPrefix) {
			out = append(out, p)
		}
		return nil
	})
	return out
}
