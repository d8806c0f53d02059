package syncfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/zeebo/blake3"
)

// Hash is a BLAKE3-256 digest: of one block's content, or of a file's
// block list (FileHashOf).
type Hash [32]byte

// HashBytes returns the BLAKE3-256 digest of b.
func HashBytes(b []byte) Hash { return blake3.Sum256(b) }

// FileHashContext is the BLAKE3 key-derivation context of FileHashOf. It
// is fixed: changing it changes every file hash.
const FileHashContext = "baton 2026-11-21 file hash from its block list v1"

// fileHashers holds BLAKE3 hashers in derive-key mode for FileHashContext
// (each carries an 8 KiB buffer: worth reusing for one hash per file).
var fileHashers = sync.Pool{New: func() any { return blake3.NewDeriveKey(FileHashContext) }}

// FileHashOf returns the hash of a file made of blocks: BLAKE3 in
// derive-key mode with the context FileHashContext, over each block in
// order as 36 bytes, its size (4 bytes, big-endian) then its hash. A file
// with no blocks (an empty file) hashes the empty input.
//
// As each block hash commits to the block's bytes and the sizes to where
// they lie, the file hash commits to the whole content, and a receiver
// that verifies every block against the block list has verified the file:
// there is no second pass over the content. Two hosts agree on a file's
// hash only if they cut it alike, which they do: Polynomial and
// DefaultChunking are the same everywhere.
func FileHashOf(blocks []Block) Hash {
	h := fileHashers.Get().(*blake3.Hasher)
	defer fileHashers.Put(h)
	h.Reset()
	var rec [36]byte
	for _, b := range blocks {
		binary.BigEndian.PutUint32(rec[:4], b.Size)
		copy(rec[4:], b.Hash[:])
		h.Write(rec[:])
	}
	var sum Hash
	h.Sum(sum[:0])
	return sum
}

// AppendBlocks appends blocks to b in the compact form that a Local and a
// published index hold them in: uvarint count, then each block's varint
// offset past the previous block's end (0 for blocks that follow one
// another), uvarint size and hash.
func AppendBlocks(b []byte, blocks []Block) []byte {
	b = binary.AppendUvarint(b, uint64(len(blocks)))
	end := int64(0)
	for _, bl := range blocks {
		b = binary.AppendVarint(b, bl.Offset-end)
		b = binary.AppendUvarint(b, uint64(bl.Size))
		b = append(b, bl.Hash[:]...)
		end = bl.Offset + int64(bl.Size)
	}
	return b
}

// Block is one content-defined chunk of a file.
type Block struct {
	Offset int64  `cbor:"1,keyasint"`
	Size   uint32 `cbor:"2,keyasint"`
	Hash   Hash   `cbor:"3,keyasint"`
}

// MaxBlockSize is the largest block any Chunking cuts (the limit on
// MaxSize), so the largest block an index may hold: a receiver allocates a
// block's size to read it.
const MaxBlockSize = 64 << 20

// Chunking sets the content-defined chunk sizes. Blocks are cut by FastCDC
// with a fixed gear table (see GearContext), so that all hosts cut
// identical content at identical places and share blocks.
type Chunking struct {
	MinSize     uint32 // no cut before this many bytes (except at EOF)
	MaxSize     uint32 // always cut here
	AverageBits int    // past MinSize, a cut comes every 2^AverageBits bytes on average
}

// DefaultChunking: blocks of 128 KiB to 2 MiB, about 380 KiB on average.
//
// restic's defaults (512 KiB to 8 MiB, about 1.5 MiB on average) suit
// backups. For sync, a small edit costs roughly the edited bytes plus the
// blocks around it until the cuts realign, so smaller blocks keep "a 1 MiB
// edit sends about 1 MiB" close to true (about 1.5 MiB changed on average
// here) while a 1 GiB file still has only about 2,800 blocks (about 130 KiB
// of index). The chunker does not look at the first MinSize bytes of a
// block (but for the 64 before the first possible cut); past them it rolls
// its gear hash at a few GB/s (BenchmarkCut; restic's Rabin chunker, used
// before, found cuts at about 1.1 GB/s with comparable sizes). A larger
// MinSize next to the 2^AverageBits tail would chunk faster still but
// realign later after an edit. Files under MinSize are one block. The
// sizes, like the gear table, must be the same on every host.
var DefaultChunking = Chunking{MinSize: 128 << 10, MaxSize: 2 << 20, AverageBits: 18}

// Validate checks that c is usable.
func (c Chunking) Validate() error {
	switch {
	case c.MinSize < 64 || c.MaxSize < c.MinSize:
		return fmt.Errorf("chunking: sizes %d..%d invalid (need 64 <= min <= max)", c.MinSize, c.MaxSize)
	case c.MaxSize > MaxBlockSize:
		return fmt.Errorf("chunking: max size %d over 64 MiB", c.MaxSize)
	case c.AverageBits < 6 || c.AverageBits > 30:
		return fmt.Errorf("chunking: average bits %d outside 6..30", c.AverageBits)
	}
	return nil
}

// Hasher chunks and hashes files. Its buffers come from a pool shared by
// all Hashers for each call of HashFile and go back when it returns. A
// Hasher is not safe for concurrent use; use one per scanning goroutine.
type Hasher struct {
	c Chunking
	// Parallel has a large file's blocks hashed on a second goroutine
	// while the next ones are cut: faster on a CPU that would otherwise
	// idle, a little more CPU time in all (the bytes move between CPU
	// caches). The scanner sets it when it hashes fewer files at once
	// than there are CPUs.
	Parallel bool
}

