package collections

import (
	"fmt"
	"slices"
	"sort"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/internal/canon"
)

// MaxSummarySize caps an encoded Summary.
const MaxSummarySize = 1 << 20

// SeqRange is the sequence numbers First through Last, inclusive.
type SeqRange struct {
	_     struct{} `cbor:",toarray"`
	First uint64
	Last  uint64
}

// Ranges is a set of sequence numbers as sorted, disjoint, non-adjacent
// ranges. The zero value is the empty set.
type Ranges []SeqRange

// Contains reports whether seq is in r.
func (r Ranges) Contains(seq uint64) bool {
	i := sort.Search(len(r), func(i int) bool { return r[i].Last >= seq })
	return i < len(r) && r[i].First <= seq
}

// Max is the largest sequence number in r, or 0.
func (r Ranges) Max() uint64 {
	if len(r) == 0 {
		return 0
	}
	return r[len(r)-1].Last
}

// Len is how many sequence numbers r holds.
func (r Ranges) Len() uint64 {
	var n uint64
	for _, x := range r {
		n += x.Last - x.First + 1
	}
	return n
}

// Add returns r with seq added, merging neighbours.
func (r Ranges) Add(seq uint64) Ranges {
	i := sort.Search(len(r), func(i int) bool { return r[i].Last >= seq })
	if i < len(r) && r[i].First <= seq {
		return r // present
	}
	joinPrev := i > 0 && r[i-1].Last+1 == seq
	joinNext := i < len(r) && seq+1 == r[i].First
	switch {
	case joinPrev && joinNext:
		r[i-1].Last = r[i].Last
		return slices.Delete(r, i, i+1)
	case joinPrev:
		r[i-1].Last = seq
	case joinNext:
		r[i].First = seq
	default:
		r = slices.Insert(r, i, SeqRange{First: seq, Last: seq})
	}
	return r
}

// Union returns the sequence numbers in r or o.
func (r Ranges) Union(o Ranges) Ranges {
	all := append(slices.Clone(r), o...)
	slices.SortFunc(all, func(a, b SeqRange) int {
		if a.First != b.First {
			if a.First < b.First {
				return -1
			}
			return 1
		}
		return 0
	})
	var out Ranges
	for _, x := range all {
		if n := len(out); n > 0 && out[n-1].Last+1 >= x.First {
			out[n-1].Last = max(out[n-1].Last, x.Last)
			continue
		}
		out = append(out, SeqRange{First: x.First, Last: x.Last})
	}
	return out
}

func (r Ranges) validate() error {
	for i, x := range r {
		if x.First == 0 || x.First > x.Last {
			return fmt.Errorf("%w: range %d..%d", ErrMalformed, x.First, x.Last)
		}
		if i > 0 && r[i-1].Last+1 >= x.First {
			return fmt.Errorf("%w: ranges not sorted and disjoint at %d..%d", ErrMalformed, x.First, x.Last)
		}
	}
	return nil
}

// Summary is what a replica holds, compactly: per collection and author,
// the sequence numbers it has seen. Replicas exchange summaries and send
// each other State.Missing.
type Summary map[Kind]map[string]Ranges

// Has reports whether s records seq of author in collection k.
func (s Summary) Has(k Kind, author lpeer.ID, seq uint64) bool {
	return s[k][author.String()].Contains(seq)
}

// Marshal is s's canonical encoding.
func (s Summary) Marshal() ([]byte, error) {
	if s == nil {
		s = Summary{}
	}
	b, err := canon.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encoding summary: %w", err)
	}
	if len(b) > MaxSummarySize {
		return nil, fmt.Errorf("%w: summary is %d bytes, limit %d", ErrTooLarge, len(b), MaxSummarySize)
	}
	return b, nil
}

// UnmarshalSummary decodes and checks a summary.
func UnmarshalSummary(data []byte) (Summary, error) {
	var s Summary
	if err := decodeCanonical(data, &s, MaxSummarySize); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	if s == nil {
		return nil, fmt.Errorf("%w: summary is null", ErrMalformed)
	}
	for k, authors := range s {
		if !k.Valid() {
			return nil, fmt.Errorf("%w: summary names unknown collection %d", ErrMalformed, k)
		}
		if len(authors) == 0 {
			return nil, fmt.Errorf("%w: summary of %s names no author", ErrMalformed, k)
		}
		for a, r := range authors {
			if _, err := parseID(a); err != nil {
				return nil, fmt.Errorf("summary author: %w", err)
			}
			if len(r) == 0 {
				return nil, fmt.Errorf("%w: summary author %s has no ranges", ErrMalformed, a)
			}
			if err := r.validate(); err != nil {
				return nil, fmt.Errorf("summary %s %s: %w", k, a, err)
			}
		}
	}
	return s, nil
}
