package foldersync

import (
	"encoding/binary"
	"iter"
	"slices"
	"strings"

	"github.com/baton-sync/baton/syncfs"
)

// chunkMax is the most entries a pubTree chunk holds; a chunk that grows
// past it is split in halves.
const chunkMax = 128

// pubTree is a persistent sorted map of a published index's entries: a
// list of chunks in name order, each holding up to chunkMax entries and
// the largest sequence that changed one of them. It is never modified:
// with returns a new tree that shares the chunks no change falls in, so
// an index with k changed entries costs O(k·chunkMax + n/chunkMax) to
// make from the previous one, and a delta since a sequence visits only
// the chunks changed after it. The zero value is the empty tree.
//
// A chunk holds its entries encoded (see pubChunk): a file of one block
// in about 66 bytes instead of a 144-byte FileInfo and its changed, a
// tombstone in about 21. A tree of more than its store's limit of
// entries (spillAbove) keeps the entries of the chunks it makes in the
// store (chunkStore), and only their bounds in memory.
type pubTree struct {
	chunks []*pubChunk
	n      int
	store  *chunkStore // nil: every chunk in memory
}

// pubChunk is a run of entries, encoded one after the other in data, in
// name order:
//
//	uvarint shared, uvarint len(suffix), suffix: the name, as the bytes it
//	    shares with the previous entry's name (none at a restart) and the
//	    rest
//	uvarint len(body), body:
//	    uvarint changed's distance below the chunk's, byte flags,
//	    uvarint type, uvarint size, varint modtime, uvarint mode,
//	    uvarint counters, each uvarint device (in devs) and uvarint value,
//	    [symlink] uvarint len(target), target
//	    [hash] the file hash; [derived] none: it is FileHashOf(blocks)
//	    [shared] uvarint index of the blocks in blocks, else uvarint
//	        count and each block: varint offset past the previous block's
//	        end, uvarint size, hash
//
// A file of more than inlineBlocks blocks keeps its block list as the
// slice it was published with (the Local's, shared), not a copy.
type pubChunk struct {
	data     []byte      // nil once in store
	store    *chunkStore // where its data is, under id, if it is not in data
	id       uint64
	restarts []uint32         // where every restartEvery-th entry starts, its name whole
	devs     []string         // the devices of the entries' versions
	blocks   [][]syncfs.Block // the block lists held as they were
	last     string           // the last entry's name
	n        int              // entries, never 0
	changed  uint64           // the largest changed of the entries
}

// pubEntry is one entry of a published index.
type pubEntry struct {
	fi      syncfs.FileInfo
	changed uint64 // the sequence that last changed it
}

// The flags of an encoded entry.
const (
	flagDeleted = 1 << iota
	flagSymlink
	flagHash
	flagDerived
	flagShared
)

// inlineBlocks is the most blocks an entry holds encoded.
const inlineBlocks = 2

// restartEvery is how often a chunk's entry holds its name whole, for get
// to search them.
const restartEvery = 16

// bytes returns c's data, from its store if it is there.
func (c *pubChunk) bytes() []byte {
	if c.store == nil {
		return c.data
	}
	return c.store.get(c.id)
}

// reader returns a reader of c's entries.
func (c *pubChunk) reader() chunkReader { return chunkReader{c: c, data: c.bytes()} }

// len returns how many entries t holds.
func (t pubTree) len() int { return t.n }

// chunkFor returns the index of the chunk where name is or would go.
func (t pubTree) chunkFor(name string) int {
	i, _ := slices.BinarySearchFunc(t.chunks, name, func(c *pubChunk, n string) int {
		return strings.Compare(c.last, n)
	})
	return min(i, len(t.chunks)-1)
}

// get returns the entry named name.
func (t pubTree) get(name string) (pubEntry, bool) {
	if len(t.chunks) == 0 {
		return pubEntry{}, false
	}
	c := t.chunks[t.chunkFor(name)]
	if c.store == nil {
		return c.get(c.data, name)
	}
	var e pubEntry
	ok := false
	c.store.view(c.id, func(data []byte) { e, ok = c.get(data, name) })
	return e, ok
}

// get returns the entry named name of c, whose data is data. The entry
// shares nothing with data.
func (c *pubChunk) get(data []byte, name string) (pubEntry, bool) {
	// The last restart at or before name, then the entries from there.
	k, _ := slices.BinarySearchFunc(c.restarts, name, func(off uint32, name string) int {
		r := chunkReader{c: c, data: data, off: int(off)}
		r.next()
		if cmpName(r.name, name) <= 0 {
			return -1
		}
		return 1
	})
	r := chunkReader{c: c, data: data}
	if k > 0 {
		r.off = int(c.restarts[k-1])
	}
	for r.next() {
		switch cmpName(r.name, name) {
		case 0:
			return r.entry(name), true
		case 1:
			return pubEntry{}, false
		}
	}
	return pubEntry{}, false
}

