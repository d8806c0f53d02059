package syncfs

import (
	"encoding/binary"

	"github.com/zeebo/blake3"
)

// GearContext is the BLAKE3 key-derivation context the FastCDC gear table
// is drawn from. It is fixed: changing it moves every cut.
const GearContext = "baton 2026-11-21 FastCDC gear table v1"

// gear is FastCDC's table of 256 pseudo-random 64-bit values: the first
// 2,048 bytes of BLAKE3's output in derive-key mode with GearContext and
// no input, read as little-endian uint64s. Every host derives the same.
var gear = func() (t [256]uint64) {
	var b [8 * 256]byte
	if _, err := blake3.NewDeriveKey(GearContext).Digest().Read(b[:]); err != nil {
		panic(err)
	}
	for i := range t {
		t[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return t
}()

// cut returns the length of the block at the start of data, which holds at
// least MaxSize bytes or the rest of the input: FastCDC (Xia et al.,
// USENIX ATC 2016) with normalized chunking, level 2. The gear hash
// (fp = fp<<1 + gear[byte]) runs from 64 bytes before MinSize, so that its
// top bits, which decide, cover a full 64-byte window; no cut is made
// before MinSize. Up to the normal size (MinSize + 2^AverageBits) a cut
// needs the top AverageBits+2 bits of the hash to be zero, after it only
// the top AverageBits-2, and MaxSize always cuts. That puts most cuts
// near the normal size: about 1.5 times MinSize on average with
// DefaultChunking.
func (c Chunking) cut(data []byte) int {
	n := min(len(data), int(c.MaxSize))
	minSize := int(c.MinSize)
	if n <= minSize {
		return n
	}
	data = data[:n]
	normal := min(minSize+1<<c.AverageBits, n)
	maskS := ^uint64(0) << (64 - (c.AverageBits + 2))
	maskL := ^uint64(0) << (64 - (c.AverageBits - 2))
	var fp uint64
	for _, b := range data[minSize-64 : minSize] {
		fp = fp<<1 + gear[b]
	}
	for i, b := range data[minSize:normal] {
		fp = fp<<1 + gear[b]
		if fp&maskS == 0 {
			return minSize + i + 1
		}
	}
	for i, b := range data[normal:] {
		fp = fp<<1 + gear[b]
		if fp&maskL == 0 {
			return normal + i + 1
		}
	}
	return n
}
