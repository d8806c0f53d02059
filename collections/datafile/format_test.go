package datafile

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/baton-sync/baton/collections"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// testRecords returns records whose lengths cross the uvarint boundaries,
// including an empty one.
func testRecords() [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var recs [][]byte
	for _, n := range []int{0, 1, 5, 127, 128, 200, 3} {
		r := make([]byte, n)
		for i := range r {
			r[i] = byte(rng.Uint32())
		}
		recs = append(recs, r)
	}
	return recs
}

// encodeFile returns a whole data file and the offset of each frame.
func encodeFile(kind collections.Kind, recs [][]byte) ([]byte, []int64) {
	file := EncodeHeader(kind)
	var offs []int64
	for _, r := range recs {
		offs = append(offs, int64(len(file)))
		file = AppendFrame(file, r)
	}
	return file, offs
}

func entriesOf(recs [][]byte, offs []int64) []collections.Entry {
	var es []collections.Entry
	for i, r := range recs {
		es = append(es, collections.Entry{Offset: offs[i], Data: r})
	}
	return es
}

func mustDecode(t *testing.T, kind collections.Kind, data []byte) collections.Loaded {
	t.Helper()
	l, err := Decode("test.dat", kind, data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return l
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var recs [][]byte
	for range 2000 {
		n := rng.IntN(300)
		if rng.IntN(50) == 0 {
			n = rng.IntN(40000)
		}
		r := make([]byte, n)
		for i := range r {
			r[i] = byte(rng.Uint32())
		}
		recs = append(recs, r)
	}
	recs = append(recs, make([]byte, MaxRecordSize)) // the cap itself is allowed
	for _, kind := range collections.Kinds {
		file, offs := encodeFile(kind, recs)
		got := mustDecode(t, kind, file)
		if got.File != "test.dat" || got.TornAt != -1 || len(got.Entries) != len(recs) {
			t.Fatalf("Decode(%v file) = %s, %d entries, TornAt %d; want test.dat, %d entries, -1", kind, got.File, len(got.Entries), got.TornAt, len(recs))
		}
		for i, e := range got.Entries {
			// bytes.Equal, not cmp.Diff: a diff of a 4 MiB record takes seconds.
			if e.Offset != offs[i] || !bytes.Equal(e.Data, recs[i]) {
				t.Fatalf("Decode(%v file) entry %d: offset %d, %d bytes; want offset %d, %d bytes, equal", kind, i, e.Offset, len(e.Data), offs[i], len(recs[i]))
			}
		}
	}
}

func TestFrameSize(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, MaxRecordSize} {
		if got, want := FrameSize(n), len(AppendFrame(nil, make([]byte, n))); got != want {
			t.Errorf("FrameSize(%d) = %d; want %d", n, got, want)
		}
	}
}

func TestDecodeEmpty(t *testing.T) {
	for _, data := range [][]byte{nil, {}} {
		got := mustDecode(t, collections.Domain, data)
		want := collections.Loaded{File: "test.dat", TornAt: -1}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Decode(%v) mismatch (-want +got):\n%s", data, diff)
		}
	}
	// A header alone is a valid file with no records.
	got := mustDecode(t, collections.Report, EncodeHeader(collections.Report))
	if len(got.Entries) != 0 || got.TornAt != -1 {
		t.Errorf("Decode(header only) = %+v; want no entries, TornAt -1", got)
	}
}

func TestDecodeInvalidKind(t *testing.T) {
	if _, err := Decode("x", 0, EncodeHeader(collections.Domain)); err == nil {
		t.Errorf("Decode(kind 0) = nil error; want an error")
	}
}

// wantDataFileError checks err is a *collections.DataFileError at offset
// wrapping ErrCorruptDataFile and target.
func wantDataFileError(t *testing.T, err error, offset int64, target error) {
	t.Helper()
	var dfe *collections.DataFileError
	if !errors.As(err, &dfe) {
		t.Fatalf("error = %v (%T); want *collections.DataFileError", err, err)
	}
	if dfe.Offset != offset || dfe.File != "test.dat" {
		t.Errorf("error at %s offset %d; want test.dat offset %d (%v)", dfe.File, dfe.Offset, offset, err)
	}
	if !errors.Is(err, collections.ErrCorruptDataFile) || !errors.Is(err, target) {
		t.Errorf("error = %v; want it to wrap ErrCorruptDataFile and %v", err, target)
	}
}

