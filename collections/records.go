package collections

import (
	"fmt"
	"slices"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/identity"
)

// Size caps of record values.
const (
	MaxKeySize        = 256            // bytes in a record key
	MaxValueSize      = 1<<20 + 64<<10 // bytes in an encoded record value
	MaxReportContent  = 1 << 20        // bytes of ReportRecord.Content
	MaxHostRecordSize = 64 << 10       // bytes of Host.Record
	MaxChainServers   = 64             // servers in a Chain
	MaxFolderMembers  = 4096           // entries in Folder.Members
	maxTextSize       = 256            // bytes of free-text names
)

// Record keys. Domain holds DomainKey, ChainKey, "user/NAME" and
// "host/PEERID"; Catalog holds "folder/ID" and "device/PEERID"
// (DevicePrefix); Report holds "report/ID".
const (
	DomainKey    = "domain"
	ChainKey     = "chain"
	UserPrefix   = "user/"
	HostPrefix   = "host/"
	FolderPrefix = "folder/"
	ReportPrefix = "report/"
)

// Value is a record that lives at one key of one collection.
type Value interface {
	// Collection is the collection the record belongs to.
	Collection() Kind
	// Key is the record's key in its collection ("" if the record is too
	// malformed to have one).
	Key() string
	// Validate checks the record's fields on their own, without the State.
	Validate() error
}

// FailoverSettings says how the server chain hands the master role down.
type FailoverSettings struct {
	// Majority requires a majority of the chain to be reachable for
	// promotion, and makes a master that cannot reach one step down. It is
	// required with three or more servers; with fewer, false selects the
	// plain chain rule.
	Majority        bool `cbor:"1,keyasint"`
	HeartbeatMillis int  `cbor:"2,keyasint"`
	FailAfterMillis int  `cbor:"3,keyasint"`
}

// Validate checks the timing values.
func (f FailoverSettings) Validate() error {
	if f.HeartbeatMillis <= 0 || f.HeartbeatMillis > 60_000 {
		return fmt.Errorf("%w: heartbeat %d ms, want 1 to 60000", ErrMalformed, f.HeartbeatMillis)
	}
	if f.FailAfterMillis < 2*f.HeartbeatMillis || f.FailAfterMillis > 600_000 {
		return fmt.Errorf("%w: fail-after %d ms, want 2 heartbeats (%d ms) to 600000", ErrMalformed, f.FailAfterMillis, 2*f.HeartbeatMillis)
	}
	return nil
}

// checkChainRule reports a domain whose chain is too long for the plain
// chain rule.
func (f FailoverSettings) checkChainRule(servers int) error {
	if servers >= 3 && !f.Majority {
		return fmt.Errorf("%w: %d servers need majority failover", ErrMalformed, servers)
	}
	return nil
}

// DefaultFailover is the failover setting for a chain of n servers.
func DefaultFailover(n int) FailoverSettings {
	return FailoverSettings{Majority: n >= 3, HeartbeatMillis: 250, FailAfterMillis: 1500}
}

// DomainInfo is the Domain's own record (key "domain").
type DomainInfo struct {
	Name     string           `cbor:"1,keyasint"`
	Settings FailoverSettings `cbor:"2,keyasint"`
}

func (DomainInfo) Collection() Kind { return Domain }
func (DomainInfo) Key() string      { return DomainKey }
func (d DomainInfo) Validate() error {
	if err := identity.ValidateName(d.Name); err != nil {
		return fmt.Errorf("%w: domain: %v", ErrMalformed, err)
	}
	return d.Settings.Validate()
}

// Chain is the ordered server chain (key "chain"): the first live server is
// the master.
type Chain struct {
	Servers []string `cbor:"1,keyasint"` // peer IDs, in order
}

func (Chain) Collection() Kind { return Domain }
func (Chain) Key() string      { return ChainKey }
func (c Chain) Validate() error {
	if len(c.Servers) == 0 || len(c.Servers) > MaxChainServers {
		return fmt.Errorf("%w: chain has %d servers, want 1 to %d", ErrMalformed, len(c.Servers), MaxChainServers)
	}
	seen := make(map[string]bool, len(c.Servers))
	for _, s := range c.Servers {
		if _, err := parseID(s); err != nil {
			return fmt.Errorf("chain: %w", err)
		}
		if seen[s] {
			return fmt.Errorf("%w: chain lists %s twice", ErrMalformed, s)
		}
		seen[s] = true
	}
	return nil
}

