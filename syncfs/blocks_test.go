package syncfs_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/baton-sync/baton/syncfs"
)

// small chunking so tests see many blocks in little data.
var testChunking = syncfs.Chunking{MinSize: 1 << 10, MaxSize: 16 << 10, AverageBits: 12}

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

func hashWith(t testing.TB, c syncfs.Chunking, data []byte) ([]syncfs.Block, syncfs.Hash) {
	t.Helper()
	hs, err := syncfs.NewHasher(c)
	if err != nil {
		t.Fatal(err)
	}
	blocks, sum, err := hs.HashFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return blocks, sum
}

func TestHashFileBlocks(t *testing.T) {
	for _, c := range []syncfs.Chunking{testChunking, syncfs.DefaultChunking} {
		data := randBytes(1, 5<<20+123)
		blocks, sum := hashWith(t, c, data)
		if sum != syncfs.FileHashOf(blocks) {
			t.Errorf("file hash = %x; want FileHashOf its blocks %x", sum, syncfs.FileHashOf(blocks))
		}
		var off int64
		for i, b := range blocks {
			if b.Offset != off {
				t.Fatalf("block %d at %d; want %d", i, b.Offset, off)
			}
			if b.Size > c.MaxSize || i < len(blocks)-1 && b.Size < c.MinSize {
				t.Errorf("block %d size %d outside %d..%d", i, b.Size, c.MinSize, c.MaxSize)
			}
			if b.Hash != syncfs.HashBytes(data[off:off+int64(b.Size)]) {
				t.Errorf("block %d hash mismatch", i)
			}
			off += int64(b.Size)
		}
		if off != int64(len(data)) {
			t.Errorf("blocks cover %d bytes; want %d", off, len(data))
		}
		t.Logf("%+v: %d blocks for %d bytes", c, len(blocks), len(data))
	}
}

// TestHashFileStable pins the cut points: all hosts, and all versions of
// baton, must cut the same content at the same places.
func TestHashFileStable(t *testing.T) {
	blocks, _ := hashWith(t, syncfs.DefaultChunking, randBytes(7, 4<<20))
	var got []int64
	for _, b := range blocks {
		got = append(got, b.Offset)
	}
	want := []int64{0, 177975, 541746, 879177, 1520733, 1670418, 2011864, 2729377, 2934379, 3406627, 3770076}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("cut offsets = %v;\nwant %v", got, want)
	}
}

// TestCut checks FastCDC's bounds on data that never cuts by itself (all
// zero bytes: the hash stays a sum of one gear value) and on random data,
// and that a cut depends only on the 64 bytes before it.
func TestCut(t *testing.T) {
	c := syncfs.DefaultChunking
	zeros := make([]byte, 5<<20)
	if n := syncfs.Cut(c, zeros); n != int(c.MaxSize) && n < int(c.MinSize) {
		t.Errorf("Cut(zeros) = %d; want MaxSize %d or a cut past MinSize", n, c.MaxSize)
	}
	if n := syncfs.Cut(c, zeros[:c.MinSize-1]); n != int(c.MinSize)-1 {
		t.Errorf("Cut(short) = %d; want all %d bytes", n, c.MinSize-1)
	}
	data := randBytes(5, 8<<20)
	n := syncfs.Cut(c, data)
	if n < int(c.MinSize) || n > int(c.MaxSize) {
		t.Fatalf("Cut(random) = %d; want %d..%d", n, c.MinSize, c.MaxSize)
	}
	// Another block start with the same 64+ bytes before the cut, and no
	// earlier cut: the same cut.
	other := append(randBytes(6, int(c.MinSize)), data[int(c.MinSize)-64:]...)
	if m := syncfs.Cut(c, other); m != n+64 {
		t.Errorf("Cut(other prefix, same window) = %d; want %d", m, n+64)
	}
}

// TestGearTable pins the gear table: all hosts must cut alike.
func TestGearTable(t *testing.T) {
	if got := hex.EncodeToString(syncfs.GearDigest()); got[:16] != gearPinned {
		t.Errorf("gear table digest %s; want %s... (the table changed: every cut moves)", got, gearPinned)
	}
}

