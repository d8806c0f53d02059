package datafile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/baton-sync/baton/collections"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func reopen(t *testing.T, s *Store) *Store {
	t.Helper()
	s2, err := Open(s.Dir())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s2
}

func record(i int) []byte { return fmt.Appendf(nil, "record %d %s", i, strings.Repeat("·", i%50)) }

func appendAll(t *testing.T, s *Store, kind collections.Kind, recs [][]byte) {
	t.Helper()
	for i, r := range recs {
		if err := s.Append(kind, r); err != nil {
			t.Fatalf("Append(%v, record %d): %v", kind, i, err)
		}
	}
}

// wantRecords loads kind and checks it holds exactly recs, with no torn tail.
func wantRecords(t *testing.T, s *Store, kind collections.Kind, recs [][]byte) collections.Loaded {
	t.Helper()
	l, err := s.Load(kind)
	if err != nil {
		t.Fatalf("Load(%v): %v", kind, err)
	}
	if l.File != s.Path(kind) {
		t.Errorf("Load(%v).File = %q; want %q", kind, l.File, s.Path(kind))
	}
	if l.TornAt != -1 {
		t.Errorf("Load(%v).TornAt = %d; want -1", kind, l.TornAt)
	}
	if diff := cmp.Diff(recs, recordsOf(l.Entries)); diff != "" {
		t.Fatalf("Load(%v) records mismatch (-want +got):\n%s", kind, diff)
	}
	return l
}

func TestStoreAppendLoad(t *testing.T) {
	s := openStore(t)
	want := map[collections.Kind][][]byte{}
	for i := range 300 {
		kind := collections.Kinds[i%3]
		r := record(i)
		want[kind] = append(want[kind], r)
		if err := s.Append(kind, r); err != nil {
			t.Fatalf("Append(%v, %d): %v", kind, i, err)
		}
	}
	for _, kind := range collections.Kinds {
		l := wantRecords(t, s, kind, want[kind])
		// Offsets follow the format: header, then frames back to back.
		off := int64(HeaderSize)
		for i, e := range l.Entries {
			if e.Offset != off {
				t.Fatalf("%v entry %d at offset %d; want %d", kind, i, e.Offset, off)
			}
			off += int64(FrameSize(len(e.Data)))
		}
	}
	// A fresh Store on the same directory reads the same, and appends after it.
	s2 := reopen(t, s)
	for _, kind := range collections.Kinds {
		wantRecords(t, s2, kind, want[kind])
	}
	more := []byte("after reopen")
	if err := s2.Append(collections.Catalog, more); err != nil {
		t.Fatalf("Append after reopen: %v", err)
	}
	wantRecords(t, reopen(t, s), collections.Catalog, append(want[collections.Catalog], more))
}

func TestStoreAppendAfterReopenWithoutLoad(t *testing.T) {
	s := openStore(t)
	appendAll(t, s, collections.Domain, [][]byte{[]byte("a"), []byte("b")})
	s2 := reopen(t, s)
	if err := s2.Append(collections.Domain, []byte("c")); err != nil {
		t.Fatalf("first Append after reopen: %v", err)
	}
	wantRecords(t, s2, collections.Domain, [][]byte{[]byte("a"), []byte("b"), []byte("c")})
}

func TestStoreLoadMissing(t *testing.T) {
	s := openStore(t)
	for _, kind := range collections.Kinds {
		l, err := s.Load(kind)
		if err != nil {
			t.Fatalf("Load(%v) of a missing file: %v", kind, err)
		}
		if want := (collections.Loaded{File: s.Path(kind), TornAt: -1}); !cmp.Equal(l, want) {
			t.Errorf("Load(%v) = %+v; want %+v", kind, l, want)
		}
	}
}

func TestStorePaths(t *testing.T) {
	s := openStore(t)
	for kind, name := range map[collections.Kind]string{collections.Domain: "domain.dat", collections.Catalog: "catalog.dat", collections.Report: "report.dat"} {
		if got, want := s.Path(kind), filepath.Join(s.Dir(), name); got != want {
			t.Errorf("Path(%v) = %q; want %q", kind, got, want)
		}
	}
	if got := s.Path(0); got != "" {
		t.Errorf("Path(0) = %q; want \"\"", got)
	}
}

