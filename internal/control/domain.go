package control

// The control API's endpoints: each reads the daemon's state, checks the
// request against it (so mistakes get a clear message rather than the
// master's rejection), and submits the updates.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/bytesize"
	"github.com/baton-sync/baton/peer"
)

// Wire types. The field names are stable: scripts read them with --json.
type (
	User struct {
		Name           string `json:"name"`
		HomeServer     string `json:"home_server"`
		HomeServerName string `json:"home_server_name"`
		// Quota: the bytes the user's folders may hold at their home
		// server (0 or absent: no bound).
		Quota int64 `json:"quota,omitempty"`
		// Admin: the user administers the domain (and may log in to a
		// server's console).
		Admin bool `json:"admin,omitempty"`
	}
	ChainServer struct {
		Position     int      `json:"position"` // 1-based place in the chain
		ID           string   `json:"id"`
		Name         string   `json:"name"`
		PublicAddrs  []string `json:"public_addrs"`
		PrivateAddrs []string `json:"private_addrs"`
	}
	Member struct {
		User  string `json:"user"`
		Right string `json:"right"` // owner, ro or rw
	}
	Folder struct {
		ID         string   `json:"id"`
		Name       string   `json:"name"`
		Owner      string   `json:"owner"`
		Server     string   `json:"server"`
		ServerName string   `json:"server_name"`
		Members    []Member `json:"members"` // the owner first, then by name
		// Hosts: the servers hosting it, its home server (Server) first,
		// then its replicas (collections.FolderHosts).
		Hosts []string `json:"hosts"`
		// Replicas: the folder option, how many servers beside the home
		// server host it (fewer while the chain has fewer).
		Replicas int `json:"replicas"`
		// OutsideSymlinks: the folder option (members' symlinks pointing
		// outside it are created).
		OutsideSymlinks bool `json:"outside_symlinks,omitempty"`
		// Keep: the folder's retention policy of its history ("" the
		// default).
		Keep string `json:"keep,omitempty"`
	}
	Report struct {
		ID         string    `json:"id"`
		Author     string    `json:"author"`
		AuthorName string    `json:"author_name"`
		Kind       string    `json:"kind"`
		Created    time.Time `json:"created"`
		Size       int       `json:"size"`
		Content    []byte    `json:"content,omitempty"` // only from GET /v1/reports/{id}
	}

	AddUserRequest struct {
		Name       string `json:"name"`
		HomeServer string `json:"home_server"`     // host name or peer ID
		Quota      int64  `json:"quota,omitempty"` // bytes; 0: no bound
		Admin      bool   `json:"admin,omitempty"`
	}
	// SetUserRequest changes a user's settings; one left out (null)
	// stays as it is.
	SetUserRequest struct {
		Quota *int64 `json:"quota,omitempty"` // bytes; 0 removes the bound
		Admin *bool  `json:"admin,omitempty"`
	}
	AddServerRequest struct {
		Record   []byte `json:"record"`   // signed host record (envelope bytes)
		Position int    `json:"position"` // 1-based; 0 = last
	}
	RemoveUserRequest struct {
		TransferTo string `json:"transfer_to,omitempty"` // the successor of the user's folders; "" archives them
	}
	CreateFolderRequest struct {
		Name            string `json:"name"`
		Owner           string `json:"owner"`
		OutsideSymlinks bool   `json:"outside_symlinks,omitempty"` // the folder option
		Keep            string `json:"keep,omitempty"`             // the retention policy; "" the default
		Replicas        *int   `json:"replicas,omitempty"`         // servers beside the home server; nil the default
	}
	// FolderOptionsRequest sets the options given; one left out (null,
	// "") stays as it is.
	FolderOptionsRequest struct {
		Folder          string `json:"folder"` // name or ID
		Owner           string `json:"owner"`  // optional: tells same-named folders apart
		OutsideSymlinks *bool  `json:"outside_symlinks,omitempty"`
		Keep            string `json:"keep,omitempty"` // a retention policy, or "default"
		Replicas        *int   `json:"replicas,omitempty"`
	}
	ShareFolderRequest struct {
		Folder string `json:"folder"` // name or ID
		Owner  string `json:"owner"`  // optional: tells same-named folders apart
		User   string `json:"user"`
		Rights string `json:"rights"` // ro or rw
	}
	GenerateReportRequest struct {
		Kind string `json:"kind"` // "usage" (the default) is the only kind
	}
)

