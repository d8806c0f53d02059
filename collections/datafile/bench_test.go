package datafile

import (
	"bytes"
	"testing"

	"github.com/baton-sync/baton/collections"
)

// BenchmarkAppend measures one durable append of a 256-byte record: open,
// one write, fsync, close. The figure is dominated by the file system's fsync.
func BenchmarkAppend(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	rec := bytes.Repeat([]byte{0x5a}, 256)
	if err := s.Append(collections.Catalog, rec); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(rec)))
	b.ResetTimer()
	for range b.N {
		if err := s.Append(collections.Catalog, rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode measures decoding a file of 10,000 256-byte records.
func BenchmarkDecode(b *testing.B) {
	recs := make([][]byte, 10000)
	for i := range recs {
		recs[i] = bytes.Repeat([]byte{byte(i)}, 256)
	}
	file, _ := encodeFile(collections.Domain, recs)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		l, err := Decode("bench.dat", collections.Domain, file)
		if err != nil || len(l.Entries) != len(recs) {
			b.Fatalf("Decode: %d entries, %v", len(l.Entries), err)
		}
	}
}
