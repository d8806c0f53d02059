package datafile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/baton-sync/baton/collections"
)

// Format constants. See the package documentation for the layout.
const (
	// Magic opens every data file.
	Magic = "BATONDF"
	// Version is the format version this package writes and reads.
	Version = 1
	// HeaderSize is the length of the file header in bytes.
	HeaderSize = 16
	// MaxRecordSize caps one record's length, on write and on read, so a
	// corrupted length cannot make the decoder allocate or skip gigabytes.
	MaxRecordSize = 4 << 20
	// ChecksumSize is the length of a frame's checksum in bytes.
	ChecksumSize = 4
)

// maxLenBytes is the longest uvarint a valid frame length can take: the
// encoding of MaxRecordSize (22 bits, four 7-bit groups).
const maxLenBytes = 4

// Errors wrapped by the *collections.DataFileError values Decode returns,
// and by Store's own errors.
var (
	// ErrBadHeader: the file does not start with a valid version-1 header.
	ErrBadHeader = errors.New("bad data file header")
	// ErrWrongKind: the header names another collection than the one asked for.
	ErrWrongKind = errors.New("data file holds another collection")
	// ErrChecksum: a frame's checksum does not match its length and payload.
	ErrChecksum = errors.New("record checksum mismatch")
	// ErrBadLength: a frame's length is over MaxRecordSize or not minimally encoded.
	ErrBadLength = errors.New("impossible record length")
	// ErrRecordTooLarge: a record handed to Store is over MaxRecordSize.
	ErrRecordTooLarge = errors.New("record over the size cap")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EncodeHeader returns the 16-byte header of a data file holding collection
// kind. It panics if kind is not valid: callers pass one of the constants.
func EncodeHeader(kind collections.Kind) []byte {
	if !kind.Valid() {
		panic(fmt.Sprintf("datafile: EncodeHeader(%v): invalid collection", kind))
	}
	h := make([]byte, HeaderSize)
	copy(h, Magic)
	h[7] = Version
	h[8] = byte(kind)
	return h
}

// AppendFrame appends one frame holding rec to dst and returns the extended
// slice. It panics if rec is longer than MaxRecordSize; Store checks the cap
// and returns ErrRecordTooLarge instead.
func AppendFrame(dst, rec []byte) []byte {
	if len(rec) > MaxRecordSize {
		panic(fmt.Sprintf("datafile: AppendFrame: record of %d bytes is over the %d-byte cap", len(rec), MaxRecordSize))
	}
	start := len(dst)
	dst = binary.AppendUvarint(dst, uint64(len(rec)))
	dst = append(dst, rec...)
	sum := crc32.Checksum(dst[start:], castagnoli)
	return binary.LittleEndian.AppendUint32(dst, sum)
}

// FrameSize is the number of bytes AppendFrame adds for a record of n bytes.
func FrameSize(n int) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(n)) + n + ChecksumSize
}

// Decode parses the contents of a data file holding collection kind. name is
// used in errors and in the result's File field only.
//
// Empty data decodes as no entries and TornAt -1. A file that ends inside its
// final frame, or whose final frame fails its checksum with nothing but zero
// bytes after it, is a torn append: Decode returns the entries before it and
// TornAt set to that frame's offset, with no error. Anything else that does
// not parse is a *collections.DataFileError naming the offset of the header
// (0) or of the first bad frame, and no entries.
//
// The entries' Data slices alias data.
func Decode(name string, kind collections.Kind, data []byte) (collections.Loaded, error) {
	loaded := collections.Loaded{File: name, TornAt: -1}
	if !kind.Valid() {
		return loaded, fmt.Errorf("decoding %s: invalid collection %v", name, kind)
	}
	if len(data) == 0 {
		return loaded, nil
	}
	if err := checkHeader(kind, data); err != nil {
		return loaded, &collections.DataFileError{File: name, Offset: 0, Err: err}
	}
	var entries []collections.Entry
	pos := HeaderSize
	for pos < len(data) {
		rec, next, torn, err := decodeFrame(data[pos:])
		if err != nil {
			return loaded, &collections.DataFileError{File: name, Offset: int64(pos), Err: err}
		}
		if torn {
			loaded.TornAt = int64(pos)
			break
		}
		entries = append(entries, collections.Entry{Offset: int64(pos), Data: rec})
		pos += next
	}
	loaded.Entries = entries
	return loaded, nil
}

func checkHeader(kind collections.Kind, data []byte) error {
	if len(data) < HeaderSize {
		return fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrBadHeader, len(data), HeaderSize)
	}
	if string(data[:len(Magic)]) != Magic {
		return fmt.Errorf("%w: not a baton data file (magic %q)", ErrBadHeader, data[:len(Magic)])
	}
	if v := data[7]; v != Version {
		return fmt.Errorf("%w: unsupported format version %d (want %d)", ErrBadHeader, v, Version)
	}
	if k := collections.Kind(data[8]); k != kind {
		return fmt.Errorf("%w: holds the %v collection, want %v", ErrWrongKind, k, kind)
	}
	for i := 9; i < HeaderSize; i++ {
		if data[i] != 0 {
			return fmt.Errorf("%w: reserved byte %d is %#02x, want 0", ErrBadHeader, i, data[i])
		}
	}
	return nil
}

// decodeFrame parses the frame at the start of b. It returns the payload and
// the frame's length, or torn if b ends inside the frame (or the frame fails
// its checksum and only zero bytes follow it), or an error.
func decodeFrame(b []byte) (rec []byte, size int, torn bool, err error) {
	var n uint64
	i := 0
	for {
		if i == len(b) {
			return nil, 0, true, nil // the file ends inside the length
		}
		c := b[i]
		n |= uint64(c&0x7f) << (7 * i)
		i++
		if c < 0x80 {
			if i > 1 && c == 0 {
				return nil, 0, false, fmt.Errorf("%w: length not minimally encoded", ErrBadLength)
			}
			break
		}
		if i == maxLenBytes {
			return nil, 0, false, fmt.Errorf("%w: length over %d bytes", ErrBadLength, MaxRecordSize)
		}
	}
	if n > MaxRecordSize {
		return nil, 0, false, fmt.Errorf("%w: %d bytes, over the %d-byte cap", ErrBadLength, n, MaxRecordSize)
	}
	end := i + int(n)
	size = end + ChecksumSize
	if size > len(b) {
		return nil, 0, true, nil // the file ends inside the payload or checksum
	}
	want := binary.LittleEndian.Uint32(b[end:size])
	if got := crc32.Checksum(b[:end], castagnoli); got != want {
		if allZero(b[size:]) {
			// A crash can leave a file's new size on disk without all of its
			// new data: the final append reads back (partly) zero-filled.
			return nil, 0, true, nil
		}
		return nil, 0, false, fmt.Errorf("%w: computed %#08x, stored %#08x", ErrChecksum, got, want)
	}
	return b[i:end:end], size, false, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