func TestHashFileEmptyAndSmall(t *testing.T) {
	blocks, sum := hashWith(t, syncfs.DefaultChunking, nil)
	if len(blocks) != 0 || sum != syncfs.FileHashOf(nil) {
		t.Errorf("HashFile(empty) = %v, %x; want no blocks, FileHashOf no blocks", blocks, sum)
	}
	blocks, _ = hashWith(t, syncfs.DefaultChunking, []byte("hello"))
	if len(blocks) != 1 || blocks[0].Size != 5 || blocks[0].Hash != syncfs.HashBytes([]byte("hello")) {
		t.Errorf("HashFile(hello) = %+v; want one 5-byte block", blocks)
	}
}

// TestHashFileShiftResistant inserts bytes in the middle: content-defined
// cuts resynchronise, so only the blocks around the edit change.
func TestHashFileShiftResistant(t *testing.T) {
	data := randBytes(2, 1<<20)
	edited := append(append(append([]byte{}, data[:500000]...), []byte("inserted text")...), data[500000:]...)
	a, _ := hashWith(t, testChunking, data)
	b, _ := hashWith(t, testChunking, edited)
	have := map[syncfs.Hash]bool{}
	for _, blk := range a {
		have[blk.Hash] = true
	}
	var newBytes int64
	for _, blk := range b {
		if !have[blk.Hash] {
			newBytes += int64(blk.Size)
		}
	}
	if newBytes > 3*int64(testChunking.MaxSize) {
		t.Errorf("a 13-byte insert changed %d bytes of blocks; want at most a few blocks", newBytes)
	}
}

func TestHashFileReadError(t *testing.T) {
	boom := errors.New("boom")
	hs, _ := syncfs.NewHasher(testChunking)
	_, _, err := hs.HashFile(io.MultiReader(bytes.NewReader(randBytes(3, 10000)), iotestErr{boom}))
	if !errors.Is(err, boom) {
		t.Errorf("HashFile(failing reader) error = %v; want boom", err)
	}
	// The Hasher is reusable after an error.
	blocks, sum, err := hs.HashFile(bytes.NewReader([]byte("x")))
	if err != nil || len(blocks) != 1 || blocks[0].Hash != syncfs.HashBytes([]byte("x")) || sum != syncfs.FileHashOf(blocks) {
		t.Errorf("HashFile after error = %v, %x, %v", blocks, sum, err)
	}
}

