package wire_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-sync/baton/peer/wire"
)

// pipe is one end of an in-memory stream pair.
type pipe struct {
	r     *io.PipeReader
	w     *io.PipeWriter
	mu    sync.Mutex
	reset bool
}

func newPipes() (*pipe, *pipe) {
	ar, bw := io.Pipe()
	br, aw := io.Pipe()
	return &pipe{r: ar, w: aw}, &pipe{r: br, w: bw}
}

func (p *pipe) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipe) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipe) CloseWrite() error           { return p.w.Close() }
func (p *pipe) Close() error                { _ = p.w.Close(); return p.r.Close() }
func (p *pipe) SetDeadline(time.Time) error { return nil }
func (p *pipe) Reset() error {
	p.mu.Lock()
	p.reset = true
	p.mu.Unlock()
	_ = p.w.CloseWithError(errors.New("reset"))
	return p.r.CloseWithError(errors.New("reset"))
}
func (p *pipe) wasReset() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.reset }

type req struct {
	Name string `cbor:"1,keyasint"`
}
type resp struct {
	Greeting string `cbor:"1,keyasint"`
}

func TestCallServe(t *testing.T) {
	client, server := newPipes()
	done := make(chan struct{})
	go func() {
		defer close(done)
		wire.ServeMsg(server, time.Now().Add(time.Second), 64, func(b []byte) (resp, error) {
			return resp{Greeting: "hello " + string(b[len(b)-3:])}, nil
		})
	}()
	got, err := wire.Call[resp](client, time.Now().Add(time.Second), req{Name: "ann"}, 64)
	<-done
	if err != nil || got.Greeting != "hello ann" {
		t.Fatalf("Call = %+v, %v; want hello ann", got, err)
	}
	if server.wasReset() || client.wasReset() {
		t.Error("a stream was reset after a good exchange")
	}
}

func TestCapsAndFailures(t *testing.T) {
	t.Run("request over the server's cap", func(t *testing.T) {
		client, server := newPipes()
		called := false
		go wire.Serve(server, time.Now().Add(time.Second), 8, func([]byte) ([]byte, error) { called = true; return nil, nil })
		_, err := wire.Exchange(client, time.Now().Add(time.Second), bytes.Repeat([]byte("x"), 9), 64)
		if err == nil || !client.wasReset() {
			t.Errorf("Exchange of 9 bytes to a server taking 8: %v; want an error and a reset", err)
		}
		if called {
			t.Error("the handler ran on an oversized request")
		}
	})
	t.Run("answer over the client's cap", func(t *testing.T) {
		client, server := newPipes()
		go wire.Serve(server, time.Now().Add(time.Second), 64, func([]byte) ([]byte, error) { return bytes.Repeat([]byte("y"), 65), nil })
		_, err := wire.Exchange(client, time.Now().Add(time.Second), []byte("q"), 64)
		if !errors.Is(err, wire.ErrTooLarge) || !client.wasReset() {
			t.Errorf("an answer of 65 bytes for a cap of 64: %v; want ErrTooLarge and a reset", err)
		}
	})
	t.Run("handler error resets", func(t *testing.T) {
		client, server := newPipes()
		go wire.Serve(server, time.Now().Add(time.Second), 64, func([]byte) ([]byte, error) { return nil, errors.New("no") })
		if _, err := wire.Exchange(client, time.Now().Add(time.Second), []byte("q"), 64); err == nil {
			t.Error("Exchange with a failing handler succeeded")
		}
		if !server.wasReset() {
			t.Error("the server's stream was not reset")
		}
	})
}

// ReadFrame takes no byte past its frame from a reader that is not a
// ByteReader: the next frame is intact.
func TestReadFrameStopsAtItsEnd(t *testing.T) {
	var buf bytes.Buffer
	for _, s := range []string{"one", strings.Repeat("2", 300), ""} {
		if err := wire.WriteFrame(&buf, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	r := struct{ io.Reader }{&buf} // hides ByteReader
	for _, want := range []string{"one", strings.Repeat("2", 300), ""} {
		b, err := wire.ReadFrame(r, 1024)
		if err != nil || string(b) != want {
			t.Fatalf("ReadFrame = %q, %v; want %q", b, err, want)
		}
	}
	if _, err := wire.ReadFrame(r, 1024); !errors.Is(err, io.EOF) {
		t.Errorf("ReadFrame at the end: %v; want EOF", err)
	}
}
