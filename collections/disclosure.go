package collections

import (
	"slices"
	"strings"

	"github.com/baton-sync/baton/identity"
)

// Least disclosure: servers hold every record; a user's devices are sent
// only what they need. ViewFor is the rule, in one place: the servers'
// records (the domain record, the chain, the host records of servers), the
// user's own user record, the folders the user is a member of (their
// records name the members), the user records of those folders' owners and
// members (a folder verifies against its owner's home server and against
// its members' identities, and a device takes another device's files only
// from a member's current identity: the records say little more than the
// folder does, a name, a home server and an identity), the user's own
// devices, and the devices of those owners and members (revoked ones
// included): member devices sync a shared folder with each other directly,
// and a device takes another's index only from a current certificate of a
// member, and lets only those devices connect. Nothing else: no other
// user, folder, device, member host or report.
//
// A device that was removed from a folder must still learn it, though the
// record that removes it no longer names its user: a device proves what it
// holds (Held, certified records naming its user), and the current record
// at each key it proves is then visible to it, whatever it says.

// MaxHeld caps how many held records ViewFor takes from a requester.
const MaxHeld = 4096

// View is what the devices of one user may see of a State. It reads the
// State it was made from, which must not change while the View is used.
type View struct {
	s       *State
	user    string
	fellows map[string]bool // owners and members of the folders user is a member of
	held    map[string]bool // Catalog keys the requester proved it holds
}

// ViewFor is what the devices of user may see of s. held are certified
// Catalog records the requesting device holds: each that verifies (the
// master's and the author's signatures, certified by a server the chain
// has had) and names user (a folder user is a member of, a device of
// user) makes the current record at its key visible, live or deleted.
// Records in held that do not verify or do not name user are ignored, as
// are those beyond MaxHeld.
func (s *State) ViewFor(user string, held []Certified) View {
	v := View{s: s, user: user, fellows: map[string]bool{}, held: map[string]bool{}}
	for _, r := range each[Folder](s, Catalog, FolderPrefix) {
		f := s.effective(r)
		if _, ok := f.Members[user]; !ok {
			continue
		}
		// As written and as it stands: a member removed from the domain
		// stays visible, so that devices learn of the removal.
		for _, g := range []Folder{r, f} {
			v.fellows[g.Owner] = true
			for m := range g.Members {
				v.fellows[m] = true
			}
		}
	}
	if len(held) > MaxHeld {
		held = held[:MaxHeld]
	}
	for _, c := range held {
		if key, ok := s.heldKey(user, c); ok {
			v.held[key] = true
		}
	}
	return v
}

// heldKey checks a held record and returns its key.
func (s *State) heldKey(user string, c Certified) (string, bool) {
	if c.IsZero() || c.verifyMaster() != nil || !s.WasServer(c.Master()) {
		return "", false
	}
	su := c.Signed()
	if su.verifyAuthor() != nil {
		return "", false
	}
	u := su.Update()
	if u.Collection != Catalog || u.Delete || u.Validate() != nil {
		return "", false
	}
	val, err := u.Decode()
	if err != nil || !namesUser(val, user, true) {
		return "", false
	}
	return u.Key, true
}

// namesUser reports whether a Catalog record is about user: a folder user
// is a member of, or a device of user. A device's certificate is verified
// only if verify is set: records the State holds were verified when they
// were applied.
func namesUser(val Value, user string, verify bool) bool {
	switch r := val.(type) {
	case Folder:
		_, ok := r.Members[user]
		return ok
	case Device:
		if verify {
			c, err := r.Open()
			return err == nil && c.User == user
		}
		return deviceUser(r) == user
	}
	return false
}

// deviceUser is the user named by d's certificate, not verified (records
// the State holds were verified when they were applied), "" if it does
// not decode.
func deviceUser(d Device) string {
	env, err := identity.UnmarshalEnvelope(d.Cert)
	if err != nil {
		return ""
	}
	var c DeviceCert
	if decodeCanonical(env.Payload, &c, MaxDeviceCertSize) != nil {
		return ""
	}
	return c.User
}

// User is the user the view is for.
func (v View) User() string { return v.user }

// Shows reports whether the view includes the certified update c: the
// version of a record it carries, not the record's current state.
func (v View) Shows(c Certified) bool {
	if c.IsZero() {
		return false
	}
	u := c.Update()
	var val Value
	if !u.Delete {
		var err error
		if val, err = u.Decode(); err != nil {
			return false
		}
	}
	return v.shows(u, val, c.Hash())
}