// hasherWindows is each of HashFile's two buffers in MaxSize units.
const hasherWindows = 3

// NewHasher returns a Hasher for c, which must be valid.
func NewHasher(c Chunking) (*Hasher, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Hasher{c: c}, nil
}

// hasherBufs pools HashFile's buffers by size (a *sync.Pool of *[]byte
// per size): a scan of many small files, or a rescan for each new file,
// reuses them instead of allocating megabytes each time.
var hasherBufs sync.Map

func hasherBuf(n int) *[]byte {
	p, _ := hasherBufs.LoadOrStore(n, &sync.Pool{New: func() any { b := make([]byte, n); return &b }})
	return p.(*sync.Pool).Get().(*[]byte)
}

func freeHasherBuf(b *[]byte) {
	if p, ok := hasherBufs.Load(len(*b)); ok {
		p.(*sync.Pool).Put(b)
	}
}

// HashFile reads r to the end and returns its blocks and the file hash
// (FileHashOf the blocks). Each byte is read once into one of two buffers
// and hashed once, in its block. The buffers take turns: with Parallel,
// while the blocks cut in one are hashed on another goroutine, the rest
// of the input is read into the other (the tail after the last cut first)
// and cut there, so that on two CPUs a large file is chunked and hashed at
// about the speed of the chunking alone. Without Parallel, or for an input
// that fits in one buffer, only one buffer is used. An empty input has no
// blocks.
func (hs *Hasher) HashFile(r io.Reader) ([]Block, Hash, error) {
	var (
		blocks  []Block
		off     int64
		eof     bool
		max     = int(hs.c.MaxSize)
		bufs    [2]*[]byte
		cur     = 0 // the buffer being filled and cut
		tail    []byte
		hashing sync.WaitGroup
		// pending is the job hashed on another goroutine, if any: its
		// blocks get their hashes when it is done.
		pending []hashJob
	)
	defer func() {
		hashing.Wait()
		for _, b := range bufs {
			if b != nil {
				freeHasherBuf(b)
			}
		}
	}()
	// The input's first bytes go into a small buffer: an input that fits
	// in it never takes the large ones (hasherWindows*MaxSize, 6 MiB each
	// at the default chunking: a scan of 100,000 small files held 24 MB
	// of them).
	var small *[]byte
	if max > smallHashed {
		small = hasherBuf(smallHashed + 1) // one more: an input of smallHashed bytes ends in it
		defer freeHasherBuf(small)
		n, err := io.ReadFull(r, *small)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			eof = true
		case err != nil:
			return nil, Hash{}, fmt.Errorf("chunking: %w", err)
		}
		tail = (*small)[:n]
	}
	for {
		var buf []byte
		if eof && small != nil && bufs[cur] == nil {
			buf = *small // the whole input, read into it before the loop
		} else {
			if bufs[cur] == nil {
				bufs[cur] = hasherBuf(hasherWindows * max)
			}
			buf = *bufs[cur]
		}
		end := copy(buf, tail) // tail may be in buf itself: copy moves overlapping bytes
		if !eof {
			n, err := io.ReadFull(r, buf[end:])
			end += n
			switch {
			case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
				eof = true
			case err != nil:
				return nil, Hash{}, fmt.Errorf("chunking: %w", err)
			}
		}
		// Cut every block the buffer holds whole (all of it at the end
		// of the input).
		first, start := len(blocks), 0
		for start < end && (eof || end-start >= max) {
			n := hs.c.cut(buf[start:end])
			blocks = append(blocks, Block{Offset: off, Size: uint32(n)})
			off += int64(n)
			start += n
		}
		tail = buf[start:end]
		// The other buffer's hashing must be done before it is filled;
		// this one's starts now.
		hashing.Wait()
		for _, j := range pending {
			copy(blocks[j.first:], j.blocks)
		}
		pending = pending[:0]
		job := hashJob{first: first, data: buf[:start], blocks: append([]Block(nil), blocks[first:]...)}
		if !hs.Parallel || eof || start < parallelHashBytes {
			job.hash()
			copy(blocks[first:], job.blocks)
		} else {
			pending = append(pending, job)
			hashing.Go(job.hash)
		}
		if eof && len(tail) == 0 {
			// The last buffer's blocks were hashed here, after the
			// other's were done.
			break
		}
		if len(pending) > 0 {
			// This buffer is being hashed: the other one takes the rest.
			cur = 1 - cur
		}
	}
	return blocks, FileHashOf(blocks), nil
}

// hashJob is a run of blocks cut in one buffer, to be hashed: blocks are
// copies of the entries from blocks[first:], lying one after another in
// data.
type hashJob struct {
	first  int
	data   []byte
	blocks []Block
}

func (j hashJob) hash() {
	data := j.data
	for i := range j.blocks {
		j.blocks[i].Hash = HashBytes(data[:j.blocks[i].Size])
		data = data[j.blocks[i].Size:]
	}
}

// smallHashed is the size of HashFile's first, small buffer.
const smallHashed = 64 << 10

// parallelHashBytes is how much a buffer's blocks must hold before they
// are hashed on another goroutine.
const parallelHashBytes = 1 << 20

// HashFile chunks and hashes r with DefaultChunking.
func HashFile(r io.Reader) ([]Block, Hash, error) {
	hs, err := NewHasher(DefaultChunking)
	if err != nil {
		return nil, Hash{}, err
	}
	return hs.HashFile(r)
}