func TestDecodeHeaderErrors(t *testing.T) {
	good := EncodeHeader(collections.Catalog)
	with := func(i int, b byte) []byte {
		h := bytes.Clone(good)
		h[i] = b
		return h
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"one byte", []byte("B"), ErrBadHeader},
		{"short", good[:HeaderSize-1], ErrBadHeader},
		{"magic", with(0, 'b'), ErrBadHeader},
		{"not a data file", []byte("# some other file, long enough\n"), ErrBadHeader},
		{"version 0", with(7, 0), ErrBadHeader},
		{"version 2", with(7, 2), ErrBadHeader},
		{"kind domain", with(8, byte(collections.Domain)), ErrWrongKind},
		{"kind 0", with(8, 0), ErrWrongKind},
		{"kind 9", with(8, 9), ErrWrongKind},
		{"reserved first", with(9, 1), ErrBadHeader},
		{"reserved last", with(15, 0x80), ErrBadHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Decode("test.dat", collections.Catalog, tt.data)
			wantDataFileError(t, err, 0, tt.want)
			if len(l.Entries) != 0 {
				t.Errorf("entries = %d with an error; want none", len(l.Entries))
			}
		})
	}
}

// frame builds a frame with an arbitrary length encoding and a correct checksum.
func frame(lenBytes, payload []byte) []byte {
	f := append(bytes.Clone(lenBytes), payload...)
	return binary.LittleEndian.AppendUint32(f, crc32c(f))
}

func TestDecodeFrameErrors(t *testing.T) {
	kind := collections.Domain
	hdr := EncodeHeader(kind)
	first := AppendFrame(nil, []byte("first"))
	second := AppendFrame(nil, []byte("second"))
	badSum := AppendFrame(nil, []byte("first"))
	badSum[len(badSum)-1] ^= 1
	badPayload := AppendFrame(nil, []byte("first"))
	badPayload[2] ^= 0x40

	tests := []struct {
		name string
		tail []byte // after the header and the first frame
		want error
	}{
		{"checksum byte, then more", cat(badSum, second), ErrChecksum},
		{"payload byte, then more", cat(badPayload, second), ErrChecksum},
		{"checksum, then trailing garbage", cat(badSum, []byte{0, 0, 1}), ErrChecksum},
		{"length over cap", binary.AppendUvarint(nil, MaxRecordSize+1), ErrBadLength},
		{"length over cap, whole frame", frame(binary.AppendUvarint(nil, MaxRecordSize+1), nil), ErrBadLength},
		{"five-byte length", []byte{0x80, 0x80, 0x80, 0x80, 0x01}, ErrBadLength},
		{"max uint64 length", binary.AppendUvarint(nil, ^uint64(0)), ErrBadLength},
		{"non-minimal length", frame([]byte{0x85, 0x00}, []byte("hello")), ErrBadLength},
		{"non-minimal zero", frame([]byte{0x80, 0x00}, nil), ErrBadLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := cat(hdr, first, tt.tail)
			l, err := Decode("test.dat", kind, data)
			wantDataFileError(t, err, int64(HeaderSize+len(first)), tt.want)
			if len(l.Entries) != 0 {
				t.Errorf("entries = %d with an error; want none", len(l.Entries))
			}
		})
	}
}

