package control

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
)

// The history errors callers act on reach the client with their codes.
func TestHistoryErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{peer.ErrRestoreDenied, http.StatusForbidden, CodeDenied},
		{peer.ErrNoVersion, http.StatusNotFound, CodeNotFound},
		{peer.ErrNoHistory, http.StatusConflict, CodeConflict},
		{foldersync.ErrRestoreBlock, http.StatusInternalServerError, CodeInternal},
		{errors.New("disk on fire"), http.StatusInternalServerError, CodeInternal},
	} {
		err := historyError(fmt.Errorf("restoring folder docs: %w", tc.err))
		status, body := errorResponse(err)
		if status != tc.status || body.Code != tc.code {
			t.Errorf("%v: answered %d %q; want %d %q", tc.err, status, body.Code, tc.status, tc.code)
		}
	}
}
