package collections

import (
	"errors"
	"fmt"
)

// Kind names one of the three replicated collections.
type Kind uint8

// The collections.
const (
	Domain  Kind = 1 // users, member hosts, the server chain: written by the master only
	Catalog Kind = 2 // shared folders and rights: written by the folder's hosting server
	Report  Kind = 3 // generated reports: written by their author server
)

// Kinds lists every collection in a fixed order.
var Kinds = []Kind{Domain, Catalog, Report}

// String is the collection's lower-case name ("domain", "catalog", "report").
func (k Kind) String() string {
	switch k {
	case Domain:
		return "domain"
	case Catalog:
		return "catalog"
	case Report:
		return "report"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is one of the three collections.
func (k Kind) Valid() bool { return k >= Domain && k <= Report }

// Entry is one stored record of a data file and where it starts.
type Entry struct {
	Offset int64
	Data   []byte
}

// Loaded is a data file as read back from storage.
type Loaded struct {
	File    string  // the file's name, for messages
	Entries []Entry // whole records, in file order
	// TornAt is the offset of an incomplete final record left by a crash in
	// the middle of an append, or -1. Entries before it are whole; the caller
	// truncates the file there (Storage.Replace) before appending again.
	TornAt int64
}

// Storage persists one data file per collection. Implementations: the
// datafile package (on disk) and collectionstest (in memory).
type Storage interface {
	// Append durably adds one record to the end of c's data file.
	Append(c Kind, record []byte) error
	// Replace atomically replaces c's data file with records: compaction
	// to a snapshot, or rewriting as the master copies.
	Replace(c Kind, records [][]byte) error
	// Load reads c's data file. A missing file loads as empty. A file that
	// does not parse yields a *DataFileError.
	Load(c Kind) (Loaded, error)
}

// ErrCorruptDataFile is wrapped by every DataFileError.
var ErrCorruptDataFile = errors.New("corrupt data file")

// DataFileError says which data file failed to load or verify, and where.
// Nothing from a file that yields it is applied.
type DataFileError struct {
	File   string
	Offset int64
	Err    error
}

func (e *DataFileError) Error() string {
	return fmt.Sprintf("data file %s: record at offset %d: %v", e.File, e.Offset, e.Err)
}

// Unwrap returns both the cause and ErrCorruptDataFile.
func (e *DataFileError) Unwrap() []error { return []error{ErrCorruptDataFile, e.Err} }