func TestDecodeTornTail(t *testing.T) {
	kind := collections.Report
	hdr := EncodeHeader(kind)
	first := AppendFrame(nil, []byte("first"))
	long := AppendFrame(nil, bytes.Repeat([]byte("x"), 300)) // two-byte length
	zeroed := bytes.Clone(long)
	clear(zeroed[100:])
	badSum := bytes.Clone(long)
	badSum[len(badSum)-1] ^= 0xff

	tests := []struct {
		name string
		tail []byte
	}{
		{"inside the length", long[:1]},
		{"after the length", long[:2]},
		{"inside the payload", long[:150]},
		{"inside the checksum", long[:len(long)-1]},
		{"payload zero-filled", zeroed},
		{"zero-filled, with zeros after", cat(zeroed, make([]byte, 7))},
		{"all zero", make([]byte, len(long))},
		{"one zero byte", []byte{0}},
		{"checksum fails, nothing after", badSum},
		{"checksum fails, zeros after", cat(badSum, make([]byte, 3))},
		{"length past the end", binary.AppendUvarint(nil, MaxRecordSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustDecode(t, kind, cat(hdr, first, tt.tail))
			torn := int64(HeaderSize + len(first))
			want := collections.Loaded{
				File:    "test.dat",
				Entries: []collections.Entry{{Offset: HeaderSize, Data: []byte("first")}},
				TornAt:  torn,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Decode mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeTruncatedEverywhere cuts a multi-record file at every byte
// offset: below the header it is an error, from the header on it is exactly
// the whole records before the cut, with TornAt at the cut frame unless the
// cut falls on a frame boundary.
func TestDecodeTruncatedEverywhere(t *testing.T) {
	kind := collections.Catalog
	recs := testRecords()
	file, offs := encodeFile(kind, recs)
	for cut := 0; cut <= len(file); cut++ {
		l, err := Decode("test.dat", kind, file[:cut])
		if cut == 0 {
			if err != nil || len(l.Entries) != 0 || l.TornAt != -1 {
				t.Fatalf("Decode(empty) = %+v, %v; want empty", l, err)
			}
			continue
		}
		if cut < HeaderSize {
			wantDataFileError(t, err, 0, ErrBadHeader)
			continue
		}
		if err != nil {
			t.Fatalf("Decode(file[:%d]) error: %v; want a prefix", cut, err)
		}
		whole := 0
		for whole < len(recs) && int(offs[whole])+FrameSize(len(recs[whole])) <= cut {
			whole++
		}
		wantTorn := int64(-1)
		if whole < len(recs) && int(offs[whole]) < cut {
			wantTorn = offs[whole]
		}
		want := collections.Loaded{File: "test.dat", Entries: entriesOf(recs[:whole], offs[:whole]), TornAt: wantTorn}
		if diff := cmp.Diff(want, l); diff != "" {
			t.Fatalf("Decode(file[:%d]) mismatch (-want +got):\n%s", cut, diff)
		}
	}
}

// TestDecodeBitFlipEverywhere flips every bit of a multi-record file in turn.
// Each flip must be an error or a torn tail over an exact prefix of the
// records: never a clean decode and never a changed record.
func TestDecodeBitFlipEverywhere(t *testing.T) {
	kind := collections.Domain
	recs := testRecords()
	file, offs := encodeFile(kind, recs)
	lastFrame := int(offs[len(offs)-1])
	var errs, torn int
	for i := range file {
		for bit := range 8 {
			data := bytes.Clone(file)
			data[i] ^= 1 << bit
			l, err := Decode("test.dat", kind, data)
			if err != nil {
				var dfe *collections.DataFileError
				if !errors.As(err, &dfe) || !errors.Is(err, collections.ErrCorruptDataFile) {
					t.Fatalf("flip byte %d bit %d: error %v is not a DataFileError", i, bit, err)
				}
				if int(dfe.Offset) > i {
					t.Errorf("flip byte %d bit %d: error at offset %d, after the flip", i, bit, dfe.Offset)
				}
				errs++
				continue
			}
			if l.TornAt < 0 {
				t.Fatalf("flip byte %d bit %d: decoded cleanly to %d entries; want an error or a torn tail", i, bit, len(l.Entries))
			}
			if int(l.TornAt) > i {
				t.Errorf("flip byte %d bit %d: torn at %d, after the flip", i, bit, l.TornAt)
			}
			n := len(l.Entries)
			if diff := cmp.Diff(entriesOf(recs[:n], offs[:n]), l.Entries); diff != "" {
				t.Fatalf("flip byte %d bit %d: entries are not a prefix (-want +got):\n%s", i, bit, diff)
			}
			// Only the last frame, or a frame's length running past the end
			// (see the package documentation), may read as torn.
			if i < lastFrame && !isLengthByte(i, offs) {
				t.Errorf("flip byte %d bit %d: torn at %d; a flip inside a non-final frame's payload or checksum must be an error", i, bit, l.TornAt)
			}
			torn++
		}
	}
	t.Logf("%d flips: %d errors, %d torn tails", len(file)*8, errs, torn)
}

func isLengthByte(i int, offs []int64) bool {
	for _, o := range offs {
		if i >= int(o) && i < int(o)+2 {
			return true
		}
	}
	return false
}

func TestAppendFrameOverCapPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("AppendFrame(%d bytes) did not panic", MaxRecordSize+1)
		}
	}()
	AppendFrame(nil, make([]byte, MaxRecordSize+1))
}

func TestEncodeHeaderInvalidKindPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("EncodeHeader(0) did not panic")
		}
	}()
	EncodeHeader(0)
}