// with returns t with changes (sorted by name, unique) put in, replacing
// the entries of the same names.
func (t pubTree) with(changes []pubEntry) pubTree {
	if len(changes) == 0 {
		return t
	}
	if len(t.chunks) == 0 {
		out := pubTree{store: t.store}
		out.chunks = appendSplit(nil, merge(nil, changes))
		out.n = len(changes)
		out.spill(out.chunks)
		return out
	}
	out := pubTree{chunks: make([]*pubChunk, 0, len(t.chunks)+len(changes)/chunkMax+1), n: t.n, store: t.store}
	var made []*pubChunk
	ci := 0
	for len(changes) > 0 {
		k := t.chunkFor(changes[0].fi.Name)
		out.chunks = append(out.chunks, t.chunks[ci:k]...)
		c := t.chunks[k]
		// The changes that fall in chunk k: up to its last name, or all of
		// them for the last chunk.
		j := len(changes)
		if k < len(t.chunks)-1 {
			j, _ = slices.BinarySearchFunc(changes, c.last, cmpEntry)
			if j < len(changes) && changes[j].fi.Name == c.last {
				j++
			}
		}
		old := c.items()
		merged := merge(old, changes[:j])
		out.n += len(merged) - len(old)
		before := len(out.chunks)
		out.chunks = appendSplit(out.chunks, merged)
		made = append(made, out.chunks[before:]...)
		changes = changes[j:]
		ci = k + 1
	}
	out.chunks = append(out.chunks, t.chunks[ci:]...)
	out.spill(made)
	return out
}

// spill puts made, chunks of t no other tree holds yet, in t's store if t
// holds more entries than it keeps in memory.
func (t pubTree) spill(made []*pubChunk) {
	if t.store != nil && t.n > t.store.above && len(made) > 0 {
		t.store.put(made)
	}
}

func cmpEntry(e pubEntry, name string) int { return strings.Compare(e.fi.Name, name) }

// chunkItem is an entry to encode in a chunk: a new one, or one of
// another chunk, copied from its encoding (not decoded: a change in a
// chunk costs no decoding of the entries it leaves as they were).
type chunkItem struct {
	name string
	new  *pubEntry
	src  *pubChunk // the chunk body is in
	body []byte
}

// changed returns the sequence that last changed it.
func (it chunkItem) changed() uint64 {
	if it.new != nil {
		return it.new.changed
	}
	d, _ := binary.Uvarint(it.body)
	return it.src.changed - d
}

// items returns c's entries as they are encoded.
func (c *pubChunk) items() []chunkItem {
	out := make([]chunkItem, 0, c.n)
	r := c.reader()
	for r.next() {
		out = append(out, chunkItem{name: string(r.name), src: c, body: r.body})
	}
	return out
}

// merge returns old with changes put in, replacing the entries of the
// same names.
func merge(old []chunkItem, changes []pubEntry) []chunkItem {
	out := make([]chunkItem, 0, len(old)+len(changes))
	i, j := 0, 0
	for i < len(old) || j < len(changes) {
		switch {
		case j == len(changes) || i < len(old) && old[i].name < changes[j].fi.Name:
			out = append(out, old[i])
			i++
		default:
			if i < len(old) && old[i].name == changes[j].fi.Name {
				i++
			}
			out = append(out, chunkItem{name: changes[j].fi.Name, new: &changes[j]})
			j++
		}
	}
	return out
}

// appendSplit appends items to chunks as chunks of at most chunkMax
// entries (half full when split).
func appendSplit(chunks []*pubChunk, items []chunkItem) []*pubChunk {
	size := len(items)
	if size > chunkMax {
		size = chunkMax / 2
	}
	var buf, body []byte
	for len(items) > 0 {
		k := min(size, len(items))
		if len(items)-k < chunkMax/4 && len(items) <= chunkMax {
			k = len(items) // no tiny last chunk
		}
		var c *pubChunk
		c, buf, body = encodeChunk(items[:k], buf[:0], body)
		chunks = append(chunks, c)
		items = items[k:]
	}
	return chunks
}

