package syncfs

import (
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/canon"
)

// ErrBadIndex reports an index or file entry that is malformed or
// inconsistent.
var ErrBadIndex = errors.New("invalid folder index")

// FileType is what a FileInfo describes.
type FileType uint8

// The kinds of entry a folder holds.
const (
	TypeFile FileType = iota
	TypeDir
	TypeSymlink
)

func (t FileType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	}
	return fmt.Sprintf("FileType(%d)", uint8(t))
}

// PermMask is the mode bits baton syncs.
const PermMask = 0o777

// MaxSymlinkTarget caps a symlink target's length in bytes.
const MaxSymlinkTarget = 4096

// FileInfo describes one entry of a folder at one version.
//
// The fields are in the order that packs them best (a folder's indexes hold
// one per entry); the encoding orders them by key.
type FileInfo struct {
	Name          string   `cbor:"1,keyasint"` // slash-separated, passes CheckName
	Size          int64    `cbor:"3,keyasint,omitempty"`
	ModTime       int64    `cbor:"5,keyasint,omitempty"` // Unix nanoseconds
	Version       Vector   `cbor:"7,keyasint"`
	Blocks        []Block  `cbor:"8,keyasint,omitempty"`
	SymlinkTarget string   `cbor:"9,keyasint,omitempty"`
	FileHash      Hash     `cbor:"10,keyasint"`          // FileHashOf(Blocks) for a live file, else zero
	Mode          uint32   `cbor:"4,keyasint,omitempty"` // permission bits only (PermMask)
	Type          FileType `cbor:"2,keyasint"`
	Deleted       bool     `cbor:"6,keyasint,omitempty"` // a tombstone
}

// SameContent reports whether f and o hold the same thing: same type, and
// for files the same hash, for symlinks the same target. Tombstones hold
// nothing, so two tombstones have the same content.
func (f FileInfo) SameContent(o FileInfo) bool {
	if f.Deleted || o.Deleted {
		return f.Deleted == o.Deleted
	}
	if f.Type != o.Type {
		return false
	}
	switch f.Type {
	case TypeFile:
		return f.FileHash == o.FileHash && f.Size == o.Size
	case TypeSymlink:
		return f.SymlinkTarget == o.SymlinkTarget
	}
	return true
}

// SameMetadata reports whether f and o have the same mode and mtime (what
// an applier sets on an entry without rewriting it). Symlinks carry neither.
func (f FileInfo) SameMetadata(o FileInfo) bool {
	if f.Type == TypeSymlink {
		return true
	}
	if f.Type == TypeDir {
		return f.Mode == o.Mode
	}
	return f.Mode == o.Mode && f.ModTime == o.ModTime
}

