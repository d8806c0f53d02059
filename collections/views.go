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

// Users is every provisioned user, by name.
func (s *State) Users() []User { return each[User](s, Domain, UserPrefix) }

// User returns the user called name.
func (s *State) User(name string) (User, bool) { return live[User](s, Domain, UserPrefix+name) }

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

// Folders is every folder of the Catalog, by ID.
func (s *State) Folders() []Folder { return each[Folder](s, Catalog, FolderPrefix) }

// Folder returns the folder with id.
func (s *State) Folder(id string) (Folder, bool) { return live[Folder](s, Catalog, FolderPrefix+id) }

// Reports is every report, by ID.
func (s *State) Reports() []ReportRecord { return each[ReportRecord](s, Report, ReportPrefix) }

// ReportByID returns the report with id.
func (s *State) ReportByID(id string) (ReportRecord, bool) {
	return live[ReportRecord](s, Report, ReportPrefix+id)
}
