package datafile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/internal/atomicfile"
)

// ErrNeedsRepair is returned by Append when the data file may not end on a
// whole record: Load reported a torn tail or an error, or an earlier Append
// failed after it started writing. Load the file, then Replace it with the
// loaded entries (or Quarantine it) before appending again.
var ErrNeedsRepair = errors.New("data file needs repair before appending")

// filePerm is the permission of every data file: they hold the replicated
// state and are nobody else's business.
const filePerm = 0o600

// tail is what a Store knows about the end of one data file.
type tail uint8

const (
	tailUnknown     tail = iota // not checked since Open, or after a failed Replace
	tailClean                   // ends on a whole record (or does not exist)
	tailNeedsRepair             // torn, corrupt, or an append failed midway
)

// appendFile is the part of *os.File that Append uses; tests substitute a
// file that fails midway.
type appendFile interface {
	Write(p []byte) (int, error)
	Stat() (fs.FileInfo, error)
	Sync() error
	Close() error
}

func openAppend(path string) (appendFile, error) {
	// No O_CREATE: a new file is created atomically, header included.
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
}

// Store keeps one data file per collection in a directory: domain.dat,
// catalog.dat and report.dat. It holds no open files between calls.
//
// A Store is for use by one goroutine at a time, and a directory is for use
// by one Store at a time.
type Store struct {
	// NoSync: Append does not fsync. For a host whose data files are a
	// view of another durable record, rewritten from it after a crash (a
	// chain server's raft log); Replace still fsyncs.
	NoSync     bool
	dir        string
	tails      [collections.Report + 1]tail // indexed by Kind
	buf        []byte
	openAppend func(path string) (appendFile, error)
}

var _ collections.Storage = (*Store)(nil)

// Open returns a Store for the data files in dir, creating dir with
// permissions 0700 if it does not exist. It starts nothing.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("opening data directory: %w", err)
	}
	return &Store{dir: dir, openAppend: openAppend}, nil
}

// Dir returns the directory holding the data files.
func (s *Store) Dir() string { return s.dir }

// Path returns the path of kind's data file, or "" if kind is not valid.
func (s *Store) Path(kind collections.Kind) string {
	if !kind.Valid() {
		return ""
	}
	return filepath.Join(s.dir, kind.String()+".dat")
}

// Load reads and decodes kind's data file (see Decode). A missing file loads
// as empty. A torn tail or a *collections.DataFileError makes later Appends
// return ErrNeedsRepair until Replace.
func (s *Store) Load(kind collections.Kind) (collections.Loaded, error) {
	if !kind.Valid() {
		return collections.Loaded{TornAt: -1}, fmt.Errorf("loading data file: invalid collection %v", kind)
	}
	path := s.Path(kind)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		s.tails[kind] = tailClean
		return collections.Loaded{File: path, TornAt: -1}, nil
	}
	if err != nil {
		return collections.Loaded{File: path, TornAt: -1}, fmt.Errorf("loading data file: %w", err)
	}
	loaded, err := Decode(path, kind, data)
	switch {
	case err != nil || loaded.TornAt >= 0:
		s.tails[kind] = tailNeedsRepair
	default:
		s.tails[kind] = tailClean
	}
	return loaded, err
}

// Append durably adds record to the end of kind's data file: one write of
// one frame, then fsync. A missing or empty file is first created
// atomically with the header and the record.
//
// Append refuses with ErrNeedsRepair to write after a tail that may be torn
// (see ErrNeedsRepair). The first Append to a kind after Open that neither
// Load nor Replace preceded reads the whole file once to check its tail.
// If Append fails after starting to write, the file still loads: the
// partial frame reads back as a torn tail.
func (s *Store) Append(kind collections.Kind, record []byte) error {
	if !kind.Valid() {
		return fmt.Errorf("appending to data file: invalid collection %v", kind)
	}
	path := s.Path(kind)
	if len(record) > MaxRecordSize {
		return fmt.Errorf("appending to %s: %w: %d bytes, cap %d", path, ErrRecordTooLarge, len(record), MaxRecordSize)
	}
	if s.tails[kind] == tailUnknown {
		if _, err := s.Load(kind); err != nil && s.tails[kind] != tailNeedsRepair {
			return fmt.Errorf("appending to %s: %w", path, err)
		}
	}
	if s.tails[kind] == tailNeedsRepair {
		return fmt.Errorf("appending to %s: %w", path, ErrNeedsRepair)
	}

	f, err := s.openAppend(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s.create(kind, record)
	}
	if err != nil {
		return fmt.Errorf("appending to %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("appending to %s: %w", path, err)
	}
	if fi.Size() == 0 {
		f.Close()
		return s.create(kind, record)
	}

	s.buf = AppendFrame(s.buf[:0], record)
	_, werr := f.Write(s.buf)
	if werr == nil && !s.NoSync {
		werr = f.Sync()
	}
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		// The file may now end in part of this frame, or the frame may not be
		// durable: either way the next Load decides.
		s.tails[kind] = tailNeedsRepair
		return fmt.Errorf("appending to %s: %w", path, werr)
	}
	return nil
}

// create writes kind's data file from nothing: header and first record, atomically.
func (s *Store) create(kind collections.Kind, record []byte) error {
	s.buf = AppendFrame(append(s.buf[:0], EncodeHeader(kind)...), record)
	return s.write(kind, s.buf)
}

// Replace atomically replaces kind's data file with a header and records
// (temp file, fsync, rename, directory fsync). It is how a torn tail is cut
// off and how a file is compacted to a snapshot.
func (s *Store) Replace(kind collections.Kind, records [][]byte) error {
	if !kind.Valid() {
		return fmt.Errorf("replacing data file: invalid collection %v", kind)
	}
	size := HeaderSize
	for i, r := range records {
		if len(r) > MaxRecordSize {
			return fmt.Errorf("replacing %s: record %d: %w: %d bytes, cap %d", s.Path(kind), i, ErrRecordTooLarge, len(r), MaxRecordSize)
		}
		size += FrameSize(len(r))
	}
	buf := make([]byte, 0, size)
	buf = append(buf, EncodeHeader(kind)...)
	for _, r := range records {
		buf = AppendFrame(buf, r)
	}
	return s.write(kind, buf)
}

func (s *Store) write(kind collections.Kind, data []byte) error {
	if err := atomicfile.WriteFile(s.Path(kind), data, filePerm); err != nil {
		// The rename may or may not have happened: look before appending.
		s.tails[kind] = tailUnknown
		return err
	}
	s.tails[kind] = tailClean
	return nil
}

// Quarantine renames kind's data file aside to
// "<name>.quarantine-<UTC time now>" in the same directory, fsyncs the
// directory, and returns the new path. The daemon uses it for a file that
// fails to load or verify: the evidence is kept, and the next Append starts
// a new file. It fails if kind has no data file.
func (s *Store) Quarantine(kind collections.Kind, now time.Time) (string, error) {
	if !kind.Valid() {
		return "", fmt.Errorf("quarantining data file: invalid collection %v", kind)
	}
	path := s.Path(kind)
	aside := path + ".quarantine-" + now.UTC().Format("20060102T150405.000000000Z")
	if _, err := os.Lstat(aside); err == nil {
		return "", fmt.Errorf("quarantining %s: %s already exists", path, aside)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("quarantining %s: %w", path, err)
	}
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("quarantining %s: %w", path, err)
	}
	s.tails[kind] = tailClean // absent
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return aside, fmt.Errorf("quarantining %s: %w", path, err)
	}
	return aside, nil
}
