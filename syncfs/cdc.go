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
// least MaxSize bytes or the rest of the input: FastCDC's gear hash (Xia et
// al., USENIX ATC 2016; fp = fp<<1 + gear[byte]) without its normalized
// chunking. The hash runs from 64 bytes before MinSize, so that its top
// bits, which decide, cover a full 64-byte window; no cut is made before
// MinSize; after it a cut comes where the top AverageBits bits of the hash
// are zero, and MaxSize always cuts. Block sizes past MinSize are thus
// spread geometrically, about 2^AverageBits on average.
//
// Normalized chunking (a harder mask up to a "normal" size, an easier one
// after) narrows the sizes, but then cuts after an edit realign with the
// old ones only blocks later: with these sizes a 1 MiB edit in the middle
// of a 16 MiB file changed about 3.1 MiB of blocks on average (7.6 MiB at
// worst over 40 random files) against 1.5 MiB (2.5 MiB at worst) here.
func (c Chunking) cut(data []byte) int {
	n := min(len(data), int(c.MaxSize))
	minSize := int(c.MinSize)
	if n <= minSize {
		return n
	}
	data = data[:n]
	mask := ^uint64(0) << (64 - c.AverageBits)
	var fp uint64
	for _, b := range data[minSize-64 : minSize] {
		fp = fp<<1 + gear[b]
	}
	for i, b := range data[minSize:] {
		fp = fp<<1 + gear[b]
		if fp&mask == 0 {
			return minSize + i + 1
		}
	}
	return n
}
