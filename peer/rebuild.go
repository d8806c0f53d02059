package peer

import (
	"context"
	"errors"
	"fmt"

	"github.com/baton-sync/baton/collections"
)

// MaxBuilds bounds the times SubmitBuilt builds a change: the first time
// and again after each concurrent change of its record.
const MaxBuilds = 5

// SubmitBuilt builds a change with build, which reads the state as it
// stands and returns a conditional update (a collections builder's: IfPrev
// or IfAbsent), and submits it with submit. If another change of the same
// record came first, the update fails its condition in the log
// (collections.ErrConflict) rather than undoing that change, and it is
// built again from the new state, at most MaxBuilds times in all. An
// error of build ends it at once, as does any other error of submit, which
// SubmitBuilt returns as it is. attempt is 1 the first time.
//
// The administrator's folder changes (the control socket) and the agents'
// (their hosting server, on the agent protocol) both go through it.
func SubmitBuilt(ctx context.Context,
	build func(ctx context.Context, attempt int) (collections.Update, error),
	submit func(context.Context, collections.Update) error) error {
	for attempt := 1; ; attempt++ {
		u, err := build(ctx, attempt)
		if err != nil {
			return err
		}
		err = submit(ctx, u)
		if errors.Is(err, collections.ErrConflict) && attempt < MaxBuilds && ctx.Err() == nil {
			continue
		}
		return err
	}
}

// rejected is the master's answer to a proposal it refused with err. A
// failed condition says so, so that the proposer builds the change again.
func rejected(err error) proposeResponse {
	return proposeResponse{Code: "rejected", Error: err.Error(), Conflict: errors.Is(err, collections.ErrConflict)}
}

// rejection is the proposer's error for a proposal the master refused.
func (resp proposeResponse) rejection() error {
	if resp.Conflict {
		return fmt.Errorf("%w by the master: %w: %s", ErrRejected, collections.ErrConflict, resp.Error)
	}
	return fmt.Errorf("%w by the master: %s", ErrRejected, resp.Error)
}