func TestStoreReplace(t *testing.T) {
	s := openStore(t)
	appendAll(t, s, collections.Report, [][]byte{record(1), record(2), record(3)})
	snapshot := [][]byte{[]byte("snapshot"), {}, record(9)}
	if err := s.Replace(collections.Report, snapshot); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	wantRecords(t, s, collections.Report, snapshot)
	appendAll(t, s, collections.Report, [][]byte{[]byte("next")})
	wantRecords(t, reopen(t, s), collections.Report, append(snapshot, []byte("next")))

	// Replacing with nothing leaves a header-only file; creating by Replace works too.
	if err := s.Replace(collections.Report, nil); err != nil {
		t.Fatalf("Replace(nil): %v", err)
	}
	wantRecords(t, s, collections.Report, nil)
	if fi, err := os.Stat(s.Path(collections.Report)); err != nil || fi.Size() != HeaderSize {
		t.Errorf("header-only file: %v, %v; want %d bytes", fi, err, HeaderSize)
	}
	if err := s.Replace(collections.Domain, [][]byte{[]byte("d")}); err != nil {
		t.Fatalf("Replace creating: %v", err)
	}
	wantRecords(t, s, collections.Domain, [][]byte{[]byte("d")})
}

// TestStoreTornTail is the crash-recovery path: a torn final frame loads as
// the prefix plus TornAt, Append refuses until Replace, and appending resumes.
func TestStoreTornTail(t *testing.T) {
	s := openStore(t)
	kind := collections.Catalog
	recs := [][]byte{record(1), record(2), record(3), record(4)}
	appendAll(t, s, kind, recs)
	path := s.Path(kind)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	lastFrame := fi.Size() - int64(FrameSize(len(recs[3])))
	if err := os.Truncate(path, lastFrame+3); err != nil {
		t.Fatal(err)
	}

	// A new process: the first Append checks the tail itself and refuses.
	s = reopen(t, s)
	if err := s.Append(kind, []byte("too early")); !errors.Is(err, ErrNeedsRepair) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Append over a torn tail = %v; want ErrNeedsRepair naming %s", err, path)
	}
	l, err := s.Load(kind)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if l.TornAt != lastFrame {
		t.Errorf("TornAt = %d; want %d", l.TornAt, lastFrame)
	}
	if diff := cmp.Diff(recs[:3], recordsOf(l.Entries)); diff != "" {
		t.Fatalf("Load prefix mismatch (-want +got):\n%s", diff)
	}
	if err := s.Append(kind, []byte("still too early")); !errors.Is(err, ErrNeedsRepair) {
		t.Fatalf("Append after Load reported a torn tail = %v; want ErrNeedsRepair", err)
	}
	if err := s.Replace(kind, recordsOf(l.Entries)); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	appendAll(t, s, kind, [][]byte{[]byte("five")})
	wantRecords(t, reopen(t, s), kind, append(clone(recs[:3]), []byte("five")))
}

func clone(recs [][]byte) [][]byte { return append([][]byte(nil), recs...) }

func TestStoreCorruptFile(t *testing.T) {
	s := openStore(t)
	kind := collections.Domain
	appendAll(t, s, kind, [][]byte{record(1), record(2), record(3)})
	path := s.Path(kind)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[HeaderSize+3] ^= 0x10 // inside the first record, with records after it
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := s.Load(kind)
	var dfe *collections.DataFileError
	if !errors.As(err, &dfe) || dfe.File != path || dfe.Offset != HeaderSize || !errors.Is(err, ErrChecksum) {
		t.Fatalf("Load = %v; want a DataFileError for %s at offset %d wrapping ErrChecksum", err, path, HeaderSize)
	}
	if len(l.Entries) != 0 {
		t.Errorf("Load returned %d entries with an error", len(l.Entries))
	}
	if err := s.Append(kind, []byte("x")); !errors.Is(err, ErrNeedsRepair) {
		t.Fatalf("Append to a corrupt file = %v; want ErrNeedsRepair", err)
	}
	// A new Store finds out on its own.
	if err := reopen(t, s).Append(kind, []byte("x")); !errors.Is(err, ErrNeedsRepair) {
		t.Fatalf("first Append to a corrupt file = %v; want ErrNeedsRepair", err)
	}
}

func TestStoreWrongKindFile(t *testing.T) {
	s := openStore(t)
	appendAll(t, s, collections.Catalog, [][]byte{record(1)})
	data, err := os.ReadFile(s.Path(collections.Catalog))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Path(collections.Report), data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = s.Load(collections.Report)
	var dfe *collections.DataFileError
	if !errors.As(err, &dfe) || dfe.Offset != 0 || !errors.Is(err, ErrWrongKind) || !errors.Is(err, collections.ErrCorruptDataFile) {
		t.Fatalf("Load(report) of a catalog file = %v; want a DataFileError at 0 wrapping ErrWrongKind", err)
	}
	if err := s.Append(collections.Report, record(2)); !errors.Is(err, ErrNeedsRepair) {
		t.Fatalf("Append to a wrong-kind file = %v; want ErrNeedsRepair", err)
	}
}

