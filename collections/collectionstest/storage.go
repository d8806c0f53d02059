package collectionstest

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/baton-sync/baton/collections"
)

// Storage is an in-memory collections.Storage. Each collection's "file" is a
// byte string of records, each framed as a 4-byte big-endian length and the
// record, so tests can corrupt and truncate it at any byte offset. It is
// safe for concurrent use.
type Storage struct {
	mu       sync.Mutex
	files    map[collections.Kind][]byte
	appends  int
	replaces int
	// FailAppend, if set, is returned by Append instead of appending.
	FailAppend error
}

var _ collections.Storage = (*Storage)(nil)

// NewStorage returns an empty Storage.
func NewStorage() *Storage { return &Storage{files: make(map[collections.Kind][]byte)} }

// FileName is the name Load reports for collection k.
func FileName(k collections.Kind) string { return "mem:" + k.String() + ".dat" }

func frame(b []byte, rec []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(rec)))
	return append(b, rec...)
}

// Append adds record to the end of c's file.
func (s *Storage) Append(c collections.Kind, record []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.FailAppend != nil {
		return s.FailAppend
	}
	s.files[c] = frame(s.files[c], record)
	s.appends++
	return nil
}

// Replace replaces c's file with records.
func (s *Storage) Replace(c collections.Kind, records [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b []byte
	for _, r := range records {
		b = frame(b, r)
	}
	s.files[c] = b
	s.replaces++
	return nil
}

// Load parses c's file. A final record cut short is reported as TornAt.
func (s *Storage) Load(c collections.Kind) (collections.Loaded, error) {
	s.mu.Lock()
	b := append([]byte(nil), s.files[c]...)
	s.mu.Unlock()
	l := collections.Loaded{File: FileName(c), TornAt: -1}
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			l.TornAt = int64(off)
			break
		}
		n := int(binary.BigEndian.Uint32(b[off:]))
		if n > collections.MaxCertifiedSize {
			return collections.Loaded{}, &collections.DataFileError{File: l.File, Offset: int64(off), Err: fmt.Errorf("record length %d over the limit", n)}
		}
		if len(b)-off-4 < n {
			l.TornAt = int64(off)
			break
		}
		l.Entries = append(l.Entries, collections.Entry{Offset: int64(off), Data: b[off+4 : off+4+n]})
		off += 4 + n
	}
	return l, nil
}

// Bytes returns a copy of c's file.
func (s *Storage) Bytes(c collections.Kind) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.files[c]...)
}

// SetBytes replaces c's file with b, as a file edited behind the program's
// back.
func (s *Storage) SetBytes(c collections.Kind, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[c] = append([]byte(nil), b...)
}

// Corrupt flips the low bit of the byte at offset of c's file.
func (s *Storage) Corrupt(c collections.Kind, offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[c][offset] ^= 1
}

// Truncate cuts c's file to size bytes.
func (s *Storage) Truncate(c collections.Kind, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[c] = s.files[c][:size]
}

// Size is the length of c's file.
func (s *Storage) Size(c collections.Kind) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.files[c]))
}

// Counts reports how many Appends and Replaces succeeded.
func (s *Storage) Counts() (appends, replaces int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appends, s.replaces
}