// UsageReport is the Content of a "usage" report.
type UsageReport struct {
	Host      string           `json:"host"`
	ID        string           `json:"id"`
	Generated time.Time        `json:"generated"`
	Users     []string         `json:"users"` // users whose home server this is
	Folders   []UsageFolder    `json:"folders"`
	DataDir   string           `json:"data_dir"`
	DataBytes int64            `json:"data_bytes"`
	DataFiles map[string]int64 `json:"data_files"` // bytes per file, by path relative to DataDir
}

type UsageFolder struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Owner   string `json:"owner"`
	Members int    `json:"members"`
}

// hostName is id's host name in st, or the ID itself.
func hostName(st *collections.State, id string) string {
	pid, err := lpeer.Decode(id)
	if err != nil {
		return id
	}
	if r, ok := st.HostByID(pid); ok {
		return r.Name
	}
	return id
}

// resolveHost finds a member host by name or peer ID.
func resolveHost(st *collections.State, ref string) (identity.HostRecord, error) {
	if id, err := lpeer.Decode(ref); err == nil {
		if r, ok := st.HostByID(id); ok {
			return r, nil
		}
		return identity.HostRecord{}, errNotFound("no host %s in the domain", ref)
	}
	var found []identity.HostRecord
	for _, r := range st.Hosts() {
		if r.Name == ref {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		return identity.HostRecord{}, errNotFound("no host named %s in the domain", ref)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, r := range found {
		ids[i] = r.ID().String()
	}
	return identity.HostRecord{}, errConflict("%d hosts are named %s (%s): give the peer ID", len(found), ref, strings.Join(ids, ", "))
}

// resolveServer finds a server of the chain by name or peer ID.
func resolveServer(st *collections.State, ref string) (identity.HostRecord, error) {
	r, err := resolveHost(st, ref)
	if err != nil {
		return r, err
	}
	if !st.IsServer(r.ID()) {
		return r, errConflict("%s (%s) is not a server in the chain", r.Name, r.ID())
	}
	return r, nil
}

// requireMaster refuses a Domain change at a host that is not the master,
// before any other check: the command has to be run at the master anyway.
// While no master is known, or this host is still taking over (an election
// after a failure or a chain change), it waits until ctx ends for the role to
// settle. The node's Submit checks again.
func (s *Server) requireMaster(ctx context.Context) error {
	tick := time.NewTicker(masterPoll)
	defer tick.Stop()
	var last peer.Status
	for {
		st, err := s.d.Status(ctx)
		if err != nil {
			if ctx.Err() != nil && last.ID != "" { // the wait ended during the query
				return notMaster(last)
			}
			return err
		}
		last = st
		if st.Role == "master" {
			return nil
		}
		settled := st.Role == "agent" || (st.Master != "" && st.Master != st.ID)
		if settled {
			return notMaster(st)
		}
		select {
		case <-ctx.Done():
			return notMaster(st)
		case <-tick.C:
		}
	}
}

// masterPoll is how often requireMaster looks again while an election
// settles.
const masterPoll = 100 * time.Millisecond

func notMaster(st peer.Status) error {
	nm := &peer.NotMasterError{MasterName: st.MasterName}
	if st.Master != "" && st.Master != st.ID {
		if id, err := lpeer.Decode(st.Master); err == nil {
			nm.Master = id
		}
	}
	return nm
}

func (s *Server) listUsers(ctx context.Context, _ struct{}) ([]User, error) {
	st, err := s.d.State(ctx)
	if err != nil {
		return nil, err
	}
	out := []User{}
	for _, u := range st.Users() {
		out = append(out, User{Name: u.Name, HomeServer: u.HomeServer, HomeServerName: hostName(st, u.HomeServer), Quota: u.Quota, Admin: u.Admin})
	}
	return out, nil
}

func (s *Server) addUser(ctx context.Context, req AddUserRequest) (MutationResult, error) {
	if err := identity.ValidateName(req.Name); err != nil {
		return MutationResult{}, errInvalid("user name: %v", err)
	}
	sb := s.submitter()
	if err := s.requireMaster(ctx); err != nil {
		return MutationResult{}, err
	}
	st, err := s.d.State(ctx)
	if err != nil {
		return MutationResult{}, err
	}
	home, err := resolveServer(st, req.HomeServer)
	if err != nil {
		return MutationResult{}, err
	}
	if err := s.refuseWitness(ctx, home); err != nil {
		return MutationResult{}, err
	}
	if u, ok := st.User(req.Name); ok {
		return MutationResult{}, errConflict("user %s already exists (home server %s)", u.Name, hostName(st, u.HomeServer))
	}
	// A new identity, never given before. The change is conditional on
	// the record it replaces (none, or a removed user's): two adds of one
	// name, at two masters or at one, are never both acknowledged.
	id, err := randomUserID(s.rand)
	if err != nil {
		return MutationResult{}, err
	}
	if req.Quota < 0 {
		return MutationResult{}, errInvalid("quota %d: want 0 (none) or a number of bytes", req.Quota)
	}
	settings := collections.UserSettings{}
	if req.Quota > 0 {
		settings.Quota = &req.Quota
	}
	if req.Admin {
		settings.Admin = &req.Admin
	}
	u, _, err := st.AddUserWith(req.Name, home.ID(), id, RequestUser(ctx), settings)
	if err != nil {
		return MutationResult{}, builderErr(err)
	}
	if err := sb.submit(ctx, u); err != nil {
		if errors.Is(err, collections.ErrConflict) {
			return MutationResult{}, errConflict("user %s already exists: another change added it first", req.Name)
		}
		return MutationResult{}, err
	}
	done := fmt.Sprintf("user %s added (home server %s", req.Name, home.Name)
	if req.Quota > 0 {
		done += ", quota " + bytesize.Format(req.Quota)
	}
	if req.Admin {
		done += ", admin"
	}
	return sb.result(done + ")"), nil
}

// userChange is PATCH /v1/users/{name}.
type userChange struct {
	name string
	SetUserRequest
}

func readUserChange(r *http.Request) (userChange, error) {
	req := userChange{name: r.PathValue("name")}
	err := decodeBody(r, &req.SetUserRequest)
	return req, err
}

// setUser changes a user's quota or admin flag, asked by the server's
// operator or, through the console, by an admin (RequestUser).
func (s *Server) setUser(ctx context.Context, req userChange) (MutationResult, error) {
	switch {
	case req.Quota == nil && req.Admin == nil:
		return MutationResult{}, errInvalid("nothing to change: give a quota or the admin flag")
	case req.Quota != nil && *req.Quota < 0:
		return MutationResult{}, errInvalid("quota %d: want 0 (none) or a number of bytes", *req.Quota)
	}
	sb := s.submitter()
	if err := s.requireMaster(ctx); err != nil {
		return MutationResult{}, err
	}
	st, err := s.d.State(ctx)
	if err != nil {
		return MutationResult{}, err
	}
	if _, ok := st.User(req.name); !ok {
		return MutationResult{}, errNotFound("no user %s in the domain", req.name)
	}
	by := RequestUser(ctx)
	u, _, err := st.SetUser(req.name, by, collections.UserSettings{Quota: req.Quota, Admin: req.Admin})
	if err != nil {
		if errors.Is(err, collections.ErrNotAllowed) {
			return MutationResult{}, &apiError{CodeDenied, err.Error()}
		}
		return MutationResult{}, builderErr(err)
	}
	if err := sb.submit(ctx, u); err != nil {
		if errors.Is(err, collections.ErrConflict) {
			return MutationResult{}, errConflict("user %s changed meanwhile (another change came first): run the command again", req.name)
		}
		return MutationResult{}, err
	}
	var what []string
	if req.Quota != nil {
		if *req.Quota == 0 {
			what = append(what, "no quota")
		} else {
			what = append(what, "quota "+bytesize.Format(*req.Quota))
		}
	}
	if req.Admin != nil {
		if *req.Admin {
			what = append(what, "an admin")
		} else {
			what = append(what, "not an admin")
		}
	}
	s.log.Info("user changed", "user", req.name, "by", by, "source", requestSource(ctx))
	return sb.result(fmt.Sprintf("user %s: %s", req.name, strings.Join(what, ", "))), nil
}

// refuseWitness refuses server as a user's home server when it is known to
// be a witness, which takes no logins (and hosts no folders): this server's
// status lists the servers of the chain that said so when they connected.
func (s *Server) refuseWitness(ctx context.Context, server identity.HostRecord) error {
	st, err := s.d.Status(ctx)
	if err != nil {
		return err
	}
	if st.Chain == nil || !slices.Contains(st.Chain.WitnessIDs, server.ID().String()) {
		return nil
	}
	return errConflict("%s (%s) is a witness: it takes no logins and hosts no folders, so it cannot be a user's home server; choose another server", server.Name, server.ID())
}

func (s *Server) removeUser(ctx context.Context, req userRemoval) (MutationResult, error) {
	name := req.name
	sb := s.submitter()
	if err := s.requireMaster(ctx); err != nil {
		return MutationResult{}, err
	}
	st, err := s.d.State(ctx)
	if err != nil {
		return MutationResult{}, err
	}
	if _, ok := st.User(name); !ok {
		return MutationResult{}, errNotFound("no user %s in the domain", name)
	}
	u, _, err := st.RemoveUser(name, req.TransferTo)
	if err != nil {
		return MutationResult{}, builderErr(err)
	}
	if err := sb.submit(ctx, u); err != nil {
		if errors.Is(err, collections.ErrConflict) {
			return MutationResult{}, errConflict("user %s changed meanwhile (another change came first): run the command again", name)
		}
		return MutationResult{}, err
	}
	owned := 0
	for _, f := range st.Folders() {
		if f.Owner == name {
			owned++
		}
	}
	done := fmt.Sprintf("user %s removed: their devices revoked and their folder memberships dropped for good", name)
	switch {
	case owned > 0 && req.TransferTo != "":
		done += fmt.Sprintf("; %d folders they owned now belong to %s", owned, req.TransferTo)
	case owned > 0:
		done += fmt.Sprintf("; %d folders they owned are archived", owned)
	}
	s.log.Info("user removed", "user", name, "transfer_to", req.TransferTo, "folders", owned, "source", requestSource(ctx))
	return sb.result(done), nil
}

// randomUserID is a new user ID: 32 random hex characters.
func randomUserID(r io.Reader) (string, error) {
	var b [collections.UserIDSize / 2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("making a user ID: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// builderErr maps a refusal of a collections builder to the control API's
// kinds of error.
func builderErr(err error) error {
	switch {
	case errors.Is(err, collections.ErrNotFound):
		return errNotFound("%v", err)
	case errors.Is(err, collections.ErrExists), errors.Is(err, collections.ErrNotAllowed):
		return errConflict("%v", err)
	}
	return errInvalid("%v", err)
}

func (s *Server) listServers(ctx context.Context, _ struct{}) ([]ChainServer, error) {
	st, err := s.d.State(ctx)
	if err != nil {
		return nil, err
	}
	out := []ChainServer{}
	for i, id := range st.Chain().IDs() {
		sj := ChainServer{Position: i + 1, ID: id.String(), Name: id.String(), PublicAddrs: []string{}, PrivateAddrs: []string{}}
		if rec, ok := st.HostByID(id); ok {
			sj.Name, sj.PublicAddrs, sj.PrivateAddrs = rec.Name, append([]string{}, rec.PublicAddrs...), append([]string{}, rec.PrivateAddrs...)
		}
		out = append(out, sj)
	}
	return out, nil
}

func (s *Server) addServer(ctx context.Context, req AddServerRequest) (MutationResult, error) {
	host := collections.Host{Record: req.Record}
	rec, err := host.Open()
	if err != nil {
		return MutationResult{}, errInvalid("host record: %v", err)
	}
	if rec.Role != identity.RoleServer {
		return MutationResult{}, errInvalid("host %s (%s) has role %s; only servers join the chain", rec.Name, rec.ID(), rec.Role)
	}
	sb := s.submitter()
	if err := s.requireMaster(ctx); err != nil {
		return MutationResult{}, err
	}
	st, err := s.d.State(ctx)
	if err != nil {
		return MutationResult{}, err
	}
	c, err := st.AddServer(host, req.Position)
	if err != nil {
		return MutationResult{}, builderErr(err)
	}
	for _, u := range c.Updates {
		if err := sb.submit(ctx, u); err != nil {
			return MutationResult{}, err
		}
	}
	done := fmt.Sprintf("server %s (%s) added to the chain at position %d of %d", rec.Name, rec.ID(), c.Position, c.Servers)
	if c.Majority {
		done += "; majority failover is now on"
	}
	return sb.result(done), nil
}

func (s *Server) removeServer(ctx context.Context, ref string) (MutationResult, error) {
	sb := s.submitter()
	if err := s.requireMaster(ctx); err != nil {
		return MutationResult{}, err
	}
	st, err := s.d.State(ctx)
	if err != nil {
		return MutationResult{}, err
	}
	rec, err := resolveHost(st, ref)
	if err != nil {
		return MutationResult{}, err
	}
	c, err := st.RemoveServer(rec.ID(), s.d.ID())
	if err != nil {
		return MutationResult{}, builderErr(err)
	}
	for _, u := range c.Updates {
		if err := sb.submit(ctx, u); err != nil {
			return MutationResult{}, err
		}
	}
	if c.Position == 0 {
		return sb.result(fmt.Sprintf("server %s (%s) removed from the domain (it was no longer in the chain)", rec.Name, rec.ID())), nil
	}
	return sb.result(fmt.Sprintf("server %s (%s) removed from the chain and the domain", rec.Name, rec.ID())), nil
}

func (s *Server) listFolders(ctx context.Context, _ struct{}) ([]Folder, error) {
	st, err := s.d.State(ctx)
	if err != nil {
		return nil, err
	}
	out := []Folder{}
	for _, f := range st.Folders() {
		out = append(out, folderToJSON(st, f))
	}
	return out, nil
}

func folderToJSON(st *collections.State, f collections.Folder) Folder {
	fj := Folder{ID: f.ID, Name: f.Name, Owner: f.Owner, Server: f.Server, ServerName: hostName(st, f.Server), Members: []Member{},
		OutsideSymlinks: f.OutsideSymlinks, Keep: f.Keep, Hosts: []string{}, Replicas: f.Replicas}
	if f.Hosts == nil {
		fj.Replicas = collections.DefaultReplicas
	}
	for _, h := range st.FolderHosts(f) {
		fj.Hosts = append(fj.Hosts, h.String())
	}
	for u, right := range f.Members {
		fj.Members = append(fj.Members, Member{User: u, Right: string(right)})
	}
	sort.Slice(fj.Members, func(i, j int) bool {
		a, b := fj.Members[i], fj.Members[j]
		if (a.User == f.Owner) != (b.User == f.Owner) {
			return a.User == f.Owner
		}
		return a.User < b.User
	})
	return fj
}

// randomID is 16 random hex characters.
func randomID(r io.Reader) (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("making an ID: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func (s *Server) createFolder(ctx context.Context, req CreateFolderRequest) (MutationResult, error) {
	sb := s.submitter()
	st, err := s.d.State(ctx)
	if err != nil {
		return MutationResult{}, err
	}
	self := s.d.ID()
	if ds, err := s.d.Status(ctx); err != nil {
		return MutationResult{}, err
	} else if ds.Witness {
		return MutationResult{}, errConflict("this server is a witness: it hosts no folders (create the folder at the owner's home server, which cannot be a witness)")
	}
	u, ok := st.User(req.Owner)
	if !ok {
		return MutationResult{}, errNotFound("no user %s in the domain", req.Owner)
	}
	if u.HomeServer != self.String() {
		return MutationResult{}, errConflict("user %s's home server is %s: create the folder there", u.Name, hostName(st, u.HomeServer))
	}
	id, err := randomID(s.rand)
	if err != nil {
		return MutationResult{}, err
	}
	p, err := peer.ParseOptions(&req.OutsideSymlinks, req.Keep, req.Replicas)
	if err != nil {
		return MutationResult{}, errInvalid("%v", err)
	}
	up, f, err := st.CreateFolderWith(id, req.Name, req.Owner, self, p)
	if err != nil {
		return MutationResult{}, builderErr(err)
	}
	if err := sb.submit(ctx, up); err != nil {
		return MutationResult{}, err
	}
	return sb.result(fmt.Sprintf("folder %s (%s) created for %s %s%s", f.Name, f.ID, f.Owner, hostingText(st, f), noteText(p.CappedNote(f)))), nil
}

func (s *Server) shareFolder(ctx context.Context, req ShareFolderRequest) (MutationResult, error) {
	right := collections.Right(req.Rights)
	if right != collections.RightReadOnly && right != collections.RightReadWrite {
		return MutationResult{}, errInvalid("rights %q: want ro or rw", req.Rights)
	}
	sb := s.submitter()
	f, err := s.changeHosted(ctx, sb, req.Folder, req.Owner, "share it there", func(st *collections.State, f collections.Folder) (collections.Update, error) {
		if _, ok := st.User(req.User); !ok {
			return collections.Update{}, errNotFound("no user %s in the domain", req.User)
		}
		if req.User == f.Owner {
			return collections.Update{}, errConflict("%s owns folder %s", req.User, f.Name)
		}
		up, _, err := st.Share(f.ID, "", req.User, right)
		return up, err
	})
	if err != nil {
		return MutationResult{}, err
	}
	return sb.result(fmt.Sprintf("folder %s (%s) shared with %s (%s)", f.Name, f.ID, req.User, right)), nil
}

func (s *Server) setFolderOptions(ctx context.Context, req FolderOptionsRequest) (MutationResult, error) {
	p, err := peer.ParseOptions(req.OutsideSymlinks, req.Keep, req.Replicas)
	if err != nil {
		return MutationResult{}, errInvalid("%v", err)
	}
	if p.Empty() {
		return MutationResult{}, errInvalid("no option to set")
	}
	sb := s.submitter()
	var set collections.Folder
	f, err := s.changeHosted(ctx, sb, req.Folder, req.Owner, "set its options there", func(st *collections.State, f collections.Folder) (collections.Update, error) {
		up, nf, err := st.SetFolderOptions(f.ID, "", p)
		set = nf
		return up, err
	})
	if err != nil {
		return MutationResult{}, err
	}
	return sb.result(fmt.Sprintf("folder %s (%s) options set: %s%s", f.Name, f.ID, optionsText(set.FolderOptions), noteText(p.CappedNote(set)))), nil
}

// hostingText says where folder f is hosted: "on s1" or "on s1, replicas
// s2, s3".
func hostingText(st *collections.State, f collections.Folder) string {
	hosts := st.FolderHosts(f)
	text := "on " + hostName(st, f.Server)
	if len(hosts) < 2 {
		return text + ", no replica"
	}
	names := make([]string, 0, len(hosts)-1)
	for _, h := range hosts[1:] {
		names = append(names, hostName(st, h.String()))
	}
	return text + ", replicas " + strings.Join(names, ", ")
}

// noteText is "" or "; " and the note.
func noteText(note string) string {
	if note == "" {
		return ""
	}
	return "; " + note
}

// changeHosted builds a change of the folder ref (owned by owner if not
// "") that this server hosts with build, from the state as it stands, and
// submits it conditional on the folder record it replaces: a change made
// meanwhile (an owner's, through an agent) makes it fail in the log, and it
// is built again from the new state, so that neither is lost. It returns
// the folder as found for the change that was submitted. A builder's
// error is mapped to the control API's (builderErr); errors already of the
// API pass through.
func (s *Server) changeHosted(ctx context.Context, sb *submitter, ref, owner, elsewhere string, build func(*collections.State, collections.Folder) (collections.Update, error)) (collections.Folder, error) {
	var f collections.Folder
	err := peer.SubmitBuilt(ctx, func(ctx context.Context, _ int) (collections.Update, error) {
		st, err := s.d.State(ctx)
		if err != nil {
			return collections.Update{}, err
		}
		if f, err = hostedFolder(st, s.d.ID(), ref, owner, elsewhere); err != nil {
			return collections.Update{}, err
		}
		up, err := build(st, f)
		var ae *apiError
		if err != nil && !errors.As(err, &ae) {
			return collections.Update{}, builderErr(err)
		}
		return up, err
	}, sb.submit)
	return f, err
}

// optionsText describes a folder's options.
func optionsText(o collections.FolderOptions) string {
	text := "members' symlinks pointing outside the folder are skipped"
	if o.OutsideSymlinks {
		text = "members' symlinks pointing outside the folder are created"
	}
	if o.Keep == "" {
		text += "; history kept by the default policy"
	} else {
		text += "; history kept by the policy " + o.Keep
	}
	switch o.Replicas {
	case 0:
		text += "; hosted by the home server alone"
	case 1:
		text += "; 1 replica"
	default:
		text += fmt.Sprintf("; %d replicas", o.Replicas)
	}
	return text
}

// hostedFolder finds the folder named ref (its name or ID), owned by owner
// if not "", among those whose home server self is (where its Catalog
// record is written). If another server is, the error says which and ends
// with elsewhere ("share it there").
func hostedFolder(st *collections.State, self lpeer.ID, ref, owner, elsewhere string) (collections.Folder, error) {
	return findFolder(st, self, ref, owner, elsewhere, func(f collections.Folder) bool { return f.Server == self.String() })
}

// replicatedFolder is hostedFolder among the folders self syncs: those it
// hosts as their home server or as their replica.
func replicatedFolder(st *collections.State, self lpeer.ID, ref, owner, elsewhere string) (collections.Folder, error) {
	return findFolder(st, self, ref, owner, elsewhere, func(f collections.Folder) bool { return st.Hosting(f, self) })
}

// findFolder finds the folder named ref, owned by owner if not "", among
// those here says are this server's.
func findFolder(st *collections.State, self lpeer.ID, ref, owner, elsewhere string, isHere func(collections.Folder) bool) (collections.Folder, error) {
	var here, other []collections.Folder
	for _, f := range st.Folders() {
		if (f.Name != ref && f.ID != ref) || (owner != "" && f.Owner != owner) {
			continue
		}
		if isHere(f) {
			here = append(here, f)
		} else {
			other = append(other, f)
		}
	}
	switch {
	case len(here) == 0 && len(other) > 0:
		f := other[0]
		return collections.Folder{}, errConflict("folder %s (%s) is hosted on %s: %s", f.Name, f.ID, hostName(st, f.Server), elsewhere)
	case len(here) == 0:
		return collections.Folder{}, errNotFound("no folder %s on this server (%s)", ref, hostName(st, self.String()))
	case len(here) > 1:
		owners := make([]string, len(here))
		for i, f := range here {
			owners[i] = f.Owner
		}
		return collections.Folder{}, errConflict("%d folders named %s on this server (owners %s): give --owner", len(here), ref, strings.Join(owners, ", "))
	}
	return here[0], nil
}

func (s *Server) listReports(ctx context.Context, _ struct{}) ([]Report, error) {
	st, err := s.d.State(ctx)
	if err != nil {
		return nil, err
	}
	out := []Report{}
	for _, rep := range st.Reports() {
		rj := reportToJSON(st, rep)
		rj.Content = nil
		out = append(out, rj)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

func reportToJSON(st *collections.State, rep collections.ReportRecord) Report {
	return Report{
		ID:         rep.ID,
		Author:     rep.Author,
		AuthorName: hostName(st, rep.Author),
		Kind:       rep.Kind,
		Created:    time.Unix(0, rep.Created).UTC(),
		Size:       len(rep.Content),
		Content:    rep.Content,
	}
}

func (s *Server) showReport(ctx context.Context, id string) (Report, error) {
	st, err := s.d.State(ctx)
	if err != nil {
		return Report{}, err
	}
	rep, ok := st.ReportByID(id)
	if !ok {
		return Report{}, errNotFound("no report %s", id)
	}
	return reportToJSON(st, rep), nil
}

func (s *Server) generateReport(ctx context.Context, req GenerateReportRequest) (MutationResult, error) {
	if req.Kind == "" {
		req.Kind = "usage"
	}
	if req.Kind != "usage" {
		return MutationResult{}, errInvalid("report kind %q: the only kind is usage", req.Kind)
	}
	sb := s.submitter()
	st, err := s.d.State(ctx)
	if err != nil {
		return MutationResult{}, err
	}
	self := s.d.ID()
	if !st.IsServer(self) {
		return MutationResult{}, errConflict("this host is not a server in the chain: reports are generated by servers")
	}
	now := s.now()
	rep := UsageReport{
		Host:      hostName(st, self.String()),
		ID:        self.String(),
		Generated: now.UTC(),
		Users:     []string{},
		Folders:   []UsageFolder{},
		DataDir:   s.dataDir,
		DataFiles: map[string]int64{},
	}
	for _, u := range st.Users() {
		if u.HomeServer == self.String() {
			rep.Users = append(rep.Users, u.Name)
		}
	}
	for _, f := range st.Folders() {
		if f.Server == self.String() {
			rep.Folders = append(rep.Folders, UsageFolder{ID: f.ID, Name: f.Name, Owner: f.Owner, Members: len(f.Members)})
		}
	}
	rep.DataBytes, err = dirSizes(s.dataDir, rep.DataFiles)
	if err != nil {
		return MutationResult{}, fmt.Errorf("measuring the data directory: %w", err)
	}
	content, err := json.Marshal(rep)
	if err != nil {
		return MutationResult{}, err
	}
	if len(content) > collections.MaxReportContent {
		return MutationResult{}, errConflict("the usage report is %d bytes, over the %d-byte limit", len(content), collections.MaxReportContent)
	}
	id, err := randomID(s.rand)
	if err != nil {
		return MutationResult{}, err
	}
	if err := sb.put(ctx, collections.ReportRecord{
		ID: id, Author: self.String(), Kind: req.Kind, Created: now.UnixNano(), Content: content,
	}); err != nil {
		return MutationResult{}, err
	}
	return sb.result(fmt.Sprintf("report %s generated (%s, %d bytes)", id, req.Kind, len(content))), nil
}

// dirSizes adds the size of every regular file under dir to sizes (by
// slash-separated relative path) and returns the total. A missing dir is
// empty.
func dirSizes(dir string, sizes map[string]int64) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		sizes[filepath.ToSlash(rel)] = info.Size()
		total += info.Size()
		return nil
	})
	return total, err
}

// PromoteRequest is the body of POST /v1/servers/promote.
type PromoteRequest struct {
	Force bool `json:"force"`
}

func (s *Server) promoteServer(ctx context.Context, req PromoteRequest) (peer.Promotion, error) {
	if !req.Force {
		return peer.Promotion{}, errInvalid("a forced promotion needs force: true")
	}
	p, err := s.d.PromoteForce(ctx)
	if errors.Is(err, peer.ErrHasMaster) {
		return peer.Promotion{}, errConflict("%v", err)
	}
	return p, err
}
