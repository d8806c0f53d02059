package console

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
)

// fakeSource is a host whose status the test changes.
type fakeSource struct {
	mu      sync.Mutex
	status  peer.Status
	servers []control.ChainServer
	users   []control.User
	folders []control.Folder
	fstatus map[string]control.FolderStatus
	devices []peer.DeviceInfo
	device  control.AgentDevice                 // an agent's login
	calls   []apiCall                           // what the fake API was asked to change
	notHere map[string]bool                     // an agent's folders not synced here
	history map[string][]control.HistoryVersion // folder ID -> versions, oldest first
}

func (f *fakeSource) takeCalls() []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func newFakeServer() *fakeSource {
	return &fakeSource{
		status: peer.Status{Name: "s1", ID: "S1", Role: "master", Master: "S1", MasterName: "s1", Epoch: 3, Domain: "test",
			Chain:       &peer.ChainStatus{Term: 3, Commit: 42, Applied: 42, Leader: "S1", LeaderName: "s1", Voters: []string{"s1", "s2"}},
			Peers:       []peer.PeerStatus{{ID: "S2", Name: "s2"}, {ID: "A1", Name: "laptop"}, {ID: "G1", Guest: true}},
			Quarantined: []peer.QuarantineEvent{{Collection: "domain", File: "domain.dat", Reason: "bad signature"}}},
		servers: []control.ChainServer{{Position: 1, ID: "S1", Name: "s1"}, {Position: 2, ID: "S2", Name: "s2"}},
		users:   []control.User{{Name: "alice", HomeServer: "S1", HomeServerName: "s1"}},
		devices: []peer.DeviceInfo{{ID: "D1", User: "alice", Name: "alice-laptop", ServerName: "s1", Valid: true}},
		folders: []control.Folder{
			{ID: "F1", Name: "docs", Owner: "alice", Server: "S1", Hosts: []string{"S1", "S2"}, Members: []control.Member{{User: "alice", Right: "owner"}}},
			{ID: "F2", Name: "elsewhere", Owner: "bob", Server: "S2", Hosts: []string{"S2", "S3"}},
			{ID: "F9", Name: "replicated", Owner: "carol", Server: "S3", Hosts: []string{"S3", "S1"}},
		},
		fstatus: map[string]control.FolderStatus{
			"F1": {ID: "F1", Name: "docs", State: "syncing", NeedFiles: 2, NeedBytes: 2048, LocalFiles: 5, LocalBytes: 5000, Fetched: 100, Copied: 10, Resumed: 5, Served: 7, Progress: 0.7},
		},
	}
}

func (f *fakeSource) set(change func(f *fakeSource)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

func (f *fakeSource) Status(context.Context) (peer.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, nil
}

func (f *fakeSource) Servers(context.Context) ([]control.ChainServer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.servers, nil
}

func (f *fakeSource) Users(context.Context) ([]control.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.users, nil
}

func (f *fakeSource) Folders(context.Context) ([]control.Folder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.folders, nil
}

func (f *fakeSource) AgentDevice(context.Context) (control.AgentDevice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.device, nil
}

func (f *fakeSource) AgentFolders(context.Context) ([]control.AgentFolder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []control.AgentFolder
	for _, x := range f.folders {
		af := control.AgentFolder{ID: x.ID, Name: x.Name, Owner: x.Owner, Members: x.Members, Right: "rw", Path: "/tmp/" + x.Name}
		for _, m := range x.Members {
			if m.User == "alice" {
				af.Right = m.Right
			}
		}
		if f.notHere[x.ID] {
			af.Path = ""
		}
		out = append(out, af)
	}
	return out, nil
}

func (f *fakeSource) FolderStatus(_ context.Context, ref control.FolderRefRequest) (control.FolderStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.fstatus[ref.Folder]
	if !ok {
		return control.FolderStatus{}, &control.RemoteError{Code: control.CodeConflict, Msg: "not synced yet"}
	}
	return st, nil
}

func (f *fakeSource) Devices(_ context.Context, user string) ([]peer.DeviceInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []peer.DeviceInfo
	for _, d := range f.devices {
		if d.User == user {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fakeSource) FolderHistory(_ context.Context, req control.HistoryRequest) (control.FolderHistory, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs, ok := f.history[req.Folder]
	if !ok {
		return control.FolderHistory{}, &control.RemoteError{Code: control.CodeConflict, Msg: "no history kept for folder " + req.Folder}
	}
	out := control.FolderHistory{ID: req.Folder, Path: req.Path}
	for _, v := range vs {
		if req.Path == "" || v.Path == req.Path || strings.HasPrefix(v.Path, req.Path+"/") {
			out.Versions = append(out.Versions, v)
		}
	}
	return out, nil
}

// apiCall is a request the fake control API received.
type apiCall struct {
	Method, Path string
	Body         map[string]any
}

// fakeAPI stands for the control API: it answers GET /v1/status, and
// records and answers the changes the pages make.
func fakeAPI(src *fakeSource) http.Handler {
	mux := http.NewServeMux()
	record := func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		src.mu.Lock()
		src.calls = append(src.calls, apiCall{r.Method, r.URL.Path, body})
		src.mu.Unlock()
		json.NewEncoder(w).Encode(control.AgentResult{Done: "did " + r.Method + " " + r.URL.Path})
	}
	for _, p := range []string{"DELETE /v1/users/{name}", "DELETE /v1/devices/{id}", "POST /v1/agent/folders",
		"POST /v1/agent/folders/share", "POST /v1/agent/folders/accept", "POST /v1/agent/folders/leave", "POST /v1/agent/folders/revert",
		"POST /v1/agent/folders/unshare", "POST /v1/agent/folders/options", "POST /v1/folders/restore", "POST /v1/users/{name}/password"} {
		mux.HandleFunc(p, record)
	}
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		st, _ := src.Status(r.Context())
		json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("POST /v1/users", record)
	return mux
}

const testToken = "0123456789abcdef0123456789abcdef-test"

// newTestConsole is a console over src with a fast poll.
func newTestConsole(t *testing.T, src *fakeSource) (*Console, *Monitor) {
	t.Helper()
	mon := NewMonitor(nil)
	api := fakeAPI(src)
	c, err := New(Config{API: api, Source: src, Actions: control.NewHandlerClient("test", api), Monitor: mon, Token: testToken, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c, mon
}

func consoleServer(pos int, id, name string) control.ChainServer {
	return control.ChainServer{Position: pos, ID: id, Name: name}
}

func consoleMember(user, right string) control.Member {
	return control.Member{User: user, Right: right}
}

// newTestLog is a logger whose records reach mon (and nowhere else).
func newTestLog(mon *Monitor) *slog.Logger { return slog.New(mon.LogHandler(slog.DiscardHandler)) }

func consoleFolder(id, name, owner string, members ...control.Member) control.Folder {
	return control.Folder{ID: id, Name: name, Owner: owner, Server: "S1", Hosts: []string{"S1"}, Members: members}
}

func consoleStatus(id, state string, localChanges int) control.FolderStatus {
	return control.FolderStatus{ID: id, State: state, LocalChanges: localChanges, InSync: true, Progress: 1}
}
