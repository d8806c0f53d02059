package peer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"
	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
)

// Errors callers branch on.
var (
	// ErrNotMaster: the change must be made at the master (Domain changes),
	// or this server is not master. NotMasterError says who is.
	ErrNotMaster = errors.New("not the master")
	// ErrNoMaster: no master is reachable now; the update waits in the
	// outbox and is sent when one is.
	ErrNoMaster = errors.New("no master reachable")
	// ErrRejected: the master (or this host) refused the update.
	ErrRejected = errors.New("update rejected")
	// ErrStopped: the node is not running.
	ErrStopped = errors.New("node not running")
)

// NotMasterError says that an operation needs the master, and which host is
// the master as far as this host knows ("" if none).
type NotMasterError struct {
	Master     lpeer.ID
	MasterName string
}

func (e *NotMasterError) Error() string {
	if e.Master == "" {
		return "domain changes are made at the master, and no master is reachable now"
	}
	return fmt.Sprintf("domain changes are made at the master: run this on %s (%s)", e.MasterName, e.Master)
}

func (e *NotMasterError) Unwrap() error { return ErrNotMaster }

// Config configures a Node. Key, Genesis and DataDir are required.
type Config struct {
	// Key is the host's identity.
	Key *identity.PrivateKey
	// Name is the host's name (for logs and status).
	Name string
	// Role is server or agent. A server must be in the genesis chain or be
	// added to the chain later; an agent never becomes master.
	Role identity.Role
	// Witness makes a server a witness: a voter of the chain that keeps
	// the consensus log and the collections (to verify the entries) but
	// hosts no folders, takes no logins (no login, renewal or agent
	// protocols, no guests) and never stays master: when it leads, it
	// hands leadership to a caught-up voter at once. It announces itself
	// to the other servers (they never hand it leadership, and refuse it
	// as a user's home server). Servers only.
	Witness bool
	// Genesis is the domain this host belongs to.
	Genesis collections.Genesis
	// DataDir holds the data files, the outbox and the persisted epoch.
	DataDir string
	// Listen are multiaddrs to listen on (e.g. /ip4/127.0.0.1/tcp/0).
	Listen []string
	// PublicAddrs and PrivateAddrs are announced to peers in addition to
	// (or, when set, instead of) the listen addresses.
	PublicAddrs, PrivateAddrs []string
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
	// TickInterval is the consensus engine's tick (default 100 ms): the
	// domain's failover settings are counted in it. A server that leads a
	// chain of itself alone ticks aloneTicks times less often, a host
	// without the consensus core coreLessTicks times less often.
	TickInterval time.Duration
	// SyncInterval is how often anti-entropy runs with each connected
	// server (default 3 s) on a host outside the chain; while the pulls
	// bring nothing they space out, up to eight times that. It also runs
	// on connect.
	SyncInterval time.Duration
	// WatchDebounce is the quiet time before a changed data file is checked
	// (default 100 ms).
	WatchDebounce time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	// OnApplied, if set, is called on the node's goroutine each time a
	// certified update changes this host's state (from gossip, anti-entropy,
	// a receipt, or this master's own certification), after it is stored.
	// It must return quickly and must not call the Node's methods (that
	// would deadlock). For tests, benchmarks and programs embedding a node.
	OnApplied func(collections.Certified)
	// OnCommit, if set, is called with the time a Submit took when the
	// update was acknowledged (committed on a majority of the chain's
	// voters and certified): the commit latency seen by this host. It is
	// called on Submit's goroutine and must be safe for concurrent use.
	OnCommit func(time.Duration)
	// Bandwidth, if set, counts the bytes the libp2p host sends and
	// receives (libp2p.BandwidthReporter), e.g. metrics.NewBandwidthCounter().
	Bandwidth metrics.Reporter

	// PublicListen are a server's public listen multiaddrs, each with an
	// IP, a TCP or UDP transport and an explicit port; they are listened on
	// in addition to Listen. Hosts that are not members (agents not yet
	// logged in) connecting to one of them are admitted as guests, who may
	// only use the login protocol. When empty, a Listen address is public
	// if its port is that of an announced PublicAddrs entry and of no
	// PrivateAddrs entry. Private addresses and agents never admit guests.
	PublicListen []string
	// GuestTimeout is how long a guest may stay connected without becoming
	// a member (default 30 s).
	GuestTimeout time.Duration
	// DeviceValidity is how long the device certificates a server issues
	// are valid (default 7 days). Agents renew theirs half way through.
	DeviceValidity time.Duration
	// PasswordKDF are the argon2id parameters of new password hashes
	// (default DefaultPasswordKDF).
	PasswordKDF identity.KDFParams
	// DeviceCert is an agent's signed device certificate (LoginResult.Cert).
	DeviceCert []byte
	// OnDeviceCert, if set, is called on the node's goroutine with an
	// agent's renewed certificate, for the caller to store in place of
	// DeviceCert. It must return quickly and must not call the Node's
	// methods.
	OnDeviceCert func(cert []byte)

	// Folders are the folders an agent syncs from the start: folder ID ->
	// directory (Node.SetFolders changes them). A server syncs every folder
	// it hosts, in DataDir/folders/ID.
	Folders map[string]string
	// OutsideSymlinks reports whether a folder takes other hosts' symlinks
	// whose target is absolute or leaves the folder
	// (foldersync.Config.OutsideSymlinks); nil: no folder does. It is
	// called at every apply and must return quickly.
	OutsideSymlinks func(folder string) bool
	// WindowsNames reports whether a folder keeps to the names Windows can
	// hold (foldersync.Config.WindowsNames; always so on Windows); nil: no
	// folder opts in. It is called at every apply and must return quickly.
	WindowsNames func(folder string) bool

	// NoLAN turns off an agent's mDNS discovery of the other member
	// devices of its folders on the local network (on by default for
	// agents; servers never run it).
	NoLAN bool
	// NoRelay turns off an agent's use of the servers' circuit relays:
	// it makes no reservation there and reaches other member devices only
	// directly (on by default for agents).
	NoRelay bool
	// Peers are multiaddrs with a /p2p/ peer ID of other devices an agent
	// keeps connected to, when the Domain shows them as devices of users
	// it shares a folder with: for networks without multicast. Agents
	// only.
	Peers []string

	folders *folderRuntime // set by New: folder sync, shared with the driver
}

