package control

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestControlLogsSource: what the control API changes, and what it refuses
// to change, is in the daemon's log with the source (the control socket).
func TestControlLogsSource(t *testing.T) {
	var buf bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&buf, nil))}
	for _, tc := range []struct {
		method string
		fn     func(context.Context, struct{}) (MutationResult, error)
		want   string
	}{
		{http.MethodDelete, func(context.Context, struct{}) (MutationResult, error) {
			return MutationResult{Done: "user bob removed"}, nil
		}, `msg="control: user bob removed" source="control socket"`},
		{http.MethodDelete, func(context.Context, struct{}) (MutationResult, error) {
			return MutationResult{}, errNotFound("no user zed in the domain")
		}, `msg="control request refused" method=DELETE path=/v1/users/zed source="control socket" err="no user zed in the domain"`},
	} {
		buf.Reset()
		handle(s, noRequest, tc.fn)(httptest.NewRecorder(), httptest.NewRequest(tc.method, "/v1/users/zed", nil))
		if !strings.Contains(buf.String(), tc.want) {
			t.Errorf("log = %q; want a line with %q", buf.String(), tc.want)
		}
	}
}

// TestControlLogsOtherSource: a request that came through the console is
// logged with that source.
func TestControlLogsOtherSource(t *testing.T) {
	var buf bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&buf, nil))}
	req := httptest.NewRequest(http.MethodDelete, "/v1/users/zed", nil)
	req = req.WithContext(WithSource(req.Context(), "console 127.0.0.1:5000"))
	handle(s, noRequest, func(context.Context, struct{}) (MutationResult, error) {
		return MutationResult{Done: "user zed removed"}, nil
	})(httptest.NewRecorder(), req)
	if want := `source="console 127.0.0.1:5000"`; !strings.Contains(buf.String(), want) {
		t.Errorf("log = %q; want %q", buf.String(), want)
	}
}
