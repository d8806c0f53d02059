// Package role decides which server of a domain's chain is master: the
// chain-of-responsibility failover of DESIGN.md, as a pure state machine in
// the etcd raft Step/Tick/Ready shape. It starts no goroutines and does no
// I/O; it reads no clock and no randomness. The driver feeds it ticks,
// heartbeats and catch-up reports and carries out what it asks.
//
// # The rules
//
// The servers form an ordered chain, highest priority first. Every master
// term has an epoch; epochs only grow, and each is used by one server at
// most. Every server broadcasts a heartbeat every HeartbeatTicks; a server
// not heard from within FailAfterTicks is down.
//
// A server is caught up when it holds the data of the latest epoch that had
// a master: a master is caught up in its own epoch, a slave once the driver
// reports (CaughtUp) that it has pulled from the master, or, while there is
// no master, from a caught-up server (it holds the same data). A restarted
// server is not caught up. The rightful master, in a server's view, is the
// first live server in chain order; it may be promoted once it is caught
// up. So a master that fails is replaced by the next live server (scenario
// 3), even when it fails before that server has pulled from it: the next
// server catches up from another and the others wait for it. A
// lower-priority server never preempts the acting master, and a recovered
// master first catches up and only then takes the role back with a higher
// epoch, the acting master stepping down (scenario 4). Agents are not in
// the chain and slaves do not matter to it (scenarios 1 and 2).
//
// Should the first live server not catch up within StartupGraceTicks of the
// last master being seen, the first live, caught-up server is rightful
// instead. When no master has been seen for StartupGraceTicks and no live
// server is caught up (a whole-cluster cold start), the first live server
// is rightful. A freshly started machine promotes nobody for
// FailAfterTicks, so that it has heard every live server, nor, while it
// sees no master, for StartupGraceTicks.
//
// In Majority mode (the default for three or more servers) the rightful
// server must win the epoch from a majority of the chain, self included.
// It first pre-campaigns (asks without changing anything), then campaigns
// for highest+1; a server grants an epoch only if it sees the candidate as
// rightful and caught up and has seen no epoch as high, and persists the epoch before
// granting. A majority has thus fenced the old epoch before the new master
// acts, and no epoch ever has two masters. A master that has not heard from
// a majority for FailAfterTicks steps down and stops acknowledging writes.
//
// In plain-chain mode (Majority false, the default for two servers) the
// rightful server promotes itself, taking the next epoch congruent to its
// chain position plus one modulo the chain length, so two servers split by
// a partition still never share an epoch. When they meet again the lower
// epoch steps down, catches up (the driver merges; collections merge loses
// nothing) and, if it has the higher priority, takes the role back.
//
// A heartbeat carrying a higher epoch, or a campaign this server grants,
// raises the highest epoch seen; a master or candidate of a lower epoch
// steps down at once. (Pre-campaigns and refused campaigns change nothing.) Heartbeats of a
// master below the highest epoch seen are refused with [ErrStaleEpoch], and
// [Machine.Fence] applies the same test to the master-signed messages of the
// data protocols.
//
// # Usage
//
// The driver goroutine owns the machine and loops:
//
//	m, err := role.New(role.DefaultConfig(self, chain), role.Persisted{Epoch: loadEpoch()})
//	for {
//		select {
//		case <-ticker.C: // every role.DefaultTickInterval
//			m.Tick()
//		case msg := <-heartbeats: // verified: signed by msg.From
//			_ = m.Step(msg)
//		case epoch := <-pulled: // a pull from State.CatchUpFrom finished (State.CatchUpEpoch)
//			m.CaughtUp(epoch)
//		}
//		if !m.HasReady() {
//			continue
//		}
//		rd := m.Ready()
//		if rd.PersistEpoch != 0 {
//			saveEpochAndFsync(rd.PersistEpoch) // 1. before anything else
//		}
//		send(rd.Messages) // 2.
//		apply(rd.State)   // 3. role, master to follow, pull, acknowledge
//		m.Advance(rd)
//	}
//
// The contract:
//
//   - Persist before you send, before you act. A Ready's PersistEpoch must
//     be durable (fsynced) before any of its Messages leave and before its
//     State is acted on; a server that crashes in between restarts from
//     what is durable. Never acknowledge a write as master before the
//     Ready that made the server master has been persisted.
//   - Acknowledge writes only while the last applied State.AcceptWrites()
//     holds, and sign master messages with its Epoch. Stop acknowledging
//     as soon as a State says otherwise.
//   - Refuse master acts (acknowledgements, receipts, republishes sent
//     now) whose epoch [Machine.Fence] rejects. Records certified in an
//     earlier epoch remain valid history: anti-entropy still merges them.
//   - When State.CatchUpFrom is set, pull everything from that server (the
//     master, or a caught-up server while there is no master) and then call
//     CaughtUp(State.CatchUpEpoch). Until then the server cannot be
//     promoted (short of a cold start).
//   - On taking the role over from a live master (the previous State
//     followed another master), pull once more from it before
//     acknowledging: it kept acknowledging until it granted the new
//     epoch (Majority) or heard the new master (plain chain), so its last
//     updates may postdate the catch-up. Anti-entropy would merge them
//     anyway; the extra pull makes the handback lose nothing at once.
//   - Call Advance with each Ready before the next Ready; Tick, Step and
//     CaughtUp may be called in between. A restart is New with the
//     persisted epoch.
//
// With [DefaultConfig] and [DefaultTickInterval] a server is declared down
// after 1 s of silence and a new master is elected within one round trip
// after that; a cold start elects after 1.5 s.
package role
