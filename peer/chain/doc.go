// Package chain is the consensus core of a domain's server chain: an etcd
// raft RawNode (go.etcd.io/raft/v3) whose log holds certified updates, and
// the collections State those entries are applied to, in log order.
//
// It is pure: no goroutines, clocks or I/O. One goroutine (the peer
// driver) owns a Core, feeds it ticks (Tick) and the raft messages other
// servers sent (Step), and acts on its Ready in the order raft requires:
// persist HardState, Entries and Snapshot durably, send Messages, then
// call Advance, which applies the committed entries and says what they did.
//
// What the log holds. The leader (the master) checks an author-signed
// update against its state (collections.State.VerifyProposal), certifies
// it for the log position it is about to take (epoch = the raft term,
// master sequence number = the log index), and proposes it. Every server
// applies committed entries in order and verifies each again
// (collections.VerifyOptions.Log: signatures, write rules, and the
// update's conditions), so every server decides alike. An entry whose
// certification does not name its own position is refused on every
// server: a certification is never valid at another place in the log.
//
// The chain is the leadership order. The first five servers of the chain
// are voters, the rest learners (Membership); the leader brings the raft
// configuration to that, one change at a time, when the chain changes. A
// leader that sees an earlier voter of the chain caught up and active
// hands leadership to it (raft's leadership transfer): the first live,
// caught-up server of the chain is master.
//
// A witness (Config.Witness) is a voter that keeps the log and the state
// but hosts nothing else: it never stays master. When it leads (raft has
// no way to keep a voter from campaigning, so it may win an election), it
// hands leadership at once to the first voter of the chain, before or
// after it, that is caught up and active. No leader hands leadership to a
// server it knows to be a witness (SetWitnesses). Two servers and a
// witness make three voters: either server may fail.
//
// PreVote and CheckQuorum are on: a paused or cut-off leader stops
// leading within an election timeout, and nothing it proposes alone is
// ever committed.
//
// When a majority of the voters is lost for good, an operator may make a
// survivor the sole voter (ForcePromote): its whole log becomes a
// snapshot with it alone as voter, and a new Generation of the chain's
// history begins. Every raft message carries its sender's generation
// (StepFrom): a server of an older one learns it was replaced (ErrEvicted),
// keeps what its log held (LogUpdates), starts again from an empty log and
// takes the promoted server's history by snapshot; Kept then says which of
// its updates that history lacks. A snapshot sent to a follower always
// carries the applied state and configuration, so a server added after
// the last compaction or promotion can restore it.
package chain
