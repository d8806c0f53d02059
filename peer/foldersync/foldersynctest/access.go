package foldersynctest

import (
	"maps"
	"slices"
	"sync"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
)

// Access is a Catalog view (foldersync.Access) whose folders, users and
// servers are set by its methods. It is safe for concurrent use: it may
// change while engines read it. The zero value is empty and usable.
type Access struct {
	mu      sync.Mutex
	folders map[string]collections.Folder
	users   map[lpeer.ID]string
	servers map[lpeer.ID]bool
	// replicas: folder ID -> the servers hosting it beside its home server
	replicas map[string][]lpeer.ID
}

// Folder returns folder id, with a copy of its members.
func (a *Access) Folder(id string) (collections.Folder, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, ok := a.folders[id]
	f.Members = maps.Clone(f.Members)
	return f, ok
}

// UserOf returns the user device p belongs to.
func (a *Access) UserOf(p lpeer.ID) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u, ok := a.users[p]
	return u, ok
}

// Server reports whether p is a server of the domain.
func (a *Access) Server(p lpeer.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.servers[p]
}

// Hosts lists the servers hosting f: its home server, then the replicas
// SetReplicas gave it.
func (a *Access) Hosts(f collections.Folder) []lpeer.ID {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []lpeer.ID
	if home, err := lpeer.Decode(f.Server); err == nil {
		out = append(out, home)
	}
	return append(out, a.replicas[f.ID]...)
}

// SetReplicas makes servers host the folder id beside its home server
// (none: its home server alone).
func (a *Access) SetReplicas(id string, servers ...lpeer.ID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.replicas == nil {
		a.replicas = map[string][]lpeer.ID{}
	}
	a.replicas[id] = slices.Clone(servers)
}

// SetFolder adds f, or replaces the folder of its ID.
func (a *Access) SetFolder(f collections.Folder) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.folders == nil {
		a.folders = map[string]collections.Folder{}
	}
	f.Members = maps.Clone(f.Members)
	a.folders[f.ID] = f
}

// SetUser makes p a device of user.
func (a *Access) SetUser(p lpeer.ID, user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.users == nil {
		a.users = map[lpeer.ID]string{}
	}
	a.users[p] = user
}

// SetServer makes p a server of the domain.
func (a *Access) SetServer(p lpeer.ID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.servers == nil {
		a.servers = map[lpeer.ID]bool{}
	}
	a.servers[p] = true
}

// RemoveUser makes p a device of nobody (a device revoked, or whose
// certificate expired).
func (a *Access) RemoveUser(p lpeer.ID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.users, p)
}
