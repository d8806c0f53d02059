package collections

import (
	"slices"
	"strings"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/identity"
)

// live decodes the live record at key of k into T.
func live[T Value](s *State, k Kind, key string) (T, bool) {
	var zero T
	if !k.Valid() {
		return zero, false
	}
	e := s.cols[k].records[key]
	if e == nil || e.u.Delete {
		return zero, false
	}
	t, ok := e.val.(T)
	return t, ok
}

// each is every live record of k under prefix as T, in key order.
func each[T Value](s *State, k Kind, prefix string) []T {
	if !k.Valid() {
		return nil
	}
	col := s.cols[k]
	keys := make([]string, 0, len(col.records))
	for key, e := range col.records {
		if !e.u.Delete && strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	out := make([]T, 0, len(keys))
	for _, key := range keys {
		if t, ok := col.records[key].val.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// DomainInfo is the domain record.
func (s *State) DomainInfo() DomainInfo {
	d, _ := live[DomainInfo](s, Domain, DomainKey)
	return d
}

// Chain is the current server chain.
func (s *State) Chain() Chain {
	c, _ := live[Chain](s, Domain, ChainKey)
	return c
}

// IsServer reports whether id is a server in the current chain.
func (s *State) IsServer(id lpeer.ID) bool {
	return id != "" && s.Chain().Contains(id)
}

// WasServer reports whether id is, or ever was, a server in the chain: in
// the genesis or in any chain record the state holds. Historical records
// (History in VerifyOptions) certified or authored by a server since
// removed from the chain stay valid.
func (s *State) WasServer(id lpeer.ID) bool {
	if id == "" {
		return false
	}
	if s.IsServer(id) || s.genesis.Chain.Contains(id) {
		return true
	}
	for _, e := range s.cols[Domain].byID {
		if e.u.Key != ChainKey || e.u.Delete {
			continue
		}
		v, err := e.u.Decode()
		if err != nil {
			continue
		}
		if c, ok := v.(Chain); ok && c.Contains(id) {
			return true
		}
	}
	return false
}

// isServer is the chain test the write rules apply: the current chain for
// live updates, any chain the domain has had for historical ones.
func (s *State) isServer(id lpeer.ID, hist bool) bool {
	if hist {
		return s.WasServer(id)
	}
	return s.IsServer(id)
}

// Users is every provisioned user, by name (removed users are not).
func (s *State) Users() []User {
	return slices.DeleteFunc(each[User](s, Domain, UserPrefix), func(u User) bool { return u.Removed })
}

// User returns the user called name, unless removed.
func (s *State) User(name string) (User, bool) {
	u, ok := s.UserRecord(name)
	if !ok || u.Removed {
		return User{}, false
	}
	return u, true
}

// UserRecord returns the record at name's key, removed or not.
func (s *State) UserRecord(name string) (User, bool) { return live[User](s, Domain, UserPrefix+name) }

// binds reports whether a grant to name bound to id is one to the user
// now called name: a user, not removed, with that ID.
func (s *State) binds(name, id string) bool {
	u, ok := s.User(name)
	return ok && u.ID == id
}

// successor is who took the folders of the removed user name with ID id,
// as a name and ID that bind now, following successors that were removed
// in turn; ok is false if the folders were archived.
func (s *State) successor(name, id string) (string, string, bool) {
	for range 16 {
		rec, ok := s.UserRecord(name)
		if !ok {
			return "", "", false
		}
		next := ""
		switch {
		case rec.ID == id && rec.Removed:
			next = rec.Successor
		default:
			found := false
			for _, f := range rec.Former {
				if f.ID == id {
					next, found = f.Successor, true
				}
			}
			if !found {
				return "", "", false
			}
		}
		if next == "" {
			return "", "", false
		}
		nrec, ok := s.UserRecord(next)
		if !ok {
			return "", "", false
		}
		if !nrec.Removed {
			return next, nrec.ID, true
		}
		name, id = next, nrec.ID
	}
	return "", "", false
}

// effective is f as it stands for the domain's users now: only members
// whose grant binds to the user now holding their name (a grant to a
// removed user is dropped for good, even if the name is given again), and
// if the owner was removed, the folder handed to the owner's successor or,
// with none, archived: no owner (Owner ""), every member read-only.
func (s *State) effective(f Folder) Folder {
	out := f
	out.Members = make(map[string]Right, len(f.Members))
	out.IDs = make(map[string]string, len(f.IDs))
	keep := func(name, id string, r Right) {
		out.Members[name] = r
		if id != "" {
			out.IDs[name] = id
		}
	}
	for name, r := range f.Members {
		if id := f.IDs[name]; r != RightOwner && s.binds(name, id) {
			keep(name, id, r)
		}
	}
	switch ownerID := f.IDs[f.Owner]; {
	case s.binds(f.Owner, ownerID):
		keep(f.Owner, ownerID, RightOwner)
	default:
		if succ, id, ok := s.successor(f.Owner, ownerID); ok {
			out.Owner = succ
			keep(succ, id, RightOwner)
			break
		}
		out.Owner = ""
		for name := range out.Members {
			out.Members[name] = RightReadOnly
		}
	}
	if len(out.IDs) == 0 {
		out.IDs = nil
	}
	return out
}

// Archived reports whether f, as State.Folder returns it, has no owner:
// its owner was removed without a successor. Nobody writes to it.
func (f Folder) Archived() bool { return f.Owner == "" }

// DefaultReplicas is how many servers of the chain beyond its home server
// host a folder unless its owner chose (FolderOptions.Replicas), and every
// folder whose record has no hosting set (from before they were
// recorded): one, the next server after the home server, when the chain
// has two servers or more.
const DefaultReplicas = 1

// FolderHosts returns the servers that host the folder f, the home server
// (f.Server) first, then its replicas. For a record with a hosting set
// (f.Hosts) they are the recorded servers still in the chain, at most
// f.Replicas of them, then, while fewer than f.Replicas remain, the next
// servers of the chain after the home server (wrapping around) that are
// not in it yet: a recorded replica that left the chain is replaced by
// chain order, and one that comes back hosts again. A record without a
// hosting set is hosted by the home server and the next DefaultReplicas
// servers after it. A home server no longer in the chain keeps the
// recorded replicas still in it and takes no others. Every place that
// asks who hosts a folder asks this.
func FolderHosts(c Chain, f Folder) []lpeer.ID {
	home, err := lpeer.Decode(f.Server)
	if err != nil {
		return nil
	}
	out := []lpeer.ID{home}
	want := DefaultReplicas
	if f.Hosts != nil {
		want = f.Replicas
		for _, s := range f.Hosts {
			id, err := lpeer.Decode(s)
			if err != nil || len(out) > want || slices.Contains(out, id) || !c.Contains(id) {
				continue
			}
			out = append(out, id)
		}
	}
	i := c.Index(home)
	if i < 0 {
		return out
	}
	ids := c.IDs()
	for k := 1; k < len(ids) && len(out) <= want; k++ {
		if id := ids[(i+k)%len(ids)]; !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// FolderHosts returns the servers that host the folder f now (see
// FolderHosts).
func (s *State) FolderHosts(f Folder) []lpeer.ID { return FolderHosts(s.Chain(), f) }

// Hosting reports whether the server id hosts the folder f now.
func (s *State) Hosting(f Folder, id lpeer.ID) bool {
	return slices.Contains(s.FolderHosts(f), id)
}

// HomeServer is the peer ID of user's home server.
func (s *State) HomeServer(user string) (lpeer.ID, bool) {
	u, ok := s.User(user)
	if !ok {
		return "", false
	}
	id, err := lpeer.Decode(u.HomeServer)
	return id, err == nil
}

// Hosts is every member host's record, by peer ID.
func (s *State) Hosts() []identity.HostRecord {
	col := s.cols[Domain]
	var keys []string
	for key, e := range col.records {
		if !e.u.Delete && strings.HasPrefix(key, HostPrefix) {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	var out []identity.HostRecord
	for _, key := range keys {
		if rec, ok := s.openHost(col.records[key].record()); ok {
			out = append(out, rec)
		}
	}
	return out
}

// HostByID returns the record of the member host id.
func (s *State) HostByID(id lpeer.ID) (identity.HostRecord, bool) {
	r, ok := s.Lookup(Domain, HostPrefix+id.String())
	if !ok {
		return identity.HostRecord{}, false
	}
	return s.openHost(r)
}

// openHost decodes and verifies a host record, remembering the result by
// the update's hash: records never change under a hash, and verifying the
// signature on every lookup is the most expensive part of a lookup.
func (s *State) openHost(r Record) (identity.HostRecord, bool) {
	if rec, ok := s.hosts.get(r.Hash); ok {
		return rec, true
	}
	v, err := r.Decode()
	if err != nil {
		return identity.HostRecord{}, false
	}
	h, ok := v.(Host)
	if !ok {
		return identity.HostRecord{}, false
	}
	rec, err := h.Open()
	if err != nil {
		return identity.HostRecord{}, false
	}
	s.hosts.put(r.Hash, rec)
	return rec, true
}

// Folders is every folder of the Catalog, by ID, as Folder returns them.
func (s *State) Folders() []Folder {
	fs := each[Folder](s, Catalog, FolderPrefix)
	for i, f := range fs {
		fs[i] = s.effective(f)
	}
	return fs
}

// Folder returns the folder with id as it stands now: its members are the
// users its grants bind to (see User), and a removed owner's folder is
// its successor's or archived (Folder.Archived). FolderRecord is the
// record as written.
func (s *State) Folder(id string) (Folder, bool) {
	f, ok := s.FolderRecord(id)
	if !ok {
		return Folder{}, false
	}
	return s.effective(f), true
}

// FolderRecord returns the folder record with id as written.
func (s *State) FolderRecord(id string) (Folder, bool) {
	return live[Folder](s, Catalog, FolderPrefix+id)
}

// Reports is every report, by ID.
func (s *State) Reports() []ReportRecord { return each[ReportRecord](s, Report, ReportPrefix) }

// ReportByID returns the report with id.
func (s *State) ReportByID(id string) (ReportRecord, bool) {
	return live[ReportRecord](s, Report, ReportPrefix+id)
}
