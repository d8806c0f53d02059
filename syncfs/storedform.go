package syncfs

import (
	"encoding/binary"
	"errors"
	"math"
)

// storedPacked is the first byte of an entry stored in the packed form:
// storedPacked, then the entry and its stat as a Local packs them
// (appendPacked) with the devices of its version inline. Entries stored
// before it are CBOR maps (storedEntry), whose first byte is a map's head
// (0xa0 to 0xbf), never storedPacked; they still read.
const storedPacked = 0x01

// appendStored appends the stored form of f with its disk stat (nil:
// none).
func appendStored(b []byte, f *FileInfo, st *DiskStat) []byte {
	return appendPacked(append(b, storedPacked), f, st, nil)
}

var errShortStored = errors.New("packed entry cut short or malformed")

// decodePacked decodes v, an entry in the packed form stored under name,
// checking every length against what v holds. It reports whether the
// entry's file hash was stored (or left zero) rather than derived from
// its blocks.
func decodePacked(name string, v []byte) (storedEntry, bool, error) {
	r := storedReader{b: v, i: 1}
	flags := r.byte()
	if flags&packedFile == 0 {
		return storedEntry{}, false, errors.New("packed entry holds no entry")
	}
	f := FileInfo{Name: name, Deleted: flags&packedDeleted != 0}
	f.Size, f.ModTime = r.varint(), r.varint()
	var e storedEntry
	if flags&packedStat != 0 {
		d := DiskStat{Size: f.Size, ModTime: f.ModTime}
		if flags&packedStatSize != 0 {
			d.Size = r.varint()
		}
		if flags&packedStatMtime != 0 {
			d.ModTime = r.varint()
		}
		d.Inode = r.uvarint()
		d.Ctime = d.ModTime + r.varint()
		d.Volume = r.uvarint()
		d.InodeHigh = r.uvarint()
		d.Mode = r.uint32()
		d.Racy = flags&packedRacy != 0
		e.Disk = &d
	}
	f.Type = FileType(r.byte())
	f.Mode = r.uint32()
	if n := r.count(2); n > 0 {
		f.Version.Counters = make([]Counter, n)
		for i := range f.Version.Counters {
			f.Version.Counters[i] = Counter{Device: string(r.bytes(r.count(1))), Value: r.uvarint()}
		}
	}
	f.SymlinkTarget = string(r.bytes(r.count(1)))
	if n := r.count(2 + len(Hash{})); n > 0 {
		f.Blocks = make([]Block, n)
		end := int64(0)
		for i := range f.Blocks {
			bl := &f.Blocks[i]
			bl.Offset = end + r.varint()
			bl.Size = r.uint32()
			bl.Hash = r.hash()
			end = bl.Offset + int64(bl.Size)
		}
	}
	switch {
	case flags&packedHashZero != 0:
	case flags&packedHashOf != 0:
		f.FileHash = FileHashOf(f.Blocks)
	default:
		f.FileHash = r.hash()
	}
	if r.bad || r.i != len(v) {
		return storedEntry{}, false, errShortStored
	}
	e.File = f
	return e, flags&packedHashOf == 0, nil
}

// storedReader reads a packed entry from the database: unlike unpacker
// (which reads what its own Local packed) it checks every read, and
// stays bad from the first that fails.
type storedReader struct {
	b   []byte
	i   int
	bad bool
}

func (r *storedReader) byte() byte {
	if r.i >= len(r.b) {
		r.bad = true
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

func (r *storedReader) uvarint() uint64 {
	x, n := binary.Uvarint(r.b[min(r.i, len(r.b)):])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.i += n
	return x
}

func (r *storedReader) varint() int64 {
	x, n := binary.Varint(r.b[min(r.i, len(r.b)):])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.i += n
	return x
}

func (r *storedReader) uint32() uint32 {
	x := r.uvarint()
	if x > math.MaxUint32 {
		r.bad = true
		return 0
	}
	return uint32(x)
}

// count reads a count of items of at least size bytes each, 0 if the
// rest of the entry cannot hold that many.
func (r *storedReader) count(size int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)-min(r.i, len(r.b)))/uint64(size) {
		r.bad = true
		return 0
	}
	return int(n)
}

func (r *storedReader) bytes(n int) []byte {
	if n > len(r.b)-min(r.i, len(r.b)) {
		r.bad = true
		return nil
	}
	b := r.b[r.i : r.i+n]
	r.i += n
	return b
}

func (r *storedReader) hash() Hash {
	var h Hash
	copy(h[:], r.bytes(len(h)))
	return h
}