// TestGolden pins the bytes of a small catalog file with two records.
func TestGolden(t *testing.T) {
	recs := [][]byte{[]byte("hello"), bytes.Repeat([]byte{0xab}, 130)}
	got, _ := encodeFile(collections.Catalog, recs)
	path := filepath.Join("testdata", "catalog-two-records.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding differs from %s:\ngot:\n%s\nwant:\n%s", path, hex.Dump(got), hex.Dump(want))
	}
	// The golden file decodes back to the records.
	l := mustDecode(t, collections.Catalog, want)
	if len(l.Entries) != 2 || !bytes.Equal(l.Entries[0].Data, recs[0]) || !bytes.Equal(l.Entries[1].Data, recs[1]) || l.TornAt != -1 {
		t.Fatalf("Decode(golden) = %+v; want the two records", l)
	}
	// Spot-check the layout by hand, independent of the encoder.
	wantPrefix := []byte("BATONDF\x01\x02\x00\x00\x00\x00\x00\x00\x00\x05hello")
	if !bytes.HasPrefix(want, wantPrefix) {
		t.Errorf("golden file starts %q; want %q", want[:len(wantPrefix)], wantPrefix)
	}
	if sum := binary.LittleEndian.Uint32(want[22:26]); sum != crc32c([]byte("\x05hello")) {
		t.Errorf("first checksum = %#08x; want CRC-32C of length||payload %#08x", sum, crc32c([]byte("\x05hello")))
	}
	if want[26] != 0x82 || want[27] != 0x01 {
		t.Errorf("second length = % x; want 82 01 (130 as uvarint)", want[26:28])
	}
}

func FuzzDecode(f *testing.F) {
	for _, kind := range collections.Kinds {
		file, offs := encodeFile(kind, testRecords())
		f.Add(file, byte(kind))
		f.Add(file[:offs[3]+1], byte(kind))
		f.Add(file[:len(file)-1], byte(kind))
		f.Add(EncodeHeader(kind), byte(kind))
	}
	golden, _ := os.ReadFile(filepath.Join("testdata", "catalog-two-records.golden"))
	f.Add(golden, byte(collections.Catalog))
	f.Add(golden, byte(collections.Domain))
	f.Add([]byte{}, byte(collections.Domain))
	f.Add(cat(EncodeHeader(collections.Domain), binary.AppendUvarint(nil, MaxRecordSize+1)), byte(collections.Domain))
	f.Add(cat(EncodeHeader(collections.Domain), make([]byte, 9)), byte(collections.Domain))

	f.Fuzz(func(t *testing.T, data []byte, k byte) {
		kind := collections.Kind(k)
		l, err := Decode("fuzz.dat", kind, data)
		if !kind.Valid() {
			if err == nil {
				t.Fatalf("Decode(kind %d) succeeded", k)
			}
			return
		}
		if err != nil {
			var dfe *collections.DataFileError
			if !errors.As(err, &dfe) || !errors.Is(err, collections.ErrCorruptDataFile) {
				t.Fatalf("error %v is not a DataFileError", err)
			}
			if dfe.Offset < 0 || dfe.Offset >= int64(max(len(data), 1)) {
				t.Fatalf("error offset %d outside the %d-byte file", dfe.Offset, len(data))
			}
			if len(l.Entries) != 0 {
				t.Fatalf("%d entries returned with an error", len(l.Entries))
			}
			return
		}
		if len(data) == 0 {
			if len(l.Entries) != 0 || l.TornAt != -1 {
				t.Fatalf("Decode(empty) = %+v", l)
			}
			return
		}
		// Whatever decodes re-encodes to exactly the bytes it came from.
		end := int64(len(data))
		if l.TornAt >= 0 {
			end = l.TornAt
		}
		if l.TornAt >= 0 && l.TornAt < HeaderSize {
			t.Fatalf("torn at %d, inside the header", l.TornAt)
		}
		re, offs := encodeFile(kind, recordsOf(l.Entries))
		if !bytes.Equal(re, data[:end]) {
			t.Fatalf("re-encoding the %d entries differs from the first %d bytes", len(l.Entries), end)
		}
		for i, e := range l.Entries {
			if e.Offset != offs[i] {
				t.Fatalf("entry %d at offset %d; re-encoded at %d", i, e.Offset, offs[i])
			}
			if len(e.Data) > MaxRecordSize {
				t.Fatalf("entry %d is %d bytes, over the cap", i, len(e.Data))
			}
		}
	})
}

func recordsOf(es []collections.Entry) [][]byte {
	var recs [][]byte
	for _, e := range es {
		recs = append(recs, e.Data)
	}
	return recs
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func crc32c(b []byte) uint32 {
	// Computed without the package's table, to check the choice of polynomial.
	crc := ^uint32(0)
	for _, c := range b {
		crc ^= uint32(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x82f63b78
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}