func (c *Config) setDefaults() {
	if c.TickInterval <= 0 {
		c.TickInterval = DefaultTickInterval
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = 3 * time.Second
	}
	if c.WatchDebounce <= 0 {
		c.WatchDebounce = 100 * time.Millisecond
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Role == "" {
		c.Role = identity.RoleServer
	}
	if c.GuestTimeout <= 0 {
		c.GuestTimeout = 30 * time.Second
	}
	if c.DeviceValidity <= 0 {
		c.DeviceValidity = 7 * 24 * time.Hour
	}
	if c.PasswordKDF == (identity.KDFParams{}) {
		c.PasswordKDF = DefaultPasswordKDF
	}
	c.folders = newFolderRuntime(c.Folders)
}

// Validate checks the required fields.
func (c *Config) Validate() error {
	if c.Key == nil {
		return errors.New("node config: no host key")
	}
	if c.Genesis.Marshal() == nil {
		return errors.New("node config: no domain genesis")
	}
	if c.DataDir == "" {
		return errors.New("node config: no data directory")
	}
	if c.Role != identity.RoleServer && c.Role != identity.RoleAgent {
		return fmt.Errorf("node config: role %q, want server or agent", c.Role)
	}
	if c.Witness && c.Role != identity.RoleServer {
		return errors.New("node config: a witness is a server")
	}
	if c.Witness && len(c.PublicListen) > 0 {
		return errors.New("node config: a witness takes no logins: no public listen addresses")
	}
	if len(c.Peers) > 0 && c.Role != identity.RoleAgent {
		return errors.New("node config: peers are for agents: servers dial the chain")
	}
	for _, a := range c.Peers {
		if _, err := lpeer.AddrInfoFromString(a); err != nil {
			return fmt.Errorf("node config: peer %q is not a multiaddr ending in /p2p/ID: %v", a, err)
		}
	}
	if err := checkKDF(c.PasswordKDF); c.PasswordKDF != (identity.KDFParams{}) && err != nil {
		return fmt.Errorf("node config: password hashing: %w", err)
	}
	if _, err := c.guestEndpoints(); err != nil {
		return fmt.Errorf("node config: %w", err)
	}
	if len(c.DeviceCert) > 0 {
		dc, err := collections.OpenDeviceCert(c.DeviceCert)
		if err != nil {
			return fmt.Errorf("node config: device certificate: %w", err)
		}
		if dc.DeviceID() != c.Key.ID() {
			return fmt.Errorf("node config: the device certificate is for %s, not this host (%s)", dc.Device, c.Key.ID())
		}
	}
	return nil
}

// DefaultTickInterval is Config.TickInterval's default.
const DefaultTickInterval = 100 * time.Millisecond

// Status is a snapshot of a running node, for `baton status`.
type Status struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	Role string `json:"role"` // master, slave, candidate or agent
	// Witness: this server is a witness (Config.Witness).
	Witness    bool   `json:"witness,omitempty"`
	Master     string `json:"master"`
	MasterName string `json:"master_name"`
	// Epoch is the master's term in the consensus engine.
	Epoch uint64 `json:"epoch"`
	// Chain is the consensus engine's view, on the servers of the chain.
	Chain  *ChainStatus `json:"chain,omitempty"`
	Domain string       `json:"domain"`
	Listen []string     `json:"listen"`
	Peers  []PeerStatus `json:"peers"`
	// Relays (agents) are the servers at whose circuit relay this agent
	// holds a reservation: fellow devices reach it through them.
	Relays      []string                    `json:"relays,omitempty"`
	Collections map[string]CollectionStatus `json:"collections"`
	Outbox      int                         `json:"outbox"`
	Quarantined []QuarantineEvent           `json:"quarantined"`
	Counters    Counters                    `json:"counters"`
}