// encodeChunk returns a chunk of items (sorted, not empty), using buf and
// body as scratch space, which it returns.
func encodeChunk(items []chunkItem, buf, body []byte) (*pubChunk, []byte, []byte) {
	c := &pubChunk{n: len(items), last: items[len(items)-1].name}
	for _, it := range items {
		c.changed = max(c.changed, it.changed())
	}
	prev := ""
	for i, it := range items {
		shared := commonPrefix(prev, it.name)
		if i%restartEvery == 0 {
			c.restarts = append(c.restarts, uint32(len(buf)))
			shared = 0
		}
		buf = binary.AppendUvarint(buf, uint64(shared))
		buf = binary.AppendUvarint(buf, uint64(len(it.name)-shared))
		buf = append(buf, it.name[shared:]...)
		prev = it.name
		body = binary.AppendUvarint(body[:0], c.changed-it.changed())
		if it.new != nil {
			body = c.appendBody(body, it.new.fi)
		} else {
			body = c.copyBody(body, it.src, it.body)
		}
		buf = binary.AppendUvarint(buf, uint64(len(body)))
		buf = append(buf, body...)
	}
	c.data = slices.Clone(buf)
	c.devs = slices.Clip(c.devs)
	c.blocks = slices.Clip(c.blocks)
	return c, buf, body
}

// dev returns the index of device in c.devs, adding it if new.
func (c *pubChunk) dev(device string) int {
	d := slices.Index(c.devs, device)
	if d < 0 {
		d = len(c.devs)
		c.devs = append(c.devs, device)
	}
	return d
}

// appendBody appends fi's body, past its changed, to body.
func (c *pubChunk) appendBody(body []byte, fi syncfs.FileInfo) []byte {
	flags := byte(0)
	if fi.Deleted {
		flags |= flagDeleted
	}
	if fi.SymlinkTarget != "" {
		flags |= flagSymlink
	}
	shareBlocks := len(fi.Blocks) > inlineBlocks
	if shareBlocks {
		flags |= flagShared
	}
	switch {
	case fi.FileHash == syncfs.Hash{}:
	case !shareBlocks && fi.FileHash == syncfs.FileHashOf(fi.Blocks):
		flags |= flagDerived
	default:
		flags |= flagHash
	}
	body = append(body, flags)
	body = binary.AppendUvarint(body, uint64(fi.Type))
	body = binary.AppendUvarint(body, uint64(fi.Size))
	body = binary.AppendVarint(body, fi.ModTime)
	body = binary.AppendUvarint(body, uint64(fi.Mode))
	body = binary.AppendUvarint(body, uint64(len(fi.Version.Counters)))
	for _, ct := range fi.Version.Counters {
		body = binary.AppendUvarint(body, uint64(c.dev(ct.Device)))
		body = binary.AppendUvarint(body, ct.Value)
	}
	if flags&flagSymlink != 0 {
		body = binary.AppendUvarint(body, uint64(len(fi.SymlinkTarget)))
		body = append(body, fi.SymlinkTarget...)
	}
	if flags&flagHash != 0 {
		body = append(body, fi.FileHash[:]...)
	}
	if shareBlocks {
		body = binary.AppendUvarint(body, uint64(len(c.blocks)))
		c.blocks = append(c.blocks, fi.Blocks)
		return body
	}
	return syncfs.AppendBlocks(body, fi.Blocks)
}

// copyBody appends the body of an entry of src, past its changed, to
// body: as it is but for its references to src's devices and block lists.
func (c *pubChunk) copyBody(body []byte, src *pubChunk, from []byte) []byte {
	b := from
	skip := func() []byte { // one varint
		_, n := binary.Uvarint(b)
		if n <= 0 {
			panic("foldersync: a published index entry is corrupt")
		}
		v := b[:n]
		b = b[n:]
		return v
	}
	uv := func() uint64 {
		v, _ := binary.Uvarint(skip())
		return v
	}
	skip() // changed
	start := b
	flags := b[0]
	b = b[1:]
	for range 4 { // type, size, modtime, mode
		skip()
	}
	k := uv()
	body = append(body, start[:len(start)-len(b)]...)
	for range k {
		d := uv()
		body = binary.AppendUvarint(body, uint64(c.dev(src.devs[d])))
		body = append(body, skip()...)
	}
	if flags&flagShared == 0 {
		return append(body, b...) // the symlink, hash and blocks as they are
	}
	start = b
	if flags&flagSymlink != 0 {
		b = b[uv():]
	}
	if flags&flagHash != 0 {
		b = b[len(syncfs.Hash{}):]
	}
	body = append(body, start[:len(start)-len(b)]...)
	i := uv()
	body = binary.AppendUvarint(body, uint64(len(c.blocks)))
	c.blocks = append(c.blocks, src.blocks[i])
	return body
}

