package foldersync

import (
	"iter"
	"slices"
	"strings"
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
type pubTree struct {
	chunks []*pubChunk
	n      int
}

type pubChunk struct {
	entries []pubEntry // sorted by name, unique, never empty
	changed uint64     // the largest changed of entries
}

// len returns how many entries t holds.
func (t pubTree) len() int { return t.n }

// chunkFor returns the index of the chunk where name is or would go.
func (t pubTree) chunkFor(name string) int {
	i, _ := slices.BinarySearchFunc(t.chunks, name, func(c *pubChunk, n string) int {
		return strings.Compare(c.entries[len(c.entries)-1].fi.Name, n)
	})
	return min(i, len(t.chunks)-1)
}

// get returns the entry named name.
func (t pubTree) get(name string) (pubEntry, bool) {
	if len(t.chunks) == 0 {
		return pubEntry{}, false
	}
	c := t.chunks[t.chunkFor(name)]
	i, ok := slices.BinarySearchFunc(c.entries, name, cmpEntry)
	if !ok {
		return pubEntry{}, false
	}
	return c.entries[i], true
}

func cmpEntry(e pubEntry, name string) int { return strings.Compare(e.fi.Name, name) }

// with returns t with changes (sorted by name, unique) put in, replacing
// the entries of the same names.
func (t pubTree) with(changes []pubEntry) pubTree {
	if len(changes) == 0 {
		return t
	}
	if len(t.chunks) == 0 {
		out := pubTree{}
		out.chunks = appendSplit(nil, changes)
		out.n = len(changes)
		return out
	}
	out := pubTree{chunks: make([]*pubChunk, 0, len(t.chunks)+len(changes)/chunkMax+1), n: t.n}
	ci := 0
	for len(changes) > 0 {
		k := t.chunkFor(changes[0].fi.Name)
		out.chunks = append(out.chunks, t.chunks[ci:k]...)
		c := t.chunks[k]
		// The changes that fall in chunk k: up to its last name, or all of
		// them for the last chunk.
		j := len(changes)
		if k < len(t.chunks)-1 {
			last := c.entries[len(c.entries)-1].fi.Name
			j, _ = slices.BinarySearchFunc(changes, last, cmpEntry)
			if j < len(changes) && changes[j].fi.Name == last {
				j++
			}
		}
		merged, added := merge(c.entries, changes[:j])
		out.n += added
		out.chunks = appendSplit(out.chunks, merged)
		changes = changes[j:]
		ci = k + 1
	}
	out.chunks = append(out.chunks, t.chunks[ci:]...)
	return out
}

// merge returns a new slice of old with changes put in, and how many of
// changes were new names.
func merge(old, changes []pubEntry) ([]pubEntry, int) {
	out := make([]pubEntry, 0, len(old)+len(changes))
	added := 0
	i, j := 0, 0
	for i < len(old) || j < len(changes) {
		switch {
		case j == len(changes) || i < len(old) && old[i].fi.Name < changes[j].fi.Name:
			out = append(out, old[i])
			i++
		case i == len(old) || changes[j].fi.Name < old[i].fi.Name:
			out = append(out, changes[j])
			added++
			j++
		default:
			out = append(out, changes[j])
			i++
			j++
		}
	}
	return out, added
}

// appendSplit appends entries to chunks as chunks of at most chunkMax
// entries (half full when split).
func appendSplit(chunks []*pubChunk, entries []pubEntry) []*pubChunk {
	size := len(entries)
	if size > chunkMax {
		size = chunkMax / 2
	}
	for len(entries) > 0 {
		k := min(size, len(entries))
		if len(entries)-k < chunkMax/4 && len(entries) <= chunkMax {
			k = len(entries) // no tiny last chunk
		}
		c := &pubChunk{entries: entries[:k:k]}
		for _, e := range c.entries {
			c.changed = max(c.changed, e.changed)
		}
		chunks = append(chunks, c)
		entries = entries[k:]
	}
	return chunks
}

// all yields t's entries in name order.
func (t pubTree) all() iter.Seq[pubEntry] { return t.since(0) }

// since yields, in name order, t's entries changed after seq.
func (t pubTree) since(seq uint64) iter.Seq[pubEntry] {
	return func(yield func(pubEntry) bool) {
		for _, c := range t.chunks {
			if c.changed <= seq {
				continue
			}
			for _, e := range c.entries {
				if e.changed > seq && !yield(e) {
					return
				}
			}
		}
	}
}