// ChainStatus is a server's view of the chain's consensus.
type ChainStatus struct {
	Term    uint64 `json:"term"`
	Commit  uint64 `json:"commit"`
	Applied uint64 `json:"applied"`
	// Leader is the master's peer ID ("" while there is none), LeaderName
	// its name.
	Leader     string `json:"leader"`
	LeaderName string `json:"leader_name"`
	// Voters and Learners are the names of the servers in each role of
	// the raft configuration, in chain order.
	Voters   []string `json:"voters"`
	Learners []string `json:"learners"`
	// Witnesses are the names of the servers of the chain known to be
	// witnesses (this one, and those it is or was lately connected to).
	Witnesses  []string `json:"witnesses"`
	WitnessIDs []string `json:"witness_ids"`
	// Warning says what the chain cannot survive, when it is too small,
	// and what a forced promotion left to look at.
	Warning string `json:"warning,omitempty"`
	// Generation counts the forced promotions of the log's history.
	Generation uint64 `json:"generation,omitempty"`
}

// Counters count, since the node started, what happened to the certified
// updates that reached it. They make rejection and anti-entropy observable
// (in status and in tests).
type Counters struct {
	// GossipApplied: updates from gossip that changed the state.
	GossipApplied int64 `json:"gossip_applied"`
	// GossipHeld: gossiped updates already held (duplicate or superseded),
	// which change nothing: replays land here.
	GossipHeld int64 `json:"gossip_held"`
	// GossipRefused: gossip messages refused: malformed, a bad master or
	// author signature, certified or published by a host outside the
	// chain, published (on a host outside the chain) by another host than
	// the master it follows, or breaking the write rules.
	GossipRefused int64 `json:"gossip_refused"`
	// SyncPulls: anti-entropy pulls that completed.
	SyncPulls int64 `json:"sync_pulls"`
	// SyncReceived: certified updates received in pull responses (only
	// what this host's summary said it lacked).
	SyncReceived int64 `json:"sync_received"`
	// SyncApplied: of those, the updates that changed the state.
	SyncApplied int64 `json:"sync_applied"`
	// SyncServed: certified updates sent in answer to other hosts' pulls.
	SyncServed int64 `json:"sync_served"`
	// DialFailures: dials of chain servers that failed (this host then
	// waits a growing, jittered time before the next, unless it hears
	// from the server again).
	DialFailures int64 `json:"dial_failures"`
}

// PeerStatus is one connected peer.
type PeerStatus struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Addr    string `json:"addr"`
	Network string `json:"network"` // "private", "public" or "other": which advertised address the connection uses
	// Guest: a host that is not a member, connected to a public address
	// to log in.
	Guest bool `json:"guest,omitempty"`
	// Relayed: connected only through a server's relay (a limited
	// connection: indexes and notifications, no blocks).
	Relayed bool `json:"relayed,omitempty"`
}

// CollectionStatus describes one collection.
type CollectionStatus struct {
	Records    int       `json:"records"`
	Digest     string    `json:"digest"`
	LastUpdate time.Time `json:"last_update"`
}

// QuarantineEvent records a data file that changed behind the node's back
// and did not verify, and where it was moved.
type QuarantineEvent struct {
	Time       time.Time `json:"time"`
	Collection string    `json:"collection"`
	File       string    `json:"file"`
	MovedTo    string    `json:"moved_to"`
	Reason     string    `json:"reason"`
}

// Receipt is the result of a submitted update.
type Receipt struct {
	// Certified is the master-certified update; zero if Queued.
	Certified collections.Certified
	// Queued is set when no master acknowledged in time: the update is in
	// the durable outbox and will be sent when a master is reachable.
	Queued bool
}
