package collections

import (
	"errors"
	"fmt"
	"maps"

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
// owner and hosted by server, which must be the owner's home server.
func (s *State) CreateFolder(id, name, owner string, server lpeer.ID) (Update, Folder, error) {
	return s.CreateFolderWith(id, name, owner, server, FolderOptions{})
}

// CreateFolderWith is CreateFolder with the folder's options.
func (s *State) CreateFolderWith(id, name, owner string, server lpeer.ID, opts FolderOptions) (Update, Folder, error) {
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
		Members: map[string]Right{owner: RightOwner}, FolderOptions: opts}
	if u.ID != "" {
		f.IDs = map[string]string{owner: u.ID}
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

// SetFolderOptions builds the change setting the options of folder id,
// asked by by: its owner, or "" for the administrator of its hosting
// server. ErrExists if the folder has these options already.
func (s *State) SetFolderOptions(id, by string, opts FolderOptions) (Update, Folder, error) {
	f, err := s.ownedBy(id, by)
	if err != nil {
		return Update{}, Folder{}, err
	}
	if f.FolderOptions == opts {
		return Update{}, Folder{}, fmt.Errorf("folder %s has these options %w", f.Name, ErrExists)
	}
	f.FolderOptions = opts
	return s.putFolder(f)
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
