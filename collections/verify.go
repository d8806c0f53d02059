package collections

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/identity"
)

// VerifyOptions are the caller's freshness requirements for Verify.
type VerifyOptions struct {
	// Master, if set, is the only host whose certifications are accepted:
	// the master the caller currently follows.
	Master lpeer.ID
	// MinEpoch fences off deposed masters: certifications from an earlier
	// epoch are refused with ErrStaleEpoch. On the live path pass the
	// highest epoch seen; for historical records (anti-entropy, loading
	// data files) pass 0.
	MinEpoch uint64
	// History marks the update as historical: a record of a data file being
	// loaded, or part of an anti-entropy delta replayed in order. The
	// signatures, the certifier's place in the chain and the rules about
	// the record itself (Domain author = certifier; Folder.Server and
	// ReportRecord.Author = author, a chain server) are still checked, but
	// not the rules relative to other records (the owner's home server, the
	// server already hosting a folder, a chain's host records), which may
	// have changed since the master checked them when it certified.
	History bool
	// Log marks the update as the next committed entry of the chain's
	// consensus log, applied in log order: its conditions (IfAbsent,
	// IfPrev) are checked against the state, and a failed one refuses it
	// with ErrConflict. Every server applies the log in the same order, so
	// every server decides alike. Hosts that merge certified updates in
	// any order (agents) never check conditions: they receive only what
	// the servers applied.
	Log bool
}

// Verified is a certified update that passed State.Verify: the only thing
// Apply accepts. The zero value is rejected by Apply.
type Verified struct {
	c Certified
}

// Certified is the verified certified update.
func (v Verified) Certified() Certified { return v.c }

// Update is the verified update.
func (v Verified) Update() Update { return v.c.Update() }

// Verify checks a certified update against the state, so Apply may use it:
//   - the master's signature (PurposeCertification) by the master it names,
//     a server in the current chain (and opts.Master, if set), at an epoch
//     of at least opts.MinEpoch;
//   - the author's signature (PurposeUpdate) by the author the update names;
//   - the write rules: Domain records are written only by the master that
//     certifies them; a folder only by its hosting server, which must be the
//     home server of its owner and, for an existing folder, the server that
//     already hosts it; a device only by the server that signed its
//     certificate, the home server of its user; a report only by its
//     author, a server in the chain.
//
// Errors wrap ErrMalformed, ErrBadSignature, ErrUnauthorized or
// ErrStaleEpoch, with the reason.
func (s *State) Verify(c Certified, opts VerifyOptions) (Verified, error) {
	if c.IsZero() {
		return Verified{}, fmt.Errorf("%w: empty certified update", ErrMalformed)
	}
	if err := c.verifyMaster(); err != nil {
		return Verified{}, err
	}
	master := c.Master()
	if !s.isServer(master, opts.History) {
		return Verified{}, fmt.Errorf("%w: certified by %s, not a server in the chain", ErrUnauthorized, master)
	}
	if opts.Master != "" && master != opts.Master {
		return Verified{}, fmt.Errorf("%w: certified by %s, but the master is %s", ErrUnauthorized, master, opts.Master)
	}
	if c.Epoch() < opts.MinEpoch {
		return Verified{}, fmt.Errorf("%w: certified in epoch %d, fence is %d", ErrStaleEpoch, c.Epoch(), opts.MinEpoch)
	}
	if err := s.verifySigned(c.Signed(), master, opts.History); err != nil {
		return Verified{}, err
	}
	if opts.Log {
		if err := s.checkCondition(c.Update()); err != nil {
			return Verified{}, err
		}
	}
	return Verified{c: c}, nil
}

// checkCondition checks a conditional update against the record at its key.
func (s *State) checkCondition(u Update) error {
	e := s.cols[u.Collection].records[u.Key]
	switch {
	case u.IfAbsent && e != nil && !e.u.Delete:
		return fmt.Errorf("%w: %s/%s exists already", ErrConflict, u.Collection, u.Key)
	case len(u.IfPrev) == 32 && (e == nil || !bytes.Equal(e.hash[:], u.IfPrev)):
		return fmt.Errorf("%w: %s/%s changed since it was read", ErrConflict, u.Collection, u.Key)
	}
	return nil
}

// VerifiedProposal is a signed update that passed State.VerifyProposal on
// the master's side: the master may certify it.
type VerifiedProposal struct {
	su     SignedUpdate
	master lpeer.ID
}

// Update is the verified update.
func (p VerifiedProposal) Update() Update { return p.su.Update() }

// Signed is the verified signed update.
func (p VerifiedProposal) Signed() SignedUpdate { return p.su }

// VerifyProposal is the master's check of an update proposed to it (by a
// slave, or by itself): the author's signature and the write rules, as if
// master certified it. master must be a server in the chain.
func (s *State) VerifyProposal(su SignedUpdate, master lpeer.ID) (VerifiedProposal, error) {
	if su.IsZero() {
		return VerifiedProposal{}, fmt.Errorf("%w: empty signed update", ErrMalformed)
	}
	if !s.IsServer(master) {
		return VerifiedProposal{}, fmt.Errorf("%w: %s is not a server in the chain and cannot certify", ErrUnauthorized, master)
	}
	if err := s.verifySigned(su, master, false); err != nil {
		return VerifiedProposal{}, err
	}
	if err := s.checkCondition(su.Update()); err != nil {
		return VerifiedProposal{}, err
	}
	return VerifiedProposal{su: su, master: master}, nil
}

