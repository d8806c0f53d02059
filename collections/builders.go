package collections

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/identity"
)

// The builders: one per kind of Domain or Catalog change an administrator
// or a user asks for. Each checks the change against the State, builds the
// record and returns the update to submit, conditional on the record it
// replaces (IfPrev) or on its absence (IfAbsent), so that a change built
// from a state another change has since moved on from fails with
// ErrConflict when its turn in the log comes rather than undoing that
// change; the caller then builds again from the new state. The control
// socket and the agents' requests both go through them.

// Errors of the builders callers branch on (besides ErrMalformed).
var (
	// ErrNotFound: the user or folder the change names does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: the user or folder to create exists already.
	ErrExists = errors.New("exists already")
	// ErrNotAllowed: the requester may not make this change.
	ErrNotAllowed = errors.New("not allowed")
)

// prevHash is the hash of the record at key, for Update.IfPrev.
func (s *State) prevHash(k Kind, key string) []byte {
	r, ok := s.Lookup(k, key)
	if !ok {
		return nil
	}
	return r.Hash[:]
}

// AddUser builds the change adding user name, homed at home, with the new
// identity id (ValidateUserID; the caller draws it at random). A removed
// user's name may be given again: the new user is another identity, and
// the record remembers the removed one.
func (s *State) AddUser(name string, home lpeer.ID, id string) (Update, User, error) {
	return s.AddUserWith(name, home, id, "", UserSettings{})
}

// UserSettings are a user's settings an administrator changes; a nil
// field is left as it is (on a new user: none, not an admin).
type UserSettings struct {
	// Quota is the bytes the user's folders may hold at their home server;
	// 0 removes the bound.
	Quota *int64
	// Admin makes the user an administrator of the domain, or not.
	Admin *bool
}

// apply sets the settings given on u.
func (c UserSettings) apply(u *User) {
	if c.Quota != nil {
		u.Quota = *c.Quota
	}
	if c.Admin != nil {
		u.Admin = *c.Admin
	}
}

// mayAdminister checks that by may change users' settings: "" is the
// server's own operator (its control socket, its console token), who
// always may; else by must be a user of the domain who is an admin.
func (s *State) mayAdminister(by string) error {
	if by == "" {
		return nil
	}
	u, ok := s.User(by)
	switch {
	case !ok:
		return fmt.Errorf("%w: %s is not a user of the domain, so not an admin", ErrNotAllowed, by)
	case !u.Admin:
		return fmt.Errorf("%w: %s is not an admin: only an admin, or the server's own command line, may change users", ErrNotAllowed, by)
	}
	return nil
}

// AddUserWith builds the change adding user name as AddUser does, with
// the settings given, asked by by ("" for the server's own operator; else
// an admin user).
func (s *State) AddUserWith(name string, home lpeer.ID, id, by string, settings UserSettings) (Update, User, error) {
	if err := s.mayAdminister(by); err != nil {
		return Update{}, User{}, err
	}
	if err := identity.ValidateName(name); err != nil {
		return Update{}, User{}, fmt.Errorf("%w: user name: %v", ErrMalformed, err)
	}
	if err := ValidateUserID(id); err != nil {
		return Update{}, User{}, err
	}
	if !s.IsServer(home) {
		return Update{}, User{}, fmt.Errorf("%w: %s is not a server in the chain", ErrNotAllowed, home)
	}
	u := User{Name: name, HomeServer: home.String(), ID: id}
	settings.apply(&u)
	if err := u.Validate(); err != nil {
		return Update{}, User{}, err
	}
	prev, exists := s.UserRecord(name)
	if exists && !prev.Removed {
		return Update{}, User{}, fmt.Errorf("user %s %w (home server %s)", name, ErrExists, prev.HomeServer)
	}
	if exists {
		u.Former = append(append([]FormerUser(nil), prev.Former...), FormerUser{ID: prev.ID, Successor: prev.Successor})
	}
	up, err := Put(u)
	if err != nil {
		return Update{}, User{}, err
	}
	if exists {
		up.IfPrev = s.prevHash(Domain, u.Key())
	} else {
		up.IfAbsent = true
	}
	return up, u, nil
}

