package peer

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-msgio"
)

// Caps on messages read from the network.
const (
	maxRequest  = 4 << 20  // one request frame
	maxResponse = 32 << 20 // one response frame (a sync delta)
	ioTimeout   = 10 * time.Second
)

// errRemote is an error the other side reported in its response.
var errRemote = errors.New("remote refused")

// writeFrame writes one varint-length-prefixed frame.
func writeFrame(w io.Writer, b []byte) error {
	return msgio.NewVarintWriter(w).WriteMsg(b)
}

// readFrame reads one varint-length-prefixed frame of at most max bytes.
func readFrame(r io.Reader, max int) ([]byte, error) {
	b, err := msgio.NewVarintReaderSize(r, max).ReadMsg()
	if err != nil {
		return nil, fmt.Errorf("reading frame: %w", err)
	}
	return b, nil
}

// roundTrip sends one request on s and reads one response, with deadlines.
func roundTrip(s network.Stream, req []byte, max int) ([]byte, error) {
	_ = s.SetDeadline(time.Now().Add(ioTimeout))
	if err := writeFrame(s, req); err != nil {
		return nil, fmt.Errorf("sending request: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		return nil, fmt.Errorf("closing request: %w", err)
	}
	return readFrame(s, max)
}