// Validate checks f's name and that its fields agree with its type; for a
// live file, that its blocks are contiguous, each at most MaxBlockSize,
// cover Size and that FileHash is FileHashOf(Blocks), so that verifying
// every block verifies the file.
func (f FileInfo) Validate() error {
	if err := CheckName(f.Name); err != nil {
		return fmt.Errorf("%w: %v", ErrBadIndex, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %q: %s", ErrBadIndex, f.Name, fmt.Sprintf(format, args...))
	}
	if err := f.Version.Validate(); err != nil {
		return bad("%v", err)
	}
	if f.Version.IsZero() {
		return bad("no version")
	}
	if f.Mode&^PermMask != 0 {
		return bad("mode %o has bits outside %o", f.Mode, PermMask)
	}
	if f.Size < 0 {
		return bad("negative size")
	}
	if f.Type > TypeSymlink {
		return bad("unknown type %d", f.Type)
	}
	if f.Type != TypeSymlink && f.SymlinkTarget != "" {
		return bad("symlink target on a %s", f.Type)
	}
	if (f.Deleted || f.Type != TypeFile) && (len(f.Blocks) > 0 || f.Size != 0 || f.FileHash != Hash{}) {
		return bad("content on a %s (deleted %v)", f.Type, f.Deleted)
	}
	if f.Type == TypeSymlink && !f.Deleted {
		if f.SymlinkTarget == "" || len(f.SymlinkTarget) > MaxSymlinkTarget || strings.ContainsRune(f.SymlinkTarget, 0) {
			return bad("invalid symlink target")
		}
	}
	var off int64
	for i, b := range f.Blocks {
		if b.Offset != off || b.Size == 0 || b.Size > MaxBlockSize {
			return bad("block %d at %d size %d; want offset %d and a size of 1 to %d", i, b.Offset, b.Size, off, MaxBlockSize)
		}
		off += int64(b.Size)
	}
	if f.Type == TypeFile && !f.Deleted {
		if off != f.Size {
			return bad("blocks cover %d bytes, size is %d", off, f.Size)
		}
		if FileHashOf(f.Blocks) != f.FileHash {
			return bad("file hash %x does not match its block list", f.FileHash[:8])
		}
	}
	return nil
}

// Index is one device's view of a folder: the entries it has, each at the
// version it has. A large folder may be sent as several Index messages, each
// holding some of its entries (see MaxIndexSize).
type Index struct {
	Folder   string     `cbor:"1,keyasint"`
	Device   string     `cbor:"2,keyasint"` // the author's peer ID
	Sequence uint64     `cbor:"3,keyasint"` // the author's counter, for replay checks by the caller
	Files    []FileInfo `cbor:"4,keyasint"` // sorted by name, names unique
}

// MaxIndexSize caps an encoded index. It is the envelope cap, so a folder
// whose index is larger must be split across several Index messages.
const MaxIndexSize = identity.MaxEnvelopeSize

// Validate checks idx's fields and every entry, and that entries are sorted
// by name and unique.
func (idx Index) Validate() error {
	if idx.Folder == "" || idx.Device == "" {
		return fmt.Errorf("%w: no folder or device", ErrBadIndex)
	}
	for i, f := range idx.Files {
		if err := f.Validate(); err != nil {
			return err
		}
		if i > 0 && idx.Files[i-1].Name >= f.Name {
			return fmt.Errorf("%w: entries not sorted and unique at %q", ErrBadIndex, f.Name)
		}
	}
	return nil
}

// Snapshot is a folder's entries by name. It is an Entries.
type Snapshot map[string]FileInfo

// Entries is a read-only view of a device's entries by name: a Snapshot,
// or a *Local.
type Entries interface {
	// Get returns the entry of name, false if there is none.
	Get(name string) (FileInfo, bool)
	// Len returns how many entries there are.
	Len() int
	// All returns every entry by name, in no particular order.
	All() iter.Seq2[string, FileInfo]
}

// Get returns the entry of name, false if s has none.
func (s Snapshot) Get(name string) (FileInfo, bool) {
	f, ok := s[name]
	return f, ok
}

// Len returns how many entries s holds.
func (s Snapshot) Len() int {
	return len(s)
}

// All returns every entry of s by name, in no particular order.
func (s Snapshot) All() iter.Seq2[string, FileInfo] {
	return maps.All(s)
}

// Snapshot returns idx's entries by name.
func (idx Index) Snapshot() Snapshot {
	s := make(Snapshot, len(idx.Files))
	for _, f := range idx.Files {
		s[f.Name] = f
	}
	return s
}

// Sorted returns s's entries sorted by name.
func (s Snapshot) Sorted() []FileInfo {
	out := make([]FileInfo, 0, len(s))
	for _, f := range s {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b FileInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// SignIndex validates idx and seals it with key, which must be the key of
// idx.Device. It returns the encoded envelope.
func SignIndex(key *identity.PrivateKey, idx Index) ([]byte, error) {
	if id := key.ID().String(); id != idx.Device {
		return nil, fmt.Errorf("%w: signing the index of device %s with the key of %s", ErrBadIndex, idx.Device, id)
	}
	if err := idx.Validate(); err != nil {
		return nil, err
	}
	payload, err := canon.Marshal(idx)
	if err != nil {
		return nil, fmt.Errorf("encoding index of folder %s: %w", idx.Folder, err)
	}
	env, err := identity.Seal(identity.PurposeIndex, payload, key)
	if err != nil {
		return nil, err
	}
	return env.Marshal()
}

// OpenIndex decodes a signed index, verifies the signature, checks that the
// signer is the device the index names, and validates every entry (every
// name passes CheckName). The caller still checks that the signer may write
// the folder, and the sequence number.
func OpenIndex(data []byte) (Index, identity.PublicKey, error) {
	env, err := identity.UnmarshalEnvelope(data)
	if err != nil {
		return Index{}, identity.PublicKey{}, err
	}
	signers, err := env.Open(identity.PurposeIndex)
	if err != nil {
		return Index{}, identity.PublicKey{}, err
	}
	if len(signers) != 1 {
		return Index{}, identity.PublicKey{}, fmt.Errorf("%w: index has %d signatures, want 1", identity.ErrWrongSigner, len(signers))
	}
	var idx Index
	if err := canon.Unmarshal(env.Payload, &idx, MaxIndexSize); err != nil {
		return Index{}, identity.PublicKey{}, fmt.Errorf("%w: %v", ErrBadIndex, err)
	}
	if id := signers[0].ID().String(); id != idx.Device {
		return Index{}, identity.PublicKey{}, fmt.Errorf("%w: index of device %s signed by %s", identity.ErrWrongSigner, idx.Device, id)
	}
	if err := idx.Validate(); err != nil {
		return Index{}, identity.PublicKey{}, err
	}
	return idx, signers[0], nil
}
