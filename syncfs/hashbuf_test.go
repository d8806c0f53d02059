package syncfs

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// A small input is hashed in the small buffer alone; a larger one takes
// the large buffers, and both hash as a whole-input reference does.
func TestHashFileSmallInputSmallBuffer(t *testing.T) {
	// A chunking of its own, so that its large buffers' pool is this test's.
	c := Chunking{MinSize: 100 << 10, MaxSize: 1<<20 + 4096, AverageBits: 17}
	hs, err := NewHasher(c)
	if err != nil {
		t.Fatal(err)
	}
	large := hasherWindows * int(c.MaxSize)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 1024, smallHashed - 1, smallHashed} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		blocks, fh, err := hs.HashFile(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := hasherBufs.Load(large); ok {
			t.Fatalf("hashing %d bytes took a buffer of %d", size, large)
		}
		checkBlocks(t, data, blocks, fh)
	}
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	blocks, fh, err := hs.HashFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := hasherBufs.Load(large); !ok {
		t.Errorf("hashing %d bytes did not take the large buffer", len(data))
	}
	checkBlocks(t, data, blocks, fh)
}

// checkBlocks checks that blocks cover data, each with its hash, and fh
// is their file hash.
func checkBlocks(t *testing.T, data []byte, blocks []Block, fh Hash) {
	t.Helper()
	var off int64
	for _, b := range blocks {
		if b.Offset != off || HashBytes(data[off:off+int64(b.Size)]) != b.Hash {
			t.Fatalf("%d bytes: block at %d size %d is wrong", len(data), b.Offset, b.Size)
		}
		off += int64(b.Size)
	}
	if off != int64(len(data)) || fh != FileHashOf(blocks) {
		t.Fatalf("%d bytes: blocks cover %d, file hash %x", len(data), off, fh[:4])
	}
}