// TestFileHashOf pins the file hash construction: BLAKE3 derive-key with
// FileHashContext over each block's big-endian size and hash. Every host
// must compute the same file hash for the same blocks.
func TestFileHashOf(t *testing.T) {
	blocks := []syncfs.Block{
		{Offset: 0, Size: 3, Hash: syncfs.HashBytes([]byte("abc"))},
		{Offset: 3, Size: 1 << 20, Hash: syncfs.HashBytes([]byte("second"))},
	}
	var material []byte
	for _, b := range blocks {
		material = binary.BigEndian.AppendUint32(material, b.Size)
		material = append(material, b.Hash[:]...)
	}
	var want syncfs.Hash
	blake3.DeriveKey(syncfs.FileHashContext, material, want[:])
	if got := syncfs.FileHashOf(blocks); got != want {
		t.Errorf("FileHashOf(blocks) = %x; want %x", got, want)
	}
	const pinned = "963130a3"
	if got := syncfs.FileHashOf(blocks); hex.EncodeToString(got[:4]) != pinned {
		t.Errorf("FileHashOf(blocks) = %x; want it to start with %s (the construction changed)", got, pinned)
	}
	// Order and sizes count: the list, not only the set of hashes.
	swapped := []syncfs.Block{blocks[1], blocks[0]}
	resized := []syncfs.Block{blocks[0], {Offset: 3, Size: 1<<20 + 1, Hash: blocks[1].Hash}}
	for name, bs := range map[string][]syncfs.Block{"swapped": swapped, "resized": resized, "one": blocks[:1], "none": nil} {
		if syncfs.FileHashOf(bs) == want {
			t.Errorf("FileHashOf(%s) = FileHashOf(blocks); want different", name)
		}
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

func TestChunkingValidate(t *testing.T) {
	for _, c := range []syncfs.Chunking{{}, {MinSize: 100, MaxSize: 50, AverageBits: 10}, {MinSize: 64, MaxSize: 128 << 20, AverageBits: 10}, {MinSize: 64, MaxSize: 128, AverageBits: 40}} {
		if _, err := syncfs.NewHasher(c); err == nil {
			t.Errorf("NewHasher(%+v) = nil error; want invalid", c)
		}
	}
}

// TestEditRealigns checks that the cuts after an edit soon fall where they
// fell before: a 1 MiB change in the middle of a 16 MiB file changes
// about 1.5 MiB of blocks on average, never more than 3 MiB here (cuts
// that realign slowly, as with normalized chunking, change about 3 MiB on
// average and up to 7.6 MiB).
func TestEditRealigns(t *testing.T) {
	const files = 12
	var total int64
	for seed := range uint64(files) {
		data := randBytes(100+seed, 16<<20)
		before, _ := hashWith(t, syncfs.DefaultChunking, data)
		copy(data[7<<20:8<<20], randBytes(200+seed, 1<<20))
		after, _ := hashWith(t, syncfs.DefaultChunking, data)
		had := map[syncfs.Hash]bool{}
		for _, b := range before {
			had[b.Hash] = true
		}
		var changed int64
		for _, b := range after {
			if !had[b.Hash] {
				changed += int64(b.Size)
			}
		}
		if changed > 3<<20 {
			t.Errorf("seed %d: a 1 MiB edit changed %d bytes of blocks; want at most 3 MiB", seed, changed)
		}
		total += changed
	}
	if mean := total / files; mean > 2<<20 {
		t.Errorf("a 1 MiB edit changed %d bytes of blocks on average; want at most 2 MiB", mean)
	}
}

func BenchmarkHashFile(b *testing.B) {
	for _, bc := range []struct {
		name     string
		c        syncfs.Chunking
		parallel bool
	}{
		{"default", syncfs.DefaultChunking, false},
		{"default-parallel", syncfs.DefaultChunking, true},
		{"restic", syncfs.Chunking{MinSize: 512 << 10, MaxSize: 8 << 20, AverageBits: 20}, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			data := randBytes(9, 64<<20)
			hs, err := syncfs.NewHasher(bc.c)
			if err != nil {
				b.Fatal(err)
			}
			hs.Parallel = bc.parallel
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, _, err := hs.HashFile(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestBlockBuffer(t *testing.T) {
	for _, n := range []int{0, 1, 4 << 10, 64<<10 - 1, 64 << 10, 64<<10 + 64, 300 << 10, 2 << 20, 2<<20 + 10, 64 << 20} {
		b := syncfs.BlockBuffer(n)
		if len(b) != n {
			t.Fatalf("BlockBuffer(%d) has length %d", n, len(b))
		}
		if n >= 64<<10 && cap(b) > n+n/2+64 {
			t.Errorf("BlockBuffer(%d) has capacity %d; want at most half again as much", n, cap(b))
		}
		for i := range b {
			b[i] = byte(i)
		}
		syncfs.FreeBlockBuffer(b)
		again := syncfs.BlockBuffer(n)
		if len(again) != n {
			t.Fatalf("BlockBuffer(%d) after a free has length %d", n, len(again))
		}
		syncfs.FreeBlockBuffer(again)
	}
	syncfs.FreeBlockBuffer(make([]byte, 100<<10)) // not from the pool: ignored
	if b := syncfs.BlockBuffer(100 << 10); len(b) != 100<<10 {
		t.Fatalf("BlockBuffer after freeing a foreign buffer has length %d", len(b))
	}
}

const gearPinned = "d1c0ea69042a22e2"

// BenchmarkCut measures finding the cut points alone (no hashing) over
// 64 MiB of random data, with the default sizes.
func BenchmarkCut(b *testing.B) {
	data := randBytes(9, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for rest := data; len(rest) > 0; {
			rest = rest[syncfs.Cut(syncfs.DefaultChunking, rest):]
		}
	}
}

func BenchmarkHashBytes(b *testing.B) {
	data := randBytes(9, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for off := 0; off < len(data); off += 384 << 10 {
			syncfs.HashBytes(data[off:min(off+384<<10, len(data))])
		}
	}
}

// TestCutMatchesSerial checks the two-stretch cut against hashing byte by
// byte: on random data with several chunkings (cuts in the first
// stretch, in the second, in both, in neither, and in the tail), and on
// data built to put the only cut just after a stretch boundary.
func TestCutMatchesSerial(t *testing.T) {
	chunkings := []syncfs.Chunking{
		syncfs.DefaultChunking,
		{MinSize: 64, MaxSize: 64 << 10, AverageBits: 8},    // many cuts per stretch
		{MinSize: 100, MaxSize: 100 << 10, AverageBits: 13}, // about one per pair of stretches
		{MinSize: 4 << 10, MaxSize: 1 << 20, AverageBits: 20},
	}
	data := randBytes(11, 6<<20)
	for _, c := range chunkings {
		cuts := 0
		for rest := data; len(rest) > 0; cuts++ {
			want := syncfs.CutSerial(c, rest)
			if got := syncfs.Cut(c, rest); got != want {
				t.Fatalf("%+v: Cut = %d at offset %d; hashing byte by byte cuts at %d", c, got, len(data)-len(rest), want)
			}
			rest = rest[want:]
		}
		if cuts < 3 {
			t.Errorf("%+v: only %d blocks in %d bytes; the check saw too few cuts", c, cuts, len(data))
		}
	}
	// Every offset in a short range past MinSize, so that cuts fall at
	// each position of a stretch, including its first and last bytes.
	c := syncfs.Chunking{MinSize: 64, MaxSize: 40 << 10, AverageBits: 6}
	for off := 0; off < 9000; off += 7 {
		rest := data[off : off+(40<<10)]
		if got, want := syncfs.Cut(c, rest), syncfs.CutSerial(c, rest); got != want {
			t.Fatalf("offset %d: Cut = %d; byte by byte %d", off, got, want)
		}
	}
}

// TestHashFileMatchesSerial checks HashFile, which cuts in one buffer
// while the other's blocks are hashed, against cutting and hashing one
// block after another, for inputs that end in the first buffer, on a
// buffer boundary and several buffers later, read in odd-sized pieces.
func TestHashFileMatchesSerial(t *testing.T) {
	c := syncfs.DefaultChunking
	data := randBytes(12, 23<<20+12345)
	for _, parallel := range []bool{false, true} {
		hs, err := syncfs.NewHasher(c)
		if err != nil {
			t.Fatal(err)
		}
		hs.Parallel = parallel
		for _, n := range []int{0, 1, 1 << 20, 3 * int(c.MaxSize), 7<<20 + 123, len(data)} {
			var want []syncfs.Block
			for off := 0; off < n; {
				k := syncfs.Cut(c, data[off:n])
				want = append(want, syncfs.Block{Offset: int64(off), Size: uint32(k), Hash: syncfs.HashBytes(data[off : off+k])})
				off += k
			}
			got, sum, err := hs.HashFile(&oddReader{data: data[:n]})
			if err != nil {
				t.Fatalf("parallel %v, %d bytes: %v", parallel, n, err)
			}
			if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("parallel %v, %d bytes: HashFile gave %d blocks, cutting and hashing one by one %d (or they differ)", parallel, n, len(got), len(want))
			}
			if sum != syncfs.FileHashOf(want) {
				t.Errorf("parallel %v, %d bytes: file hash %x; want FileHashOf the blocks", parallel, n, sum[:8])
			}
		}
	}
}

// oddReader reads data in pieces of 7919 bytes at most.
type oddReader struct{ data []byte }

func (r *oddReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 7919)], r.data)
	r.data = r.data[n:]
	return n, nil
}
