package collections

import (
	"errors"
	"fmt"

	"github.com/baton-sync/baton/identity"
)

// Errors callers branch on. Every error from Verify, Apply's Verdict and the
// decoders wraps one of them, with the reason appended.
var (
	// ErrMalformed: the bytes do not decode, are not canonical, or a field is
	// out of range (bad key, bad peer ID, value not matching its key, ...).
	ErrMalformed = errors.New("malformed")
	// ErrTooLarge: an encoding or field exceeds its size cap.
	ErrTooLarge = errors.New("too large")
	// ErrBadSignature: a signature does not verify, has the wrong purpose, or
	// is not by the host the record names. It also wraps the identity error.
	ErrBadSignature = fmt.Errorf("collections: %w", identity.ErrBadSignature)
	// ErrUnauthorized: the signatures verify but the Domain does not let this
	// author write this record, or this host certify it.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrStaleEpoch: the certification's epoch is below the caller's fence.
	ErrStaleEpoch = errors.New("stale epoch")
	// ErrEquivocation: the author signed two different updates with the same
	// collection and sequence number.
	ErrEquivocation = errors.New("equivocation")
	// ErrDuplicate: the exact update was already applied (Verdict Duplicate).
	ErrDuplicate = errors.New("duplicate update")
	// ErrSuperseded: the update is older than what the state holds for its
	// key, or its sequence number was already seen (Verdict Stale).
	ErrSuperseded = errors.New("superseded update")
	// ErrConflict: a conditional update's condition (Update.IfAbsent,
	// Update.IfPrev) no longer holds: another change of the key came first.
	ErrConflict = errors.New("conflicting change")
	// ErrFinal: the update writes over a final record (a revoked device),
	// which nothing replaces. It is wrapped with ErrUnauthorized.
	ErrFinal = errors.New("final record")
	// ErrNotVerified: a zero Verified or VerifiedProposal was used.
	ErrNotVerified = errors.New("not verified")
)

// sigErr wraps an identity error as ErrBadSignature, keeping both in the chain.
func sigErr(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrBadSignature, what, err)
}