func TestStoreAppendToEmptyFile(t *testing.T) {
	s := openStore(t)
	kind := collections.Report
	if err := os.WriteFile(s.Path(kind), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	wantRecords(t, s, kind, nil)
	appendAll(t, s, kind, [][]byte{[]byte("one"), []byte("two")})
	wantRecords(t, reopen(t, s), kind, [][]byte{[]byte("one"), []byte("two")})
}

func TestStorePermissionsAndNoTempFiles(t *testing.T) {
	s := openStore(t)
	if fi, err := os.Stat(s.Dir()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory: %v, %v; want mode 0700", fi, err)
	}
	appendAll(t, s, collections.Domain, [][]byte{record(1), record(2)})
	if err := s.Replace(collections.Catalog, [][]byte{record(3)}); err != nil {
		t.Fatal(err)
	}
	appendAll(t, s, collections.Catalog, [][]byte{record(4)})
	if err := s.Replace(collections.Report, nil); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v; want 0600", e.Name(), fi.Mode().Perm())
		}
	}
	if diff := cmp.Diff([]string{"catalog.dat", "domain.dat", "report.dat"}, names); diff != "" {
		t.Errorf("directory contents mismatch (-want +got):\n%s", diff)
	}
}

func TestStoreQuarantine(t *testing.T) {
	s := openStore(t)
	kind := collections.Domain
	appendAll(t, s, kind, [][]byte{record(1)})
	original, err := os.ReadFile(s.Path(kind))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("x", 3600))
	aside, err := s.Quarantine(kind, now)
	if err != nil {
		t.Fatalf("Quarantine: %v", err)
	}
	if want := s.Path(kind) + ".quarantine-20260304T040607.000000008Z"; aside != want {
		t.Errorf("Quarantine = %q; want %q", aside, want)
	}
	if got, err := os.ReadFile(aside); err != nil || !bytes.Equal(got, original) {
		t.Errorf("quarantined file: %v; want the original bytes", err)
	}
	if _, err := os.Stat(s.Path(kind)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Quarantine, Stat(%s) = %v; want not exist", s.Path(kind), err)
	}
	wantRecords(t, s, kind, nil)
	appendAll(t, s, kind, [][]byte{[]byte("fresh")})
	wantRecords(t, s, kind, [][]byte{[]byte("fresh")})

	// Never overwrite earlier evidence; a missing file is an error.
	if _, err := s.Quarantine(kind, now); err == nil {
		t.Errorf("second Quarantine at the same time succeeded; want an error")
	}
	if _, err := s.Quarantine(collections.Report, now); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Quarantine of a missing file = %v; want fs.ErrNotExist", err)
	}
}

func TestStoreQuarantineClearsNeedsRepair(t *testing.T) {
	s := openStore(t)
	kind := collections.Catalog
	if err := os.WriteFile(s.Path(kind), []byte("garbage, not a data file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(kind); err == nil {
		t.Fatal("Load of garbage succeeded")
	}
	if _, err := s.Quarantine(kind, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	appendAll(t, s, kind, [][]byte{[]byte("new")})
	wantRecords(t, s, kind, [][]byte{[]byte("new")})
}

func TestStoreRecordTooLarge(t *testing.T) {
	s := openStore(t)
	big := make([]byte, MaxRecordSize+1)
	if err := s.Append(collections.Domain, big); !errors.Is(err, ErrRecordTooLarge) {
		t.Errorf("Append(over cap) = %v; want ErrRecordTooLarge", err)
	}
	if err := s.Replace(collections.Domain, [][]byte{{1}, big}); !errors.Is(err, ErrRecordTooLarge) {
		t.Errorf("Replace(over cap) = %v; want ErrRecordTooLarge", err)
	}
	if _, err := os.Stat(s.Path(collections.Domain)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused record created %s", s.Path(collections.Domain))
	}
	if err := s.Append(collections.Domain, big[:MaxRecordSize]); err != nil {
		t.Errorf("Append(at cap): %v", err)
	}
}

func TestStoreInvalidKind(t *testing.T) {
	s := openStore(t)
	for _, kind := range []collections.Kind{0, 4, 255} {
		if err := s.Append(kind, []byte("x")); err == nil {
			t.Errorf("Append(%v) succeeded", kind)
		}
		if err := s.Replace(kind, nil); err == nil {
			t.Errorf("Replace(%v) succeeded", kind)
		}
		if _, err := s.Load(kind); err == nil {
			t.Errorf("Load(%v) succeeded", kind)
		}
		if _, err := s.Quarantine(kind, time.Unix(0, 0)); err == nil {
			t.Errorf("Quarantine(%v) succeeded", kind)
		}
	}
}

func TestOpenCreatesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if _, err := Open(dir); err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("Open did not create %s: %v", dir, err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file); err == nil {
		t.Errorf("Open(a regular file) succeeded")
	}
}

// failingFile writes at most limit bytes of the first Write to the real
// file, then fails with writeErr; Sync fails with syncErr.
type failingFile struct {
	*os.File
	limit    int
	writeErr error
	syncErr  error
}

func (f *failingFile) Write(p []byte) (int, error) {
	if f.writeErr == nil {
		return f.File.Write(p)
	}
	n, err := f.File.Write(p[:min(f.limit, len(p))])
	if err != nil {
		return n, err
	}
	return n, f.writeErr
}

func (f *failingFile) Sync() error {
	if f.syncErr != nil {
		return f.syncErr
	}
	return f.File.Sync()
}

func injectFailure(s *Store, ff failingFile) {
	s.openAppend = func(path string) (appendFile, error) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, err
		}
		ff.File = f
		return &ff, nil
	}
}

