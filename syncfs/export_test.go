package syncfs

import "encoding/binary"

// Cut exposes Chunking.cut to the external tests.
func Cut(c Chunking, data []byte) int { return c.cut(data) }

// GearDigest returns the BLAKE3 hash of the gear table, little-endian.
func GearDigest() []byte {
	var b []byte
	for _, v := range gear {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	h := HashBytes(b)
	return h[:]
}
