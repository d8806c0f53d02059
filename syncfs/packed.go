package syncfs

import (
	"encoding/binary"
	"maps"
	"slices"
)

// A Local holds each name's entry and disk stat packed in one string:
//
//	byte flags (packed*)
//	[entry] varint size, varint modtime: the entry's, which its stat
//	    shares unless flagged otherwise
//	[stat] [packedStatSize] varint size, [packedStatMtime] varint modtime,
//	    uvarint inode, varint ctime less modtime, uvarint volume, uvarint inode high,
//	    uvarint mode
//	[entry] byte type, uvarint mode, uvarint counters, each uvarint
//	    device (in the Local's deviceTable; stored in a database, the
//	    uvarint length of its ID and the ID) and uvarint value,
//	    uvarint len(symlink target), target, the blocks (AppendBlocks),
//	    the file hash unless it is zero or FileHashOf(blocks)
//
// The name is the key the string is held under. A string is never
// changed: a change packs the name's entry again.
const (
	packedFile      = 1 << iota // holds an entry
	packedStat                  // holds a disk stat
	packedDeleted               // the entry is a tombstone
	packedHashZero              // the entry's file hash is zero
	packedHashOf                // the entry's file hash is FileHashOf(its blocks)
	packedRacy                  // the stat is racy
	packedStatSize              // the stat's size is not the entry's
	packedStatMtime             // the stat's modtime is not the entry's
)

func packedHasFile(v string) bool { return v != "" && v[0]&packedFile != 0 }
func packedHasStat(v string) bool { return v != "" && v[0]&packedStat != 0 }

// deviceTable numbers the devices of a Local's versions, so that an
// entry holds a device as a small number and every decoded version
// shares one copy of each device's ID.
type deviceTable struct {
	names []string
	index map[string]uint64
}

// id returns dev's number, giving it one if it has none.
func (d *deviceTable) id(dev string) uint64 {
	if i, ok := d.index[dev]; ok {
		return i
	}
	if d.index == nil {
		d.index = map[string]uint64{}
	}
	i := uint64(len(d.names))
	d.names = append(d.names, dev)
	d.index[dev] = i
	return i
}

func (d *deviceTable) clone() deviceTable {
	return deviceTable{names: slices.Clone(d.names), index: maps.Clone(d.index)}
}

// pack returns f (nil: none) and, if hasStat, st packed.
func (t *localTable) pack(f *FileInfo, st DiskStat, hasStat bool) string {
	var stp *DiskStat
	if hasStat {
		stp = &st
	}
	t.buf = appendPacked(t.buf[:0], f, stp, &t.devs)
	return string(t.buf)
}

// appendPacked appends f (nil: none) and st (nil: none) packed, the
// devices of f's version numbered in devs, or held inline (a uvarint
// length and the ID) if devs is nil.
func appendPacked(b []byte, f *FileInfo, st *DiskStat, devs *deviceTable) []byte {
	at := len(b)
	b = append(b, 0)
	var flags byte
	if f != nil {
		flags |= packedFile
		if f.Deleted {
			flags |= packedDeleted
		}
		switch {
		case f.FileHash == Hash{}:
			flags |= packedHashZero
		case f.Type == TypeFile && f.FileHash == FileHashOf(f.Blocks):
			flags |= packedHashOf
		}
		b = binary.AppendVarint(b, f.Size)
		b = binary.AppendVarint(b, f.ModTime)
	}
	if st != nil {
		var sf byte
		b, sf = appendStat(b, f, st)
		flags |= sf
	}
	if f != nil {
		b = append(b, byte(f.Type))
		b = binary.AppendUvarint(b, uint64(f.Mode))
		b = binary.AppendUvarint(b, uint64(len(f.Version.Counters)))
		for _, c := range f.Version.Counters {
			if devs != nil {
				b = binary.AppendUvarint(b, devs.id(c.Device))
			} else {
				b = binary.AppendUvarint(b, uint64(len(c.Device)))
				b = append(b, c.Device...)
			}
			b = binary.AppendUvarint(b, c.Value)
		}
		b = binary.AppendUvarint(b, uint64(len(f.SymlinkTarget)))
		b = append(b, f.SymlinkTarget...)
		b = AppendBlocks(b, f.Blocks)
		if flags&(packedHashZero|packedHashOf) == 0 {
			b = append(b, f.FileHash[:]...)
		}
	}
	b[at] = flags
	return b
}

