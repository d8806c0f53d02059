package foldersync

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/baton-sync/baton/peer/wire"
	"github.com/baton-sync/baton/syncfs"
)

// A frame's length is checked against the limit before anything is read
// or allocated: a peer that claims a huge frame, or one whose length does
// not fit in 64 bits, gets an error at once.
func TestReadFrameLimits(t *testing.T) {
	for name, in := range map[string][]byte{
		"one over":   binary.AppendUvarint(nil, 1001),
		"2^62":       binary.AppendUvarint(nil, 1<<62),
		"2^64-1":     binary.AppendUvarint(nil, 1<<64-1),
		"overflow":   bytes.Repeat([]byte{0xff}, 11),
		"no length":  nil,
		"cut length": {0x80},
	} {
		b, err := wire.ReadFrame(bufio.NewReader(bytes.NewReader(in)), 1000)
		if err == nil || b != nil {
			t.Errorf("%s: readFrame = %d bytes, %v; want an error", name, len(b), err)
		}
		if (name == "one over" || name == "2^62" || name == "2^64-1") && !errors.Is(err, wire.ErrTooLarge) {
			t.Errorf("%s: error %v; want wire.ErrTooLarge", name, err)
		}
	}
	ref := blockRef{Hash: syncfs.HashBytes([]byte("x")), Size: 1}
	for name, in := range map[string][]byte{
		"over the largest block": binary.AppendUvarint(nil, 1+1000+1),
		"2^62":                   binary.AppendUvarint(nil, 1<<62),
		"overflow":               bytes.Repeat([]byte{0xff}, 11),
	} {
		if _, ok, err := readBlockFrame(bufio.NewReader(bytes.NewReader(in)), ref, 1000); ok || err == nil {
			t.Errorf("%s: readBlockFrame ok %v, err %v; want an error", name, ok, err)
		}
	}
}

// FuzzWireDecoders feeds arbitrary bytes to every decoder of the folder
// protocols, as a peer could send them: none panics, none returns a frame
// over its limit, and a block frame is taken only if it is the block asked.
func FuzzWireDecoders(f *testing.F) {
	block := []byte("a block")
	ref := blockRef{Hash: syncfs.HashBytes(block), Size: uint32(len(block))}
	seed := func(v any) []byte {
		b, err := encodeFrame(v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(seed(indexRequest{Folder: "f1", Session: 1, Have: 2}))
	f.Add(seed(indexHeader{Status: statusFull, Session: 1, Sequence: 2, Pages: 1}))
	f.Add(seed(blockRequest{Folder: "f1", Blocks: []blockRef{ref}}))
	f.Add(seed(notifyMsg{Folder: "f1", Session: 1, Sequence: 2}))
	f.Add(frame(append([]byte{blockOK}, block...)))
	f.Add(frame([]byte{blockMissing}))
	f.Add(binary.AppendUvarint(nil, 1<<62))
	f.Add(bytes.Repeat([]byte{0xff}, 11))
	f.Add(frame(bytes.Repeat([]byte{0x81}, 200)))
	f.Fuzz(func(t *testing.T, in []byte) {
		read := func() *bufio.Reader { return bufio.NewReader(bytes.NewReader(in)) }
		if b, err := wire.ReadFrame(read(), maxRequest); err == nil && len(b) > maxRequest {
			t.Fatalf("readFrame returned %d bytes, limit %d", len(b), maxRequest)
		}
		var req indexRequest
		_ = wire.ReadMsg(read(), maxRequest, &req)
		var hdr indexHeader
		_ = wire.ReadMsg(read(), maxHeader, &hdr)
		var breq blockRequest
		if wire.ReadMsg(read(), maxRequest, &breq) == nil && breq.validate(1<<20) == nil && len(breq.Blocks) > maxBatch {
			t.Fatalf("a block request of %d blocks validated", len(breq.Blocks))
		}
		var m notifyMsg
		_ = wire.ReadMsg(read(), maxRequest, &m)
		br := read()
		for range 4 {
			fb, ok, err := readBlockFrame(br, ref, 1<<20)
			if err != nil {
				break
			}
			if ok {
				if !bytes.Equal(fb.vb.Data(), block) {
					t.Fatalf("readBlockFrame took %q for %q", fb.vb.Data(), block)
				}
				fb.vb.Release()
			}
		}
	})
}

// encodeFrame returns v encoded as one frame.
func encodeFrame(v any) ([]byte, error) {
	var buf bytes.Buffer
	err := wire.WriteMsg(&buf, v)
	return buf.Bytes(), err
}