// cmpName compares name b with s, as strings.Compare.
func cmpName(b []byte, s string) int {
	for i := range min(len(b), len(s)) {
		if b[i] != s[i] {
			if b[i] < s[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(b) < len(s):
		return -1
	case len(b) > len(s):
		return 1
	}
	return 0
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// entries returns c's entries, decoded.
func (c *pubChunk) entries() []pubEntry {
	out := make([]pubEntry, 0, c.n)
	r := c.reader()
	for r.next() {
		out = append(out, r.entry(string(r.name)))
	}
	return out
}

// chunkReader reads a chunk's entries in order: next reads a name, entry
// decodes the rest.
type chunkReader struct {
	c    *pubChunk
	data []byte // c's
	off  int    // in data, past the current name
	body []byte // the current entry's body
	name []byte // the current entry's name
}

func (r *chunkReader) next() bool {
	if r.off >= len(r.data) {
		return false
	}
	shared := r.uvarint()
	n := r.uvarint()
	r.name = append(r.name[:shared], r.data[r.off:r.off+int(n)]...)
	r.off += int(n)
	size := int(r.uvarint())
	r.body = r.data[r.off : r.off+size]
	r.off += size
	return true
}

func (r *chunkReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.data[r.off:])
	if n <= 0 {
		panic("foldersync: a published index chunk is corrupt")
	}
	r.off += n
	return v
}

// entry decodes the current entry, named name (the current name).
func (r *chunkReader) entry(name string) pubEntry {
	b := r.body
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			panic("foldersync: a published index entry is corrupt")
		}
		b = b[n:]
		return v
	}
	c := r.c
	e := pubEntry{fi: syncfs.FileInfo{Name: name}}
	e.changed = c.changed - uv()
	flags := b[0]
	b = b[1:]
	fi := &e.fi
	fi.Deleted = flags&flagDeleted != 0
	fi.Type = syncfs.FileType(uv())
	fi.Size = int64(uv())
	mt, n := binary.Varint(b)
	if n <= 0 {
		panic("foldersync: a published index entry is corrupt")
	}
	b = b[n:]
	fi.ModTime = mt
	fi.Mode = uint32(uv())
	if k := uv(); k > 0 {
		fi.Version.Counters = make([]syncfs.Counter, k)
		for i := range fi.Version.Counters {
			fi.Version.Counters[i] = syncfs.Counter{Device: c.devs[uv()], Value: uv()}
		}
	}
	if flags&flagSymlink != 0 {
		k := uv()
		fi.SymlinkTarget = string(b[:k])
		b = b[k:]
	}
	if flags&flagHash != 0 {
		fi.FileHash = syncfs.Hash(b[:len(fi.FileHash)])
		b = b[len(fi.FileHash):]
	}
	if flags&flagShared != 0 {
		fi.Blocks = c.blocks[uv()]
	} else if k := uv(); k > 0 {
		fi.Blocks = make([]syncfs.Block, k)
		end := int64(0)
		for i := range fi.Blocks {
			off, n := binary.Varint(b)
			if n <= 0 {
				panic("foldersync: a published index entry is corrupt")
			}
			b = b[n:]
			blk := &fi.Blocks[i]
			blk.Offset = end + off
			blk.Size = uint32(uv())
			blk.Hash = syncfs.Hash(b[:len(blk.Hash)])
			b = b[len(blk.Hash):]
			end = blk.Offset + int64(blk.Size)
		}
	}
	if flags&flagDerived != 0 {
		fi.FileHash = syncfs.FileHashOf(fi.Blocks)
	}
	return e
}

// all yields t's entries in name order.
func (t pubTree) all() iter.Seq[pubEntry] { return t.since(0) }

// since yields, in name order, t's entries changed after seq.
func (t pubTree) since(seq uint64) iter.Seq[pubEntry] {
	return func(yield func(pubEntry) bool) { t.eachSince(seq, yield) }
}

// eachSince calls fn, in name order, with t's entries changed after seq,
// until fn returns false. It returns false if a chunk's entries could not
// be read (its store is closed: the engine stopped).
func (t pubTree) eachSince(seq uint64, fn func(pubEntry) bool) bool {
	for _, c := range t.chunks {
		if c.changed <= seq {
			continue
		}
		r := c.reader()
		if r.data == nil {
			return false // a chunk holds at least one entry
		}
		for r.next() {
			// The distance below the chunk's changed comes first in the
			// body: an entry not changed after seq is skipped undecoded.
			d, _ := binary.Uvarint(r.body)
			if c.changed-d <= seq {
				continue
			}
			if !fn(r.entry(string(r.name))) {
				return true
			}
		}
	}
	return true
}