func (v View) shows(u Update, val Value, hash [32]byte) bool {
	switch u.Collection {
	case Domain:
		switch {
		case u.Key == DomainKey || u.Key == ChainKey:
			return true
		case strings.HasPrefix(u.Key, HostPrefix):
			if val == nil {
				return true // a host gone: its ID only
			}
			h, ok := val.(Host)
			if !ok {
				return false
			}
			rec, err := v.hostRecord(h, hash)
			return err == nil && rec.Role == identity.RoleServer
		case strings.HasPrefix(u.Key, UserPrefix):
			name := strings.TrimPrefix(u.Key, UserPrefix)
			return name == v.user || v.fellows[name]
		}
		return false
	case Catalog:
		if val != nil && namesUser(val, v.user, false) {
			return true
		}
		// A device of a fellow member, as written: revoked or not.
		if d, ok := val.(Device); ok && v.fellows[deviceUser(d)] {
			return true
		}
		// The current record at a key the requester proved it holds.
		if v.held[u.Key] {
			e := v.s.cols[Catalog].records[u.Key]
			return e != nil && e.hash == hash
		}
		return false
	}
	return false
}

// hostRecord opens a host record, through the State's cache.
func (v View) hostRecord(h Host, hash [32]byte) (identity.HostRecord, error) {
	if rec, ok := v.s.hosts.get(hash); ok {
		return rec, nil
	}
	rec, err := h.Open()
	if err != nil {
		return identity.HostRecord{}, err
	}
	v.s.hosts.put(hash, rec)
	return rec, nil
}

// Missing is State.Missing restricted to the view: the retained certified
// updates the view shows and theirs does not record, in the same order.
func (v View) Missing(theirs Summary) []Certified {
	var out []Certified
	for _, k := range Kinds {
		for _, e := range v.s.retainedSorted(k, func(e *entry) bool {
			return !e.genesis && !theirs[k][e.u.Author].Contains(e.u.Seq) && v.shows(e.u, e.val, e.hash)
		}) {
			out = append(out, e.c)
		}
	}
	return out
}

// Feed is what the devices of the view's user are sent when c was just
// applied to the State: nothing if the view does not show c and the user
// was not among wasMembers (the members of the folder record c replaced:
// a removed member learns of its removal); else c, preceded, when c is a
// folder, by the user records of its owner and members, which the device
// needs to verify the folder, and followed by their devices' records, with
// which it syncs the folder directly.
func (v View) Feed(c Certified, wasMembers map[string]bool) []Certified {
	if !v.Shows(c) {
		u := c.Update()
		if !wasMembers[v.user] || u.Collection != Catalog || !strings.HasPrefix(u.Key, FolderPrefix) {
			return nil
		}
		return []Certified{c}
	}
	var out []Certified
	if val, err := c.Update().Decode(); err == nil {
		if f, ok := val.(Folder); ok {
			names := []string{f.Owner}
			for m := range f.Members {
				if m != f.Owner {
					names = append(names, m)
				}
			}
			slices.Sort(names[1:])
			for _, n := range names {
				if e := v.s.cols[Domain].records[UserPrefix+n]; n != v.user && e != nil && !e.genesis && !e.c.IsZero() {
					out = append(out, e.c)
				}
			}
			out = append(out, c)
			others := map[string]bool{}
			for _, n := range names {
				others[n] = n != v.user
			}
			for _, e := range v.s.retainedSorted(Catalog, func(e *entry) bool {
				d, ok := e.val.(Device)
				return ok && !e.c.IsZero() && v.s.cols[Catalog].records[e.u.Key] == e && others[deviceUser(d)]
			}) {
				out = append(out, e.c)
			}
			return out
		}
	}
	return append(out, c)
}

// Held is what a device of user proves it holds when it asks for its
// view (ViewFor's held): the current live Catalog records that name user,
// the folders user is a member of and user's devices.
func (s *State) Held(user string) []Certified {
	var out []Certified
	for _, e := range s.retainedSorted(Catalog, func(e *entry) bool {
		return s.cols[Catalog].records[e.u.Key] == e && !e.u.Delete && !e.c.IsZero() && namesUser(e.val, user, false)
	}) {
		out = append(out, e.c)
	}
	return out
}