// appendStat appends st, the stat of f (nil: of no entry), and returns
// its flags.
func appendStat(b []byte, f *FileInfo, st *DiskStat) ([]byte, byte) {
	flags := byte(packedStat)
	if st.Racy {
		flags |= packedRacy
	}
	if f == nil || st.Size != f.Size {
		flags |= packedStatSize
		b = binary.AppendVarint(b, st.Size)
	}
	if f == nil || st.ModTime != f.ModTime {
		flags |= packedStatMtime
		b = binary.AppendVarint(b, st.ModTime)
	}
	b = binary.AppendUvarint(b, st.Inode)
	b = binary.AppendVarint(b, st.Ctime-st.ModTime) // most often near
	b = binary.AppendUvarint(b, st.Volume)
	b = binary.AppendUvarint(b, st.InodeHigh)
	b = binary.AppendUvarint(b, uint64(st.Mode))
	return b, flags
}

// restat returns v (a packed entry, its stat, both or "") with its stat
// replaced by st, or removed if st is nil; "" if that leaves nothing.
func (t *localTable) restat(v string, st *DiskStat) string {
	u := unpacker{s: v}
	var flags byte
	var f *FileInfo
	head := 0 // where the flags and the entry's size and modtime end
	if v != "" {
		flags = u.byte()
		if flags&packedFile != 0 {
			// Only its size and modtime, which the stat may share.
			f = &FileInfo{Size: u.varint(), ModTime: u.varint()}
		}
		head = u.i
		if flags&packedStat != 0 {
			u.skipStat(flags)
		}
	}
	if f == nil && st == nil {
		return ""
	}
	b := t.buf[:0]
	b = append(b, v[:head]...)
	if len(b) == 0 {
		b = append(b, 0)
	}
	flags &^= packedStat | packedRacy | packedStatSize | packedStatMtime
	if st != nil {
		var sf byte
		b, sf = appendStat(b, f, st)
		flags |= sf
	}
	b = append(b, v[u.i:]...)
	b[0] = flags
	t.buf = b
	return string(b)
}

// unpackStat returns the stat packed in v, if any.
func unpackStat(v string) (DiskStat, bool) {
	if !packedHasStat(v) {
		return DiskStat{}, false
	}
	u := unpacker{s: v}
	flags := u.byte()
	var d DiskStat
	if flags&packedFile != 0 {
		d.Size, d.ModTime = u.varint(), u.varint()
	}
	u.stat(flags, &d)
	return d, true
}

// unpackFile returns the entry packed in v, named name.
func (t *localTable) unpackFile(name, v string) FileInfo {
	u := unpacker{s: v}
	flags := u.byte()
	f := FileInfo{Name: name, Deleted: flags&packedDeleted != 0}
	f.Size, f.ModTime = u.varint(), u.varint()
	if flags&packedStat != 0 {
		u.skipStat(flags)
	}
	f.Type = FileType(u.byte())
	f.Mode = uint32(u.uvarint())
	if n := u.uvarint(); n > 0 {
		f.Version.Counters = make([]Counter, n)
		for i := range f.Version.Counters {
			f.Version.Counters[i] = Counter{Device: t.devs.names[u.uvarint()], Value: u.uvarint()}
		}
	}
	if n := int(u.uvarint()); n > 0 {
		f.SymlinkTarget = v[u.i : u.i+n]
		u.i += n
	}
	if n := u.uvarint(); n > 0 {
		f.Blocks = make([]Block, n)
		end := int64(0)
		for i := range f.Blocks {
			bl := &f.Blocks[i]
			bl.Offset = end + u.varint()
			bl.Size = uint32(u.uvarint())
			bl.Hash = u.hash()
			end = bl.Offset + int64(bl.Size)
		}
	}
	switch {
	case flags&packedHashZero != 0:
	case flags&packedHashOf != 0:
		f.FileHash = FileHashOf(f.Blocks)
	default:
		f.FileHash = u.hash()
	}
	return f
}

// unpacker reads a packed string. What it reads was packed by the same
// Local: it is not checked.
type unpacker struct {
	s string
	i int
}

func (u *unpacker) byte() byte {
	c := u.s[u.i]
	u.i++
	return c
}

func (u *unpacker) uvarint() uint64 {
	var x uint64
	for shift := uint(0); ; shift += 7 {
		c := u.s[u.i]
		u.i++
		if c < 0x80 {
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
	}
}

func (u *unpacker) varint() int64 {
	ux := u.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (u *unpacker) hash() Hash {
	var h Hash
	u.i += copy(h[:], u.s[u.i:u.i+len(h)])
	return h
}

// stat reads a stat into d, whose size and modtime are the entry's.
func (u *unpacker) stat(flags byte, d *DiskStat) {
	if flags&packedStatSize != 0 {
		d.Size = u.varint()
	}
	if flags&packedStatMtime != 0 {
		d.ModTime = u.varint()
	}
	d.Inode = u.uvarint()
	d.Ctime = d.ModTime + u.varint()
	d.Volume = u.uvarint()
	d.InodeHigh = u.uvarint()
	d.Mode = uint32(u.uvarint())
	d.Racy = flags&packedRacy != 0
}

func (u *unpacker) skipStat(flags byte) {
	var d DiskStat
	u.stat(flags, &d)
}
