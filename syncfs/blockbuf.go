package syncfs

import "sync"

// Block buffers. Moving a block (reading it from a file, receiving it,
// sending it) needs a buffer of its size; allocating one per block costs
// as much zeroing and garbage collection as there are bytes moved. The
// pools below reuse them, in size classes of 2^k and 1.5×2^k bytes from
// 64 KiB (at most a third wasted), each with a little slack so a block and
// a frame header fit the block's class. Smaller buffers are allocated.
const (
	minPooled = 64 << 10
	maxPooled = 96 << 20 // above Chunking's 64 MiB limit
	bufSlack  = 64       // room for a frame header beside a block
)

// bufClasses are the pooled sizes, ascending (without the slack).
var bufClasses = func() []int {
	var out []int
	for s := minPooled; s <= maxPooled; s *= 2 {
		out = append(out, s, s+s/2)
	}
	return out
}()

var bufPools = make([]sync.Pool, len(bufClasses))

// bufClass returns the index of the smallest class that holds n bytes, or
// -1 if n is not pooled.
func bufClass(n int) int {
	if n < minPooled {
		return -1
	}
	for i, s := range bufClasses {
		if n <= s+bufSlack {
			return i
		}
	}
	return -1
}

// BlockBuffer returns a buffer of length n, not zeroed, to be given back
// with FreeBlockBuffer once nothing uses it any more (or dropped: the
// garbage collector takes it then).
func BlockBuffer(n int) []byte {
	c := bufClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if p, ok := bufPools[c].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, bufClasses[c]+bufSlack)
}

// FreeBlockBuffer gives b, from BlockBuffer, back for reuse. Neither the
// caller nor anyone it lent b to may use it afterwards.
func FreeBlockBuffer(b []byte) {
	c := bufClass(cap(b))
	if c < 0 || cap(b) != bufClasses[c]+bufSlack {
		return
	}
	b = b[:cap(b)]
	bufPools[c].Put(&b)
}
