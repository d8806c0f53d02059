package role

import (
	"errors"
	"fmt"
)

// ErrStaleEpoch is returned (wrapped) for a master message whose epoch is
// below the highest epoch this server has seen: the sender has been fenced.
var ErrStaleEpoch = errors.New("stale epoch")

// ErrUnknownPeer is returned (wrapped) for a message whose sender is not in
// the chain, is this server itself, or that is addressed to another server.
var ErrUnknownPeer = errors.New("unknown peer")

// Role is what a server currently is in the chain.
type Role uint8

const (
	// Slave follows the master (if any) and never acknowledges writes.
	// A master that steps down becomes a Slave with no master.
	Slave Role = iota
	// Candidate has claimed an epoch and waits for a majority to grant it
	// (Majority mode only). It does not acknowledge writes.
	Candidate
	// Master acknowledges writes and signs with its epoch.
	Master
)

func (r Role) String() string {
	switch r {
	case Slave:
		return "slave"
	case Candidate:
		return "candidate"
	case Master:
		return "master"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// MessageType says what a [Message] is.
type MessageType uint8

const (
	// MsgHeartbeat is broadcast by every server every HeartbeatTicks.
	MsgHeartbeat MessageType = iota + 1
	// MsgPreCampaign asks whether the receiver would grant the sender
	// Epoch, without changing anything (Majority mode). It keeps a server
	// that the others would refuse from raising everybody's epoch.
	MsgPreCampaign
	// MsgPreGrant answers a MsgPreCampaign with yes (no answer means no).
	MsgPreGrant
	// MsgCampaign asks the receiver to grant the sender the master role
	// at Epoch (Majority mode).
	MsgCampaign
	// MsgGrant grants To the master role at Epoch. A server grants each
	// epoch at most once, and persists the epoch before granting.
	MsgGrant
)

func (t MessageType) String() string {
	switch t {
	case MsgHeartbeat:
		return "heartbeat"
	case MsgPreCampaign:
		return "precampaign"
	case MsgPreGrant:
		return "pregrant"
	case MsgCampaign:
		return "campaign"
	case MsgGrant:
		return "grant"
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Message is exchanged between the role machines of the chain's servers.
// The driver signs, sends and verifies them; the machine trusts From.
type Message struct {
	Type MessageType
	// From is the sender's host ID.
	From string
	// To is the receiver's host ID, or "" for every other server in the
	// chain.
	To string
	// Epoch is, for a heartbeat, the highest epoch the sender has seen
	// (its master epoch when IsMaster); for the campaign messages, the
	// epoch being contested.
	Epoch uint64
	// Master is, in a heartbeat, the live master the sender follows ("" if
	// none; the sender itself when IsMaster). It is for display and
	// diagnosis: decisions use IsMaster, Epoch and MasterEpoch.
	Master string
	// MasterEpoch is, in a heartbeat, the highest epoch the sender knows a
	// master was elected in.
	MasterEpoch uint64
	// IsMaster is set in a heartbeat when the sender is master at Epoch.
	IsMaster bool
	// CaughtUp is, in a heartbeat or (pre)campaign, the highest epoch whose
	// data the sender holds completely.
	CaughtUp uint64
}

func (m Message) String() string {
	to := m.To
	if to == "" {
		to = "*"
	}
	s := fmt.Sprintf("%s->%s %s e%d", m.From, to, m.Type, m.Epoch)
	switch m.Type {
	case MsgHeartbeat:
		s += fmt.Sprintf(" master=%q/e%d is=%t caught=%d", m.Master, m.MasterEpoch, m.IsMaster, m.CaughtUp)
	case MsgPreCampaign, MsgCampaign:
		s += fmt.Sprintf(" caught=%d", m.CaughtUp)
	}
	return s
}

// Persisted is the state a machine needs durably across restarts.
type Persisted struct {
	// Epoch is the highest epoch seen, granted or used.
	Epoch uint64
}

// State is what the driver acts on: the role, whom to follow, and whether
// to pull data first. The zero State (a slave with no master) is the
// state a driver starts in.
type State struct {
	Role Role
	// Master is the live master this server follows (itself when Role is
	// Master), or "" when there is none: then writes go nowhere.
	Master string
	// Epoch is Master's epoch, or 0 when Master is "".
	Epoch uint64
	// CatchUpFrom, when not "", is the server to pull data from: the
	// master, or, while there is none, a live server that holds the data
	// of the latest master's epoch. Once the pull is complete the driver
	// calls [Machine.CaughtUp] with CatchUpEpoch.
	CatchUpFrom string
	// CatchUpEpoch is the epoch whose data CatchUpFrom holds, or 0 when
	// CatchUpFrom is "".
	CatchUpEpoch uint64
}

// AcceptWrites reports whether the server may acknowledge writes: only a
// master does, and only after the Ready carrying this State (and every
// earlier PersistEpoch) has been persisted.
func (s State) AcceptWrites() bool { return s.Role == Master }

// Ready is a batch of work for the driver. Act on it in field order, then
// call [Machine.Advance] with it.
type Ready struct {
	// PersistEpoch, when not 0, is a new highest epoch. Write and fsync it
	// before sending Messages or acting on State.
	PersistEpoch uint64
	// Messages are to be sent, in order; To == "" means every other server.
	// Delivery may fail; the machine tolerates loss and reordering.
	Messages []Message
	// State is the current state; StateChanged tells whether it differs
	// from the State of the previous advanced Ready.
	State        State
	StateChanged bool
}

// Status is a snapshot for display.
type Status struct {
	Self string
	Role Role
	// Master and Epoch are as in [State].
	Master string
	Epoch  uint64
	// Highest is the highest epoch seen; Persisted how much of it is
	// known durable.
	Highest, Persisted uint64
	// KnownMaster is the highest epoch known to have had a master.
	KnownMaster uint64
	// CaughtUp is the highest epoch whose data this server holds.
	CaughtUp uint64
	// Live lists the servers heard from within FailAfterTicks, self
	// included, in chain order.
	Live []string
	// Tick is the number of ticks since New.
	Tick int64
}
