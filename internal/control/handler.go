package control

import (
	"bytes"
	"context"
	"io"
	"net/http"
)

// sourceKey is the context key of a request's source.
type sourceKey struct{}

// WithSource returns ctx for a request that reached the control API from
// source (e.g. "console 127.0.0.1:50312"), which the log then gives
// instead of the control socket.
func WithSource(ctx context.Context, source string) context.Context {
	return context.WithValue(ctx, sourceKey{}, source)
}

// userKey is the context key of the user a request acts for.
type userKey struct{}

// WithUser returns ctx for a request made by user, an admin logged in to
// the console with their password: changes of users then go through the
// collections' rule that only an admin may make them. Without it a
// request is the host's operator's (the control socket, the console
// token).
func WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

// RequestUser is the user a request with ctx acts for (WithUser), "" for
// the host's operator.
func RequestUser(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// requestSource is the source the log gives for a request with ctx: the
// control socket unless WithSource said otherwise.
func requestSource(ctx context.Context) string {
	if s, ok := ctx.Value(sourceKey{}).(string); ok && s != "" {
		return s
	}
	return controlSource
}

// Handler is the control API as an http.Handler, for serving it on
// another listener (the console) behind that listener's authentication.
func (s *Server) Handler() http.Handler { return s.handler() }

// NewHandlerClient returns a client that calls h in this process instead
// of dialing a socket: the console reads the daemon through the same
// typed operations as the commands. home is only for error messages.
func NewHandlerClient(home string, h http.Handler) *Client {
	return &Client{home: home, sock: "(in process)", hc: &http.Client{Transport: handlerTransport{h}}}
}

// handlerTransport serves a request with a handler in this process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	sr := r.Clone(r.Context())
	if sr.Body == nil {
		sr.Body = http.NoBody
	}
	sr.RequestURI = r.URL.RequestURI()
	sr.RemoteAddr = "in-process"
	rec := &recorder{header: http.Header{}}
	t.h.ServeHTTP(rec, sr)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{
		Status:        http.StatusText(rec.status),
		StatusCode:    rec.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.header,
		Body:          io.NopCloser(&rec.body),
		ContentLength: int64(rec.body.Len()),
		Request:       r,
	}, nil
}

// recorder is the response a handler wrote.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if r.body.Len()+len(b) > maxResponse {
		return 0, io.ErrShortWrite
	}
	return r.body.Write(b)
}