// Certify certifies the verified proposal with key, which must be the
// master it was verified for, and returns the certified update (to persist,
// acknowledge and publish) and its Verified form (to Apply) without
// verifying again.
func (p VerifiedProposal) Certify(key *identity.PrivateKey, epoch, masterSeq uint64) (Certified, Verified, error) {
	if p.su.IsZero() {
		return Certified{}, Verified{}, fmt.Errorf("%w: zero VerifiedProposal", ErrNotVerified)
	}
	if key.ID() != p.master {
		return Certified{}, Verified{}, fmt.Errorf("%w: proposal was verified for master %s, not %s", ErrUnauthorized, p.master, key.ID())
	}
	c, err := Certify(key, p.su, epoch, masterSeq)
	if err != nil {
		return Certified{}, Verified{}, err
	}
	return c, Verified{c: c}, nil
}

// verifySigned checks the author's signature and the write rules for an
// update certified by master.
func (s *State) verifySigned(su SignedUpdate, master lpeer.ID, hist bool) error {
	if err := su.verifyAuthor(); err != nil {
		return err
	}
	u := su.Update()
	if err := u.Validate(); err != nil {
		return err
	}
	author, err := parseID(u.Author)
	if err != nil {
		return err
	}
	var v Value
	if !u.Delete {
		if v, err = u.Decode(); err != nil {
			return err
		}
	}
	if !hist {
		if e := s.cols[u.Collection].records[u.Key]; e != nil && e.final() {
			return fmt.Errorf("%s update %s by %s: %w: %w: %s", u.Collection, u.Key, author, ErrUnauthorized, ErrFinal, finalReason(e.val))
		}
	}
	switch u.Collection {
	case Domain:
		err = s.authorizeDomain(u, v, author, master, hist)
	case Catalog:
		err = s.authorizeCatalog(u, v, author, hist)
	case Report:
		err = s.authorizeReport(u, v, author, hist)
	}
	if err != nil {
		return fmt.Errorf("%s update %s by %s: %w", u.Collection, u.Key, author, err)
	}
	return nil
}

// finalReason says why a final record is never written again.
func finalReason(v Value) string {
	switch v.(type) {
	case Device:
		return "the device was revoked, and a revoked device is never valid again"
	}
	return "the record is final"
}

func unauthorized(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnauthorized}, args...)...)
}

// authorizeDomain: the master writes the Domain, and only under its own
// certification; the records must keep the Domain coherent.
func (s *State) authorizeDomain(u Update, v Value, author, master lpeer.ID, hist bool) error {
	if author != master {
		return unauthorized("Domain records are written only by the master that certifies them (certified by %s)", master)
	}
	if !s.isServer(author, hist) {
		return unauthorized("author is not a server in the chain")
	}
	if hist {
		return nil
	}
	chain := s.Chain()
	switch r := v.(type) {
	case nil: // delete
		if id, ok := strings.CutPrefix(u.Key, HostPrefix); ok && chain.Contains(mustDecode(id)) {
			return unauthorized("host %s is in the chain; remove it from the chain first", id)
		}
		if name, ok := strings.CutPrefix(u.Key, UserPrefix); ok {
			if prev, ok := s.UserRecord(name); ok && prev.ID != "" {
				return unauthorized("user %s has an identity: mark it removed, so the domain remembers it, rather than deleting it", name)
			}
		}
	case DomainInfo:
		if err := r.Settings.checkChainRule(len(chain.Servers)); err != nil {
			return err
		}
	case Chain:
		if !r.Contains(author) {
			return unauthorized("a master cannot remove itself from the chain")
		}
		for _, id := range r.Servers {
			h, ok := s.HostByID(mustDecode(id))
			if !ok || h.Role != identity.RoleServer {
				return unauthorized("chain server %s has no host record with role server", id)
			}
		}
		if err := s.DomainInfo().Settings.checkChainRule(len(r.Servers)); err != nil {
			return err
		}
	case User:
		if !chain.Contains(mustDecode(r.HomeServer)) {
			return unauthorized("user %s: home server %s is not in the chain", r.Name, r.HomeServer)
		}
		if err := s.checkUserChange(r); err != nil {
			return err
		}
	case Host:
		rec, err := r.Open()
		if err != nil {
			return err
		}
		if chain.Contains(rec.ID()) && rec.Role != identity.RoleServer {
			return unauthorized("host %s is in the chain and must keep role server", rec.ID())
		}
	}
	return nil
}