// TestStoreFullDisk fails an Append partway through its write, as a full
// disk does: the error names the file, the file still loads with the partial
// frame as a torn tail, and Replace repairs it.
func TestStoreFullDisk(t *testing.T) {
	recs := [][]byte{record(1), record(2)}
	rec := record(3)
	for _, limit := range []int{0, 1, 2, FrameSize(len(rec)) / 2, FrameSize(len(rec)) - 1} {
		t.Run(fmt.Sprintf("wrote %d bytes", limit), func(t *testing.T) {
			s := openStore(t)
			kind := collections.Report
			appendAll(t, s, kind, recs)
			injectFailure(s, failingFile{limit: limit, writeErr: syscall.ENOSPC})
			err := s.Append(kind, rec)
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), s.Path(kind)) {
				t.Fatalf("Append on a full disk = %v; want ENOSPC naming %s", err, s.Path(kind))
			}
			s.openAppend = openAppend // the disk has room again
			if err := s.Append(kind, rec); !errors.Is(err, ErrNeedsRepair) {
				t.Fatalf("Append after a failed Append = %v; want ErrNeedsRepair", err)
			}
			l, err := s.Load(kind)
			if err != nil {
				t.Fatalf("Load after a failed Append: %v", err)
			}
			if diff := cmp.Diff(recs, recordsOf(l.Entries)); diff != "" {
				t.Fatalf("Load after a failed Append (-want +got):\n%s", diff)
			}
			if limit == 0 {
				if l.TornAt != -1 {
					t.Errorf("nothing written, TornAt = %d; want -1", l.TornAt)
				}
				// Load found nothing to repair: appending resumes.
			} else {
				if want := l.Entries[1].Offset + int64(FrameSize(len(recs[1]))); l.TornAt != want {
					t.Errorf("TornAt = %d; want %d", l.TornAt, want)
				}
				if err := s.Replace(kind, recordsOf(l.Entries)); err != nil {
					t.Fatal(err)
				}
			}
			appendAll(t, s, kind, [][]byte{rec})
			wantRecords(t, reopen(t, s), kind, append(clone(recs), rec))
		})
	}
}

func TestStoreSyncFailure(t *testing.T) {
	s := openStore(t)
	kind := collections.Domain
	appendAll(t, s, kind, [][]byte{record(1)})
	injectFailure(s, failingFile{syncErr: syscall.EIO})
	if err := s.Append(kind, record(2)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append with a failing fsync = %v; want EIO", err)
	}
	s.openAppend = openAppend
	if err := s.Append(kind, record(3)); !errors.Is(err, ErrNeedsRepair) {
		t.Fatalf("Append after a failed fsync = %v; want ErrNeedsRepair", err)
	}
	// The bytes reached the file; Load says so, and a Replace makes them durable.
	l := wantRecords(t, s, kind, [][]byte{record(1), record(2)})
	if err := s.Replace(kind, recordsOf(l.Entries)); err != nil {
		t.Fatal(err)
	}
	appendAll(t, s, kind, [][]byte{record(3)})
	wantRecords(t, s, kind, [][]byte{record(1), record(2), record(3)})
}