// SetUser builds the change of user name's settings, asked by by: "" for
// the server's own operator (its command line or console token), who
// always may; else a user, who must be an admin.
func (s *State) SetUser(name, by string, settings UserSettings) (Update, User, error) {
	if err := s.mayAdminister(by); err != nil {
		return Update{}, User{}, err
	}
	u, ok := s.User(name)
	if !ok {
		return Update{}, User{}, fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	if settings.Quota == nil && settings.Admin == nil {
		return Update{}, User{}, fmt.Errorf("%w: user %s: no setting to change", ErrMalformed, name)
	}
	settings.apply(&u)
	up, err := Put(u)
	if err != nil {
		return Update{}, User{}, err
	}
	up.IfPrev = s.prevHash(Domain, u.Key())
	return up, u, nil
}

// RemoveUser builds the change removing user name, in one record: every
// device of the user stops being valid and every folder grant to the user
// is void, for good (the user's ID is never valid again, even if the name
// is given again). The folders the user owns go to successor, a user with
// the same home server (where they stay hosted), or are archived if
// successor is "".
func (s *State) RemoveUser(name, successor string) (Update, User, error) {
	u, ok := s.User(name)
	if !ok {
		return Update{}, User{}, fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	if u.ID == "" {
		// A user from before IDs: deleting the record is its removal.
		if successor != "" {
			return Update{}, User{}, fmt.Errorf("%w: user %s has no ID (it was added before users had one), so its folders cannot be handed over", ErrNotAllowed, name)
		}
		up := Delete(Domain, u.Key())
		up.IfPrev = s.prevHash(Domain, u.Key())
		return up, u, nil
	}
	if successor != "" {
		succ, ok := s.User(successor)
		switch {
		case successor == name:
			return Update{}, User{}, fmt.Errorf("%w: user %s cannot succeed themselves", ErrNotAllowed, name)
		case !ok:
			return Update{}, User{}, fmt.Errorf("successor %s: %w", successor, ErrNotFound)
		case succ.HomeServer != u.HomeServer:
			return Update{}, User{}, fmt.Errorf("%w: successor %s has another home server than %s; the folders stay hosted on %s's", ErrNotAllowed, successor, name, name)
		}
	}
	u.Removed, u.Successor = true, successor
	up, err := Put(u)
	if err != nil {
		return Update{}, User{}, err
	}
	up.IfPrev = s.prevHash(Domain, u.Key())
	return up, u, nil
}

// CreateFolder builds the change creating folder id, called name, owned by
// owner and hosted by server, which must be the owner's home server, with
// the default options.
func (s *State) CreateFolder(id, name, owner string, server lpeer.ID) (Update, Folder, error) {
	return s.CreateFolderWith(id, name, owner, server, OptionsPatch{})
}

// CreateFolderWith is CreateFolder with the options p gives (the others
// off, and DefaultReplicas replicas if p does not say). The record names
// its hosting set: the home server, then the next Replicas servers of the
// chain after it (fewer if the chain has fewer; asking more replicas than
// the chain has other servers gets as many as it has: OptionsPatch.CappedNote).
func (s *State) CreateFolderWith(id, name, owner string, server lpeer.ID, p OptionsPatch) (Update, Folder, error) {
	u, ok := s.User(owner)
	if !ok {
		return Update{}, Folder{}, fmt.Errorf("user %s: %w", owner, ErrNotFound)
	}
	if u.HomeServer != server.String() {
		return Update{}, Folder{}, fmt.Errorf("%w: user %s's home server is %s: folders are created there", ErrNotAllowed, owner, u.HomeServer)
	}
	for _, f := range s.Folders() {
		if f.Owner == owner && f.Name == name {
			return Update{}, Folder{}, fmt.Errorf("user %s already has a folder named %s (%s): %w", owner, f.Name, f.ID, ErrExists)
		}
	}
	f := Folder{ID: id, Name: name, Owner: owner, Server: server.String(),
		Members: map[string]Right{owner: RightOwner}, Hosts: []string{server.String()}}
	if u.ID != "" {
		f.IDs = map[string]string{owner: u.ID}
	}
	f, err := withOptions(s.Chain(), f, p.Apply(FolderOptions{Replicas: DefaultReplicas}), p.Replicas != nil)
	if err != nil {
		return Update{}, Folder{}, err
	}
	up, err := Put(f)
	if err != nil {
		return Update{}, Folder{}, err
	}
	up.IfAbsent = true
	return up, f, nil
}

// Share builds the change giving user right (ro or rw) in folder id, asked
// by by: its owner, or "" for the administrator of its hosting server.
// Sharing again changes the right.
func (s *State) Share(id, by, user string, right Right) (Update, Folder, error) {
	if right != RightReadOnly && right != RightReadWrite {
		return Update{}, Folder{}, fmt.Errorf("%w: right %q: want ro or rw", ErrMalformed, right)
	}
	f, err := s.ownedBy(id, by)
	if err != nil {
		return Update{}, Folder{}, err
	}
	if user == f.Owner {
		return Update{}, Folder{}, fmt.Errorf("%w: %s owns folder %s", ErrNotAllowed, user, f.Name)
	}
	u, ok := s.User(user)
	if !ok {
		return Update{}, Folder{}, fmt.Errorf("%w: no user %s in the domain", ErrNotFound, user)
	}
	f.Members[user] = right
	if u.ID != "" {
		f.IDs[user] = u.ID
	}
	return s.putFolder(f)
}

// SetFolderOptions builds the change setting the options p gives of
// folder id, the others staying as they are, asked by by: its owner, or
// "" for the administrator of its home server. A change of Replicas
// chooses the hosting set again: the servers hosting the folder now stay
// first (the last ones dropped when there are fewer replicas), then the
// next servers of the chain after the home server; more replicas than the
// chain has other servers get as many as it has (OptionsPatch.CappedNote).
// A record without a hosting set (from before they were recorded) gets
// one, with DefaultReplicas unless p says. ErrExists if the folder has
// these options and hosting set already.
func (s *State) SetFolderOptions(id, by string, p OptionsPatch) (Update, Folder, error) {
	if p.Empty() {
		return Update{}, Folder{}, fmt.Errorf("%w: no option to set", ErrMalformed)
	}
	f, err := s.ownedBy(id, by)
	if err != nil {
		return Update{}, Folder{}, err
	}
	base := f.FolderOptions
	if f.Hosts == nil {
		base.Replicas = DefaultReplicas
	}
	nf, err := withOptions(s.Chain(), f, p.Apply(base), p.Replicas != nil)
	if err != nil {
		return Update{}, Folder{}, err
	}
	if nf.FolderOptions == f.FolderOptions && slices.Equal(nf.Hosts, f.Hosts) {
		return Update{}, Folder{}, fmt.Errorf("folder %s has these options %w", f.Name, ErrExists)
	}
	return s.putFolder(nf)
}

// Unshare builds the change removing user from folder id, asked by by: its
// owner, or "" for the administrator of its hosting server.
func (s *State) Unshare(id, by, user string) (Update, Folder, error) {
	f, err := s.ownedBy(id, by)
	if err != nil {
		return Update{}, Folder{}, err
	}
	if user == f.Owner {
		return Update{}, Folder{}, fmt.Errorf("%w: %s owns folder %s", ErrNotAllowed, user, f.Name)
	}
	if _, ok := f.Members[user]; !ok {
		return Update{}, Folder{}, fmt.Errorf("%s is not a member of folder %s: %w", user, f.Name, ErrNotFound)
	}
	delete(f.Members, user)
	delete(f.IDs, user)
	return s.putFolder(f)
}

// Leave builds the change by which user leaves folder id. The owner
// cannot leave their folder.
func (s *State) Leave(id, user string) (Update, Folder, error) {
	f, ok := s.Folder(id)
	if !ok {
		return Update{}, Folder{}, fmt.Errorf("folder %s: %w", id, ErrNotFound)
	}
	f = cloneFolder(f)
	if user == f.Owner {
		return Update{}, Folder{}, fmt.Errorf("%w: %s owns folder %s and cannot leave it", ErrNotAllowed, user, f.Name)
	}
	if _, ok := f.Members[user]; !ok {
		return Update{}, Folder{}, fmt.Errorf("%s is not a member of folder %s: %w", user, f.Name, ErrNotFound)
	}
	if f.Archived() {
		return Update{}, Folder{}, fmt.Errorf("%w: folder %s is archived", ErrNotAllowed, f.Name)
	}
	delete(f.Members, user)
	delete(f.IDs, user)
	return s.putFolder(f)
}

// ownedBy is folder id as it stands, to be changed by by (its owner, or
// "" for the administrator).
func (s *State) ownedBy(id, by string) (Folder, error) {
	f, ok := s.Folder(id)
	if !ok {
		return Folder{}, fmt.Errorf("folder %s: %w", id, ErrNotFound)
	}
	if f.Archived() {
		return Folder{}, fmt.Errorf("%w: folder %s is archived (its owner was removed)", ErrNotAllowed, f.Name)
	}
	if by != "" && by != f.Owner {
		return Folder{}, fmt.Errorf("%w: only the owner of folder %s, %s, shares it", ErrNotAllowed, f.Name, f.Owner)
	}
	return cloneFolder(f), nil
}

func cloneFolder(f Folder) Folder {
	f.Members = maps.Clone(f.Members)
	f.IDs = maps.Clone(f.IDs)
	f.Hosts = slices.Clone(f.Hosts)
	if f.IDs == nil {
		f.IDs = map[string]string{}
	}
	return f
}

// putFolder is the update writing f over the record it was read from.
func (s *State) putFolder(f Folder) (Update, Folder, error) {
	if len(f.IDs) == 0 {
		f.IDs = nil
	}
	up, err := Put(f)
	if err != nil {
		return Update{}, Folder{}, err
	}
	up.IfPrev = s.prevHash(Catalog, f.Key())
	return up, f, nil
}

// refusal is a builder's error: its own message, and kind (ErrNotFound,
// ErrExists, ErrNotAllowed or ErrMalformed) for errors.Is.
type refusal struct {
	kind error
	msg  string
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.kind }

func refuse(kind error, format string, args ...any) error {
	return &refusal{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// ServerChange is a change of the server chain: the updates to submit, in
// order (each conditional on the record it replaces), and what they do.
type ServerChange struct {
	Updates []Update
	Record  identity.HostRecord // the server added or removed
	// Position is the server's 1-based place in the chain (added: in the
	// new chain; removed: in the old one, 0 if it was no longer in it),
	// Servers the servers in the new chain.
	Position, Servers int
	// Majority: the change turns majority failover on (a chain of three
	// servers or more needs it).
	Majority bool
}

// AddServer builds the change adding the server of host record h to the
// chain at position pos (1-based; 0: last): its host record, majority
// failover if the chain reaches three servers, and the chain.
func (s *State) AddServer(h Host, pos int) (ServerChange, error) {
	rec, err := h.Open()
	if err != nil {
		return ServerChange{}, refuse(ErrMalformed, "host record: %v", err)
	}
	if rec.Role != identity.RoleServer {
		return ServerChange{}, refuse(ErrMalformed, "host %s (%s) has role %s; only servers join the chain", rec.Name, rec.ID(), rec.Role)
	}
	chain := s.Chain()
	if i := chain.Index(rec.ID()); i >= 0 {
		return ServerChange{}, refuse(ErrExists, "%s (%s) is already server %d of the chain", rec.Name, rec.ID(), i+1)
	}
	for _, o := range s.Hosts() {
		if o.Name == rec.Name && o.ID() != rec.ID() {
			return ServerChange{}, refuse(ErrExists, "another host is already named %s (%s)", o.Name, o.ID())
		}
	}
	n := len(chain.Servers)
	if pos == 0 {
		pos = n + 1
	}
	if pos < 1 || pos > n+1 {
		return ServerChange{}, refuse(ErrMalformed, "position %d: the chain has %d servers, so give 1 to %d", pos, n, n+1)
	}
	if n+1 > MaxChainServers {
		return ServerChange{}, refuse(ErrNotAllowed, "the chain already has %d servers, the most it can hold", n)
	}
	c := ServerChange{Record: rec, Position: pos, Servers: n + 1}
	hu, err := Put(h)
	if err != nil {
		return ServerChange{}, err
	}
	if hu.IfPrev = s.prevHash(Domain, h.Key()); hu.IfPrev == nil {
		hu.IfAbsent = true
	}
	c.Updates = append(c.Updates, hu)
	if info := s.DomainInfo(); n+1 >= 3 && !info.Settings.Majority {
		info.Settings.Majority = true
		iu, err := Put(info)
		if err != nil {
			return ServerChange{}, err
		}
		iu.IfPrev = s.prevHash(Domain, DomainKey)
		c.Updates = append(c.Updates, iu)
		c.Majority = true
	}
	servers := append(append(append([]string(nil), chain.Servers[:pos-1]...), rec.ID().String()), chain.Servers[pos-1:]...)
	cu, err := Put(Chain{Servers: servers})
	if err != nil {
		return ServerChange{}, err
	}
	cu.IfPrev = s.prevHash(Domain, ChainKey)
	c.Updates = append(c.Updates, cu)
	return c, nil
}

// RemoveServer builds the change removing server id, asked at master (the
// master cannot remove itself): out of the chain, then its host record. A
// server already out of the chain (an earlier removal interrupted) loses
// its host record. It is refused for the last server of the chain and for
// the home server of any user.
func (s *State) RemoveServer(id, master lpeer.ID) (ServerChange, error) {
	rec, ok := s.HostByID(id)
	if !ok {
		return ServerChange{}, refuse(ErrNotFound, "no host %s in the domain", id)
	}
	chain := s.Chain()
	del := Delete(Domain, HostPrefix+id.String())
	del.IfPrev = s.prevHash(Domain, HostPrefix+id.String())
	i := chain.Index(id)
	if i < 0 {
		if rec.Role != identity.RoleServer {
			return ServerChange{}, refuse(ErrNotFound, "%s (%s) is not a server in the chain", rec.Name, id)
		}
		return ServerChange{Updates: []Update{del}, Record: rec, Servers: len(chain.Servers)}, nil
	}
	if len(chain.Servers) == 1 {
		return ServerChange{}, refuse(ErrNotAllowed, "%s is the last server of the chain", rec.Name)
	}
	if id == master {
		return ServerChange{}, refuse(ErrNotAllowed, "%s is the master (this host): a master cannot remove itself from the chain", rec.Name)
	}
	var homed []string
	for _, u := range s.Users() {
		if u.HomeServer == id.String() {
			homed = append(homed, u.Name)
		}
	}
	if len(homed) > 0 {
		return ServerChange{}, refuse(ErrNotAllowed, "%s is the home server of %d users (%s): remove them first with 'baton user remove'", rec.Name, len(homed), strings.Join(homed, ", "))
	}
	servers := append(append([]string(nil), chain.Servers[:i]...), chain.Servers[i+1:]...)
	cu, err := Put(Chain{Servers: servers})
	if err != nil {
		return ServerChange{}, err
	}
	cu.IfPrev = s.prevHash(Domain, ChainKey)
	return ServerChange{Updates: []Update{cu, del}, Record: rec, Position: i + 1, Servers: len(servers)}, nil
}
