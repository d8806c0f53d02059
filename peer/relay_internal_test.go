package peer

import (
	"slices"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/identity/identitytest"
)

// reservationsDue asks the connected servers without a reservation, or
// with one about to end, that are not being asked and did not fail a
// moment ago, in chain order.
func TestReservationsDue(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var s []lpeer.ID
	for _, name := range []string{"r1", "r2", "r3", "r4", "r5", "r6", "r7"} {
		s = append(s, identitytest.Key("relay-"+name).ID())
	}
	st := relayState{
		expires: map[lpeer.ID]time.Time{
			s[1]: now.Add(time.Hour),                      // held: not due
			s[2]: now.Add(relayRenewBefore - time.Second), // about to end: due
		},
		reserving: map[lpeer.ID]bool{s[3]: true},
		failedAt: map[lpeer.ID]time.Time{
			s[4]: now.Add(-time.Second),     // failed a moment ago: not due
			s[5]: now.Add(-2 * time.Minute), // failed long ago: due
		},
	}
	connected := func(p lpeer.ID) bool { return p != s[6] }
	got := reservationsDue(now, s, connected, st, 30*time.Second)
	if want := []lpeer.ID{s[0], s[2], s[5]}; !slices.Equal(got, want) {
		t.Errorf("due %v, want %v", got, want)
	}
}