// checkUserChange is the identity rule of a user record: a user's ID never
// changes and is never given again; a removed user stays removed, and the
// name given again gets a new ID, the record remembering the removed one.
func (s *State) checkUserChange(r User) error {
	prev, exists := s.UserRecord(r.Name)
	former := func(u User) []FormerUser { return u.Former }
	switch {
	case !exists:
		if r.Removed {
			return unauthorized("user %s: no such user to remove", r.Name)
		}
		if len(r.Former) > 0 {
			return unauthorized("user %s: names former users, but the name was never removed", r.Name)
		}
	case !prev.Removed:
		if r.ID != prev.ID {
			return unauthorized("user %s: a user's ID never changes (is %q)", r.Name, prev.ID)
		}
		if !slices.Equal(r.Former, former(prev)) {
			return unauthorized("user %s: the former users of the name are kept as they are", r.Name)
		}
		if r.Removed && r.Successor != "" {
			succ, ok := s.User(r.Successor)
			if !ok {
				return unauthorized("user %s: successor %s is not a user of the domain", r.Name, r.Successor)
			}
			if succ.HomeServer != prev.HomeServer {
				return unauthorized("user %s: successor %s has another home server; the folders stay hosted at %s", r.Name, r.Successor, prev.HomeServer)
			}
		}
	default: // prev was removed: only a new identity may take the name
		if r.Removed {
			return unauthorized("user %s was removed already", r.Name)
		}
		if r.ID == "" || r.ID == prev.ID {
			return unauthorized("user %s: the name is given again, so it needs a new ID", r.Name)
		}
		want := append(slices.Clone(prev.Former), FormerUser{ID: prev.ID, Successor: prev.Successor})
		if !slices.Equal(r.Former, want) {
			return unauthorized("user %s: the record must remember the removed users of the name", r.Name)
		}
		for _, f := range want {
			if f.ID == r.ID {
				return unauthorized("user %s: ID %s belonged to a removed user", r.Name, r.ID)
			}
		}
	}
	return nil
}

// previous returns the record at key of k, live or tombstone, and the
// host that wrote it: the folder's server, the report's author, or the
// tombstone's author (who was one of those).
func (s *State) previous(k Kind, key string) (owner string, live, ok bool) {
	e := s.cols[k].records[key]
	if e == nil {
		return "", false, false
	}
	if e.u.Delete {
		return e.u.Author, false, true
	}
	v, err := e.u.Decode()
	if err != nil {
		return "", false, false // verified before it was applied; cannot happen
	}
	switch r := v.(type) {
	case Folder:
		return r.Server, true, true
	case ReportRecord:
		return r.Author, true, true
	case Device:
		if c, err := r.Open(); err == nil {
			return c.Server, true, true
		}
	}
	return e.u.Author, true, true
}

// authorizeCatalog: a folder is written by its hosting server, a chain
// server. It creates folders for users whose home server it is, and never
// writes a folder another server hosts. A delete must follow a record by
// the same server (live, or its own tombstone when replayed).
func (s *State) authorizeCatalog(u Update, v Value, author lpeer.ID, hist bool) error {
	if strings.HasPrefix(u.Key, DevicePrefix) {
		return s.authorizeDevice(u, v, author, hist)
	}
	if !s.isServer(author, hist) {
		return unauthorized("author is not a server in the chain")
	}
	if f, ok := v.(Folder); ok && f.Server != author.String() {
		return unauthorized("folder names hosting server %s", f.Server)
	}
	if hist {
		return nil
	}
	prev, live, exists := s.previous(Catalog, u.Key)
	if u.Delete {
		if !exists {
			return unauthorized("no such folder to delete")
		}
		if prev != author.String() {
			return unauthorized("folder is hosted by %s", prev)
		}
		return nil
	}
	if live && prev != author.String() {
		return unauthorized("folder is hosted by %s", prev)
	}
	f := v.(Folder)
	home, ok := s.HomeServer(f.Owner)
	if !ok {
		return unauthorized("owner %s is not a user of the domain", f.Owner)
	}
	if home != author {
		return unauthorized("owner %s's home server is %s", f.Owner, home)
	}
	for name := range f.Members {
		if !s.binds(name, f.IDs[name]) {
			return unauthorized("member %s: the grant names another identity than user %s's (a removed user's)", name, name)
		}
	}
	return nil
}

// authorizeReport: a report is written by its author, a server in the
// chain, and only that author changes or deletes it.
func (s *State) authorizeReport(u Update, v Value, author lpeer.ID, hist bool) error {
	if !s.isServer(author, hist) {
		return unauthorized("author is not a server in the chain")
	}
	if r, ok := v.(ReportRecord); ok && r.Author != author.String() {
		return unauthorized("report names author %s", r.Author)
	}
	if hist {
		return nil
	}
	prev, live, exists := s.previous(Report, u.Key)
	if u.Delete && !exists {
		return unauthorized("no such report to delete")
	}
	if (live || u.Delete) && prev != author.String() {
		return unauthorized("report was written by %s", prev)
	}
	return nil
}

// mustDecode decodes a peer ID that was validated already.
func mustDecode(s string) lpeer.ID {
	id, err := lpeer.Decode(s)
	if err != nil {
		return ""
	}
	return id
}
