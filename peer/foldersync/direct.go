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

// hosting reports whether p is one of the servers hosting fo (its home
// server or a replica: Access.Hosts).
func hosting(a Access, fo collections.Folder, p lpeer.ID) bool {
	return slices.Contains(a.Hosts(fo), p)
}

// takesFrom reports whether self takes the changes in p's index of the
// folder fo: those of the servers hosting it (the other ones, on a
// hosting server) and those of its owner's and read-write members'
// devices (everywhere).
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

// announcesTo lists the peers that take self's changes to fo: the servers
// hosting it, connected or not, and the connected member devices; from a
// hosting server and an owner's or read-write member's device alike. A
// read-only member's device announces to nobody.
func announcesTo(a Access, fo collections.Folder, self lpeer.ID, connected []lpeer.ID) []lpeer.ID {
	hosts := a.Hosts(fo)
	if !slices.Contains(hosts, self) && roleOf(a, fo, self) != roleWriter {
		return nil // nobody takes a read-only member's changes
	}
	var out []lpeer.ID
	for _, h := range hosts {
		if h != self {
			out = append(out, h)
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

// pullOrder lists the peers of notified whose index this device takes:
// those of hubs (the hosting servers) first, in hubs' order, then the
// others by ID.
func pullOrder(notified map[lpeer.ID]bool, hubs []lpeer.ID) []lpeer.ID {
	var out []lpeer.ID
	for p := range notified {
		if !slices.Contains(hubs, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	var first []lpeer.ID
	for _, h := range hubs {
		if notified[h] {
			first = append(first, h)
		}
	}
	return append(first, out...)
}
