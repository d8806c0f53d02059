package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/baton-sync/baton/internal/canon"
)

// Stream is what the exchange needs of a stream: libp2p's network.Stream
// is one.
type Stream interface {
	io.ReadWriteCloser
	// CloseWrite closes the writing side: the other end reads EOF.
	CloseWrite() error
	// Reset closes both sides at once, telling the other end the exchange
	// failed.
	Reset() error
	SetDeadline(time.Time) error
}

// ErrTooLarge: a frame is longer than its reader allows.
var ErrTooLarge = errors.New("frame too large")

// AppendFrameHeader appends to dst what comes before n bytes in a frame.
func AppendFrameHeader(dst []byte, n int) []byte { return binary.AppendUvarint(dst, uint64(n)) }

// WriteFrame writes b as one frame.
func WriteFrame(w io.Writer, b []byte) error {
	var buf [binary.MaxVarintLen64]byte
	hdr := AppendFrameHeader(buf[:0], len(b))
	if len(b) <= 64<<10 {
		// One write: a small frame goes out in one packet.
		_, err := w.Write(append(append(make([]byte, 0, len(hdr)+len(b)), hdr...), b...))
		return err
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// ReadFrame reads one frame of at most max bytes. It reads no further than
// the frame's end (an io.ByteReader such as a bufio.Reader is faster).
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	br, ok := r.(io.ByteReader)
	if !ok {
		br = byteReader{r}
	}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("reading frame: %w", err)
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("reading frame: %w", err)
	}
	return b, nil
}

// byteReader reads one byte at a time, so nothing past a frame is taken.
type byteReader struct{ r io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var one [1]byte
	if _, err := io.ReadFull(b.r, one[:]); err != nil {
		return 0, err
	}
	return one[0], nil
}

// WriteMsg encodes v canonically (CBOR) and writes it as one frame.
func WriteMsg(w io.Writer, v any) error {
	b, err := canon.Marshal(v)
	if err != nil {
		return err
	}
	return WriteFrame(w, b)
}

// ReadMsg reads one frame of at most max bytes and decodes it into v.
func ReadMsg(r io.Reader, max int, v any) error {
	b, err := ReadFrame(r, max)
	if err != nil {
		return err
	}
	return canon.Unmarshal(b, v, max)
}

// Exchange sends req as one frame on s, closes the writing side and reads
// one response frame of at most max bytes, all before deadline. On error
// it resets s; it never closes s otherwise.
func Exchange(s Stream, deadline time.Time, req []byte, max int) ([]byte, error) {
	_ = s.SetDeadline(deadline)
	if err := WriteFrame(s, req); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("sending request: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("sending request: %w", err)
	}
	b, err := ReadFrame(s, max)
	if err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	return b, nil
}

// Call is Exchange of a canonically encoded request and response.
func Call[Resp any](s Stream, deadline time.Time, req any, max int) (Resp, error) {
	var resp Resp
	b, err := canon.Marshal(req)
	if err != nil {
		return resp, fmt.Errorf("encoding request: %w", err)
	}
	if b, err = Exchange(s, deadline, b, max); err != nil {
		return resp, err
	}
	if err := canon.Unmarshal(b, &resp, max); err != nil {
		return resp, fmt.Errorf("decoding the answer: %w", err)
	}
	return resp, nil
}

// Serve reads one request frame of at most max bytes from s, answers it
// with handle and writes the answer, before deadline, then closes s. If
// reading fails or handle returns an error, s is reset: no answer.
func Serve(s Stream, deadline time.Time, max int, handle func(req []byte) ([]byte, error)) {
	_ = s.SetDeadline(deadline)
	b, err := ReadFrame(s, max)
	if err != nil {
		_ = s.Reset()
		return
	}
	out, err := handle(b)
	if err != nil {
		_ = s.Reset()
		return
	}
	if err := WriteFrame(s, out); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// ServeMsg is Serve with a canonically encoded answer.
func ServeMsg[Resp any](s Stream, deadline time.Time, max int, handle func(req []byte) (Resp, error)) {
	Serve(s, deadline, max, func(req []byte) ([]byte, error) {
		resp, err := handle(req)
		if err != nil {
			return nil, err
		}
		return canon.Marshal(resp)
	})
}
