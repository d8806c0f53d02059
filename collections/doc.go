// Package collections is baton's replicated state: the Domain, Catalog and
// Report collections as signed, verified, deterministically merged records.
// It is pure: no goroutines, no clocks (time is passed in), no network, and
// no I/O except through the Storage interface.
//
// A domain starts from a Genesis signed by the first server of its chain;
// NewState seeds the Domain from it. Every later change is an Update signed
// by its author (SignUpdate, PurposeUpdate) and countersigned by the master
// of an epoch (Certify, PurposeCertification). Only State.Verify turns a
// Certified into the Verified that State.Apply accepts, and Verify reads the
// current Domain: who is in the chain, whose home server is where.
//
// A user's devices are Device records in the Catalog: a DeviceCert binding
// the device's peer ID to the user, signed by the user's home server
// (IssueDeviceCert, OpenDeviceCert) and published by it.
// State.ValidDevice says whether the domain accepts a device now.
//
// Usage, on the master (the author may be the master itself or a slave that
// sent the signed update):
//
//	u, _ := collections.Put(collections.User{Name: "ann", HomeServer: s2})
//	su, _ := collections.SignUpdate(key, st.Prepare(key.ID(), u, now))
//	p, err := st.VerifyProposal(su, key.ID())   // author signature, write rules
//	c, v, err := p.Certify(key, epoch, masterSeq) // countersign
//	verdict := st.Apply(v)                        // then persist c.Marshal(), publish
//
// and on every receiver:
//
//	c, err := collections.UnmarshalCertified(msg)
//	v, err := st.Verify(c, collections.VerifyOptions{Master: m, MinEpoch: highestEpoch})
//	verdict := st.Apply(v)
//	if verdict.Store { storage.Append(c.Update().Collection, c.Marshal()) }
//
// Merging is last-writer-wins per record on (Lamport clock, author, update
// hash); deletes are tombstones. Any order of the same verified updates
// gives the same records and Digest. Each author numbers its updates per
// collection from 1; replaying an old update changes nothing (Duplicate or
// Stale), and a different update with a used number is equivocation
// (Rejected).
//
// Anti-entropy: exchange State.Summary, send State.Missing(theirs); to a
// user's device, send State.ViewFor(user, held).Missing(theirs), what the
// device may see (disclosure.go). Data
// files: append each stored Certified; State.Load replays a file, verifying
// every record, and applies nothing from a file that fails; State.Snapshot
// is the compacted file for Storage.Replace.
package collections
