package foldersync

import (
	"slices"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
)

// Direct sync between member devices. A folder's hosting server is not the
// only peer a member device syncs with: it takes the index of every
// connected device of the folder's owner and read-write members, with the
// very checks the server applies to them (requestIndex: the signer is the
// peer asked, for the folder and sequence asked; takesFrom: the peer's
// certificate is current and its user may write the folder; syncfs.OpenIndex
// and the applier: names and hashes). A read-only member's device takes
// them too (it follows writers as it follows the server) but is taken from
// by nobody. Versions travel unchanged (Plan records the remote entry's
// version vector), so a change that reaches a device from another device
// and later from the server is the same version there: Equal, nothing to
// do, never a conflict.

// takesFrom reports whether self takes the changes in p's index of the
// folder fo: those of the folder's hosting server (on a member device) and
// those of its owner's and read-write members' devices (everywhere).
func takesFrom(a Access, fo collections.Folder, self, p lpeer.ID) bool {
	if p == self {
		return false
	}
	switch roleOf(a, fo, p) {
	case roleWriter, roleServer:
		return true
	}
	return false
}

// announcesTo lists the connected peers (and the hosting server, connected
// or not) that take self's changes to fo: on the server, every member
// device; on an owner's or read-write member's device, the server and the
// other member devices; on a read-only member's device, nobody.
func announcesTo(a Access, fo collections.Folder, self lpeer.ID, connected []lpeer.ID) []lpeer.ID {
	var out []lpeer.ID
	if fo.Server != self.String() {
		if roleOf(a, fo, self) != roleWriter {
			return nil // nobody takes a read-only member's changes
		}
		if hub, err := lpeer.Decode(fo.Server); err == nil {
			out = append(out, hub)
		}
	}
	for _, q := range connected {
		if q == self || slices.Contains(out, q) {
			continue
		}
		switch roleOf(a, fo, q) {
		case roleReader, roleWriter:
			out = append(out, q)
		}
	}
	return out
}

// pullOrder lists the peers of notified whose index this device takes, the
// folder's server first (hub, if among them), then the others by ID.
func pullOrder(notified map[lpeer.ID]bool, hub lpeer.ID) []lpeer.ID {
	var out []lpeer.ID
	for p := range notified {
		if p != hub {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	if hub != "" && notified[hub] {
		out = append([]lpeer.ID{hub}, out...)
	}
	return out
}