// Contains reports whether id is in the chain.
func (c Chain) Contains(id lpeer.ID) bool { return c.Index(id) >= 0 }

// Index is id's position in the chain, or -1.
func (c Chain) Index(id lpeer.ID) int {
	s := id.String()
	for i, v := range c.Servers {
		if v == s {
			return i
		}
	}
	return -1
}

// IDs returns the chain as peer IDs. The chain must be valid.
func (c Chain) IDs() []lpeer.ID {
	ids := make([]lpeer.ID, 0, len(c.Servers))
	for _, s := range c.Servers {
		id, err := lpeer.Decode(s)
		if err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// User is a provisioned user (key "user/NAME"). Users log in at their home
// server.
//
// ID is the user's identity, assigned when the user is added and never
// reused: device certificates (DeviceCert.UserID) and folder grants
// (Folder.IDs) bind to it, so a new user given a removed user's name is
// another identity, with none of the old one's devices or folders. A
// removed user's record stays, marked Removed, with the folders it owned
// going to Successor (a user name) or archived; adding the name again
// gives a new ID and remembers the old ones in Former. Records without an
// ID are from before IDs; they bind to the empty ID.
type User struct {
	Name       string       `cbor:"1,keyasint"`
	HomeServer string       `cbor:"2,keyasint"` // the home server's peer ID
	ID         string       `cbor:"3,keyasint,omitempty"`
	Removed    bool         `cbor:"4,keyasint,omitempty"`
	Successor  string       `cbor:"5,keyasint,omitempty"` // removed: who takes the user's folders ("" archives them)
	Former     []FormerUser `cbor:"6,keyasint,omitempty"` // the removed users that had this name
	// Quota bounds the bytes of the folders the user owns, as their home
	// server holds them (0: no bound). The home server refuses a device's
	// change that would take the user past it.
	Quota int64 `cbor:"7,keyasint,omitempty"`
	// Admin: the user administers the domain, and may log in to a
	// server's console with their password (checked at their home server).
	Admin bool `cbor:"8,keyasint,omitempty"`
}

// FormerUser is a removed user whose name was given again: its ID, never
// valid again, and who took its folders.
type FormerUser struct {
	ID        string `cbor:"1,keyasint"`
	Successor string `cbor:"2,keyasint,omitempty"`
}

// UserIDSize is the length of a user ID: 32 lowercase hex characters.
const UserIDSize = 32

// ValidateUserID checks a user ID's form.
func ValidateUserID(id string) error {
	if len(id) != UserIDSize {
		return fmt.Errorf("%w: user ID %q: want %d hex characters", ErrMalformed, id, UserIDSize)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%w: user ID %q: want lowercase hex", ErrMalformed, id)
		}
	}
	return nil
}

func (User) Collection() Kind { return Domain }
func (u User) Key() string    { return UserPrefix + u.Name }
func (u User) Validate() error {
	if err := identity.ValidateName(u.Name); err != nil {
		return fmt.Errorf("%w: user: %v", ErrMalformed, err)
	}
	if _, err := parseID(u.HomeServer); err != nil {
		return fmt.Errorf("user %s home server: %w", u.Name, err)
	}
	if u.ID != "" {
		if err := ValidateUserID(u.ID); err != nil {
			return fmt.Errorf("user %s: %w", u.Name, err)
		}
	}
	if u.Quota < 0 {
		return fmt.Errorf("%w: user %s: quota %d: want 0 (none) or a number of bytes", ErrMalformed, u.Name, u.Quota)
	}
	if u.Removed && u.ID == "" {
		return fmt.Errorf("%w: user %s: a removed user record keeps the user's ID", ErrMalformed, u.Name)
	}
	if u.Successor != "" {
		if err := identity.ValidateName(u.Successor); err != nil || !u.Removed || u.Successor == u.Name {
			return fmt.Errorf("%w: user %s: successor %q: want another user's name, on a removed user", ErrMalformed, u.Name, u.Successor)
		}
	}
	if len(u.Former) > MaxFolderMembers {
		return fmt.Errorf("%w: user %s has %d former IDs, limit %d", ErrTooLarge, u.Name, len(u.Former), MaxFolderMembers)
	}
	for _, f := range u.Former {
		if err := ValidateUserID(f.ID); err != nil || f.ID == u.ID {
			return fmt.Errorf("%w: user %s: former ID %q", ErrMalformed, u.Name, f.ID)
		}
		if f.Successor != "" && identity.ValidateName(f.Successor) != nil {
			return fmt.Errorf("%w: user %s: former user's successor %q", ErrMalformed, u.Name, f.Successor)
		}
	}
	return nil
}

// Host is a member host of the Domain (key "host/PEERID"): its signed host
// record, as produced by identity.SignHostRecord.
type Host struct {
	Record []byte `cbor:"1,keyasint"` // canonical identity.Envelope bytes
}

// HostFromEnvelope wraps a signed host record.
func HostFromEnvelope(e *identity.Envelope) (Host, error) {
	b, err := e.Marshal()
	if err != nil {
		return Host{}, fmt.Errorf("encoding host record: %w", err)
	}
	return Host{Record: b}, nil
}

// Open verifies the host record's signature and fields and returns it.
func (h Host) Open() (identity.HostRecord, error) {
	if len(h.Record) > MaxHostRecordSize {
		return identity.HostRecord{}, fmt.Errorf("%w: host record is %d bytes, limit %d", ErrTooLarge, len(h.Record), MaxHostRecordSize)
	}
	env, err := identity.UnmarshalEnvelope(h.Record)
	if err != nil {
		return identity.HostRecord{}, fmt.Errorf("%w: host record: %v", ErrMalformed, err)
	}
	if err := mustBeCanonical(h.Record, env); err != nil {
		return identity.HostRecord{}, fmt.Errorf("host record: %w", err)
	}
	r, err := identity.OpenHostRecord(env)
	if err != nil {
		return identity.HostRecord{}, sigErr("host record", err)
	}
	return r, nil
}

func (Host) Collection() Kind { return Domain }

// Key is "host/" and the record's peer ID, or "" if the record does not open.
func (h Host) Key() string {
	r, err := h.Open()
	if err != nil {
		return ""
	}
	return HostPrefix + r.ID().String()
}

func (h Host) Validate() error { _, err := h.Open(); return err }

// Right is a folder member's access.
type Right string

// Folder rights.
const (
	RightOwner     Right = "owner"
	RightReadOnly  Right = "ro"
	RightReadWrite Right = "rw"
)

// Valid reports whether r is one of the three rights.
func (r Right) Valid() bool { return r == RightOwner || r == RightReadOnly || r == RightReadWrite }

// Folder is a shared folder (an iFolder) in the Catalog (key "folder/ID").
type Folder struct {
	ID      string           `cbor:"1,keyasint"`
	Name    string           `cbor:"2,keyasint"`
	Owner   string           `cbor:"3,keyasint"` // user name
	Server  string           `cbor:"4,keyasint"` // hosting server's peer ID
	Members map[string]Right `cbor:"5,keyasint"` // user name -> right; includes the owner
	// IDs binds each member's name to the user ID it was granted to
	// (User.ID): a grant to a removed user is not one to a later user of
	// the same name. Members without an entry bind to the empty ID (users
	// from before IDs).
	IDs map[string]string `cbor:"6,keyasint,omitempty"`
	// FolderOptions: how members and the hosting server treat the
	// folder's contents (absent when all are off).
	FolderOptions
	// Hosts is the folder's hosting set as its home server recorded it
	// when the folder was made or its replicas last set: the home server
	// (Server) first, then the replica servers chosen, in chain order
	// after the home server (at most Replicas of them). Records from
	// before hosting sets were recorded have none: those are hosted as
	// they always were (FolderHosts).
	Hosts []string `cbor:"10,keyasint,omitempty"`
}

// FolderOptions are the options of a folder its owner or the
// administrator of its hosting server sets (State.SetFolderOptions).
type FolderOptions struct {
	// OutsideSymlinks: the hosting server and every member create the
	// symlinks of other members whose target is absolute or leaves the
	// folder, for a team whose members are all trusted. Off, they are
	// skipped (syncfs.PlanOptions.OutsideSymlinks).
	OutsideSymlinks bool `cbor:"7,keyasint,omitempty"`
	// Keep is the retention policy of the folder's history on its hosting
	// server, in the text form of folderstore.Policy (such as
	// "all:1d,daily:30d,weekly:365d"); "" for the default. The hosting
	// server checks it when it builds the change, and keeps the default
	// for text it cannot read.
	Keep string `cbor:"8,keyasint,omitempty"`
	// Replicas is how many servers beside the home server host the
	// folder (0: the home server alone). It is read with Hosts: a record
	// without a hosting set has DefaultReplicas whatever this says.
	Replicas int `cbor:"9,keyasint,omitempty"`
}

func (Folder) Collection() Kind { return Catalog }
func (f Folder) Key() string    { return FolderPrefix + f.ID }
func (f Folder) Validate() error {
	if err := validateID(f.ID); err != nil {
		return fmt.Errorf("folder: %w", err)
	}
	if err := validateText(f.Name); err != nil {
		return fmt.Errorf("folder %s name: %w", f.ID, err)
	}
	if f.Keep != "" {
		if err := validateText(f.Keep); err != nil {
			return fmt.Errorf("folder %s retention policy: %w", f.ID, err)
		}
	}
	if err := identity.ValidateName(f.Owner); err != nil {
		return fmt.Errorf("%w: folder %s owner: %v", ErrMalformed, f.ID, err)
	}
	if _, err := parseID(f.Server); err != nil {
		return fmt.Errorf("folder %s server: %w", f.ID, err)
	}
	if len(f.Members) > MaxFolderMembers {
		return fmt.Errorf("%w: folder %s has %d members, limit %d", ErrTooLarge, f.ID, len(f.Members), MaxFolderMembers)
	}
	if f.Members[f.Owner] != RightOwner {
		return fmt.Errorf("%w: folder %s: owner %s must be a member with right owner", ErrMalformed, f.ID, f.Owner)
	}
	for name, r := range f.Members {
		if err := identity.ValidateName(name); err != nil {
			return fmt.Errorf("%w: folder %s member: %v", ErrMalformed, f.ID, err)
		}
		if !r.Valid() {
			return fmt.Errorf("%w: folder %s member %s has right %q, want owner, ro or rw", ErrMalformed, f.ID, name, r)
		}
		if r == RightOwner && name != f.Owner {
			return fmt.Errorf("%w: folder %s: only the owner %s may have right owner, not %s", ErrMalformed, f.ID, f.Owner, name)
		}
	}
	for name, id := range f.IDs {
		if _, ok := f.Members[name]; !ok {
			return fmt.Errorf("%w: folder %s binds %s, who is not a member", ErrMalformed, f.ID, name)
		}
		if err := ValidateUserID(id); err != nil {
			return fmt.Errorf("folder %s member %s: %w", f.ID, name, err)
		}
	}
	return f.validateHosts()
}

// validateHosts checks the folder's replicas and hosting set: the home
// server first, each server once, no more replicas than Replicas.
func (f Folder) validateHosts() error {
	if f.Replicas < 0 || f.Replicas >= MaxChainServers {
		return fmt.Errorf("%w: folder %s has %d replicas, want 0 to %d", ErrMalformed, f.ID, f.Replicas, MaxChainServers-1)
	}
	if f.Hosts == nil {
		return nil
	}
	if len(f.Hosts) == 0 || len(f.Hosts) > f.Replicas+1 {
		return fmt.Errorf("%w: folder %s records %d hosting servers for %d replicas", ErrMalformed, f.ID, len(f.Hosts), f.Replicas)
	}
	if f.Hosts[0] != f.Server {
		return fmt.Errorf("%w: folder %s: its hosting set starts with %s, not its home server %s", ErrMalformed, f.ID, f.Hosts[0], f.Server)
	}
	for i, h := range f.Hosts {
		if _, err := parseID(h); err != nil {
			return fmt.Errorf("folder %s hosting server: %w", f.ID, err)
		}
		if slices.Contains(f.Hosts[:i], h) {
			return fmt.Errorf("%w: folder %s lists hosting server %s twice", ErrMalformed, f.ID, h)
		}
	}
	return nil
}

// ReportRecord is a generated report (key "report/ID").
type ReportRecord struct {
	ID      string `cbor:"1,keyasint"`
	Author  string `cbor:"2,keyasint"` // the generating server's peer ID
	Kind    string `cbor:"3,keyasint"` // what sort of report ("usage", ...)
	Created int64  `cbor:"4,keyasint"` // unix nanoseconds
	Content []byte `cbor:"5,keyasint"`
}

func (ReportRecord) Collection() Kind { return Report }
func (r ReportRecord) Key() string    { return ReportPrefix + r.ID }
func (r ReportRecord) Validate() error {
	if err := validateID(r.ID); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if _, err := parseID(r.Author); err != nil {
		return fmt.Errorf("report %s author: %w", r.ID, err)
	}
	if err := validateText(r.Kind); err != nil {
		return fmt.Errorf("report %s kind: %w", r.ID, err)
	}
	if len(r.Content) > MaxReportContent {
		return fmt.Errorf("%w: report %s content is %d bytes, limit %d", ErrTooLarge, r.ID, len(r.Content), MaxReportContent)
	}
	return nil
}
