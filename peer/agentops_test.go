package peer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// startDevice logs user in from a new agent named name at server i and
// runs it until it and every server accept it as a device and it knows the
// user.
func startDevice(t *testing.T, c *peertest.PublicCluster, name string, i int, user, password string) *peer.Node {
	t.Helper()
	a := peertest.NewAgent(t, name)
	res, err := login(a, c.PublicP2P(i), user, password)
	if err != nil {
		t.Fatalf("login %s as %s: %v", name, user, err)
	}
	n := a.Start(res.Genesis, res.Cert)
	c.WaitFor(name+" accepted as "+user+"'s device everywhere", 10*time.Second, func() bool {
		if !validEverywhere(t, c, user, a.ID(), true) {
			return false
		}
		st, _, _ := n.DeviceStatus(context.Background())
		return st.Accepted
	})
	return n
}

// folderAt returns the folder id as host n sees it.
func folderAt(t *testing.T, n *peer.Node, id string) (collections.Folder, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := n.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st.Folder(id)
}

// TestAgentFolderOps: an agent creates a folder at its user's home server,
// shares it, the other user's agent sees it and leaves it; refusals for
// non-owners, the owner leaving, unknown users and folders.
func TestAgentFolderOps(t *testing.T) {
	c := loginCluster(t)
	ann := startDevice(t, c, "ann-laptop", 0, "ann", "ann's secret") // redirected to s2
	bob := startDevice(t, c, "bob-desk", 2, "bob", "bob's secret")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s2 := c.Members[1].Key.ID().String()

	f, err := ann.CreateFolder(ctx, "Photos")
	if err != nil {
		t.Fatalf("CreateFolder: %v", err)
	}
	if len(f.ID) != 16 || f.Name != "Photos" || f.Owner != "ann" || f.Server != s2 ||
		len(f.Members) != 1 || f.Members["ann"] != collections.RightOwner {
		t.Fatalf("CreateFolder = %+v; want a 16-hex ID, Photos, owner ann, server s2, members {ann: owner}", f)
	}
	// The agent's own copy holds it when CreateFolder returns.
	if got, ok := folderAt(t, ann, f.ID); !ok || got.Name != "Photos" {
		t.Fatalf("ann's state after CreateFolder: %+v, %v", got, ok)
	}
	if _, err := ann.CreateFolder(ctx, "Photos"); err == nil || !strings.Contains(err.Error(), "already has a folder named Photos") {
		t.Errorf("second CreateFolder(Photos) = %v; want 'already has a folder named Photos'", err)
	}

	if err := ann.ShareFolder(ctx, f.ID, "bob", collections.RightReadOnly); err != nil {
		t.Fatalf("ShareFolder(bob, ro): %v", err)
	}
	c.WaitFor("bob's desk to see the folder shared read-only", 10*time.Second, func() bool {
		got, ok := folderAt(t, bob, f.ID)
		return ok && got.Members["bob"] == collections.RightReadOnly
	})

	// Refusals.
	for _, tc := range []struct {
		what string
		err  error
		is   error
		want string
	}{
		{"bob shares ann's folder", bob.ShareFolder(ctx, f.ID, "bob", collections.RightReadWrite), peer.ErrFolderDenied, "only the owner of folder Photos, ann, shares it"},
		{"bob unshares ann", bob.UnshareFolder(ctx, f.ID, "ann"), peer.ErrFolderDenied, "only the owner"},
		{"ann leaves her own folder", ann.LeaveFolder(ctx, f.ID), peer.ErrFolderDenied, "ann owns folder Photos and cannot leave it"},
		{"ann shares with an unknown user", ann.ShareFolder(ctx, f.ID, "zed", collections.RightReadOnly), nil, "no user zed in the domain"},
		{"ann shares with herself", ann.ShareFolder(ctx, f.ID, "ann", collections.RightReadOnly), nil, "ann owns folder Photos"},
		{"ann shares an unknown folder", ann.ShareFolder(ctx, "0123456789abcdef", "bob", collections.RightReadOnly), peer.ErrNoSuchFolder, "0123456789abcdef"},
		{"a bad right", ann.ShareFolder(ctx, f.ID, "bob", collections.RightOwner), nil, `right "owner"`},
	} {
		if tc.err == nil || tc.is != nil && !errors.Is(tc.err, tc.is) || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error containing %q", tc.what, tc.err, tc.want)
		}
	}

	// Bob leaves; ann shares again read-write and unshares.
	if err := bob.LeaveFolder(ctx, f.ID); err != nil {
		t.Fatalf("bob LeaveFolder: %v", err)
	}
	if got, _ := folderAt(t, bob, f.ID); got.Members["bob"] != "" {
		t.Fatalf("bob still a member after leaving: %+v", got)
	}
	// A folder bob is no longer in is answered as no folder at all.
	if err := bob.LeaveFolder(ctx, f.ID); !errors.Is(err, peer.ErrNoSuchFolder) || strings.Contains(err.Error(), "Photos") {
		t.Errorf("bob leaves again: %v; want ErrNoSuchFolder, not naming the folder", err)
	}
	if err := ann.ShareFolder(ctx, f.ID, "bob", collections.RightReadWrite); err != nil {
		t.Fatalf("ShareFolder(bob, rw): %v", err)
	}
	if err := ann.UnshareFolder(ctx, f.ID, "bob"); err != nil {
		t.Fatalf("UnshareFolder(bob): %v", err)
	}
	if got, _ := folderAt(t, ann, f.ID); len(got.Members) != 1 {
		t.Errorf("members after unshare: %v; want only ann", got.Members)
	}
	if err := ann.UnshareFolder(ctx, f.ID, "bob"); err == nil || !strings.Contains(err.Error(), "bob is not a member") {
		t.Errorf("UnshareFolder(bob) again: %v; want 'not a member'", err)
	}
	c.WaitFor("every server to hold Photos with ann alone", 10*time.Second, func() bool {
		for i := range c.Members {
			got, ok := c.State(i).Folder(f.ID)
			if !ok || len(got.Members) != 1 {
				return false
			}
		}
		return true
	})

	// Bob's folder is hosted on his home server, s3; ann cannot share it.
	music, err := bob.CreateFolder(ctx, "Music")
	if err != nil {
		t.Fatalf("bob CreateFolder(Music): %v", err)
	}
	if music.Server != c.Members[2].Key.ID().String() {
		t.Errorf("Music hosted on %s; want s3", music.Server)
	}
	// ann is not in Music: her laptop is never sent it (it sees Games,
	// shared with her after Music was made), and to her Music does not
	// exist.
	games, err := bob.CreateFolder(ctx, "Games")
	if err != nil {
		t.Fatalf("bob CreateFolder(Games): %v", err)
	}
	if err := bob.ShareFolder(ctx, games.ID, "ann", collections.RightReadOnly); err != nil {
		t.Fatalf("ShareFolder(Games, ann): %v", err)
	}
	c.WaitFor("ann's laptop to see Games", 10*time.Second, func() bool { _, ok := folderAt(t, ann, games.ID); return ok })
	if _, ok := folderAt(t, ann, music.ID); ok {
		t.Errorf("ann's laptop holds bob's folder Music, which she is not in")
	}
	if err := ann.ShareFolder(ctx, music.ID, "ann", collections.RightReadWrite); !errors.Is(err, peer.ErrNoSuchFolder) {
		t.Errorf("ann shares bob's folder: %v; want ErrNoSuchFolder", err)
	}

	// A server is no agent: CreateFolder there says so.
	if _, err := c.Node(1).CreateFolder(ctx, "X"); !errors.Is(err, peer.ErrNotLoggedIn) {
		t.Errorf("CreateFolder at a server: %v; want ErrNotLoggedIn", err)
	}
}

// TestAgentOpsRefuseNonDevices: the requester is the authenticated peer.
// A Domain host that is not a device is answered "denied"; a host that is
// not a member at all (a guest on the public address) gets no answer.
func TestAgentOpsRefuseNonDevices(t *testing.T) {
	c := loginCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ann := startDevice(t, c, "ann-laptop", 1, "ann", "ann's secret")
	f, err := ann.CreateFolder(ctx, "Photos")
	if err != nil {
		t.Fatal(err)
	}

	// "kiosk" is in the Domain (so every server lets it connect) but no
	// user's device.
	kiosk := identitytest.Key("kiosk")
	env := identitytest.HostRecord(t, "kiosk", identity.RoleAgent)
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	u, err := collections.Put(collections.Host{Record: b})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(0, u); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(10 * time.Second)

	req, err := canon.Marshal(map[int]any{1: "share", 3: f.ID, 4: "bob", 5: "rw"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rawAgentRequest(ctx, kiosk, c.Members[1].Addr, c.Members[1].Key.ID(), req)
	if err != nil {
		t.Fatalf("kiosk's request: %v", err)
	}
	if resp[1] != "denied" || !strings.Contains(resp[2].(string), "is not a valid device") {
		t.Errorf("kiosk's request answered %v; want denied, not a valid device", resp)
	}

	// An agent that never logged in is a guest on the public address.
	stranger := identitytest.Key("stranger")
	if resp, err := rawAgentRequest(ctx, stranger, c.Public[1], c.Members[1].Key.ID(), req); err == nil {
		t.Errorf("a guest's request answered %v; want the stream reset", resp)
	}
	if got, _ := c.State(1).Folder(f.ID); len(got.Members) != 1 {
		t.Errorf("folder changed by refused requests: %v", got.Members)
	}
}

// rawAgentRequest sends one /baton/agent/1.0.0 request as key to server at
// addr and returns the decoded response.
func rawAgentRequest(ctx context.Context, key *identity.PrivateKey, addr string, server lpeer.ID, req []byte) (map[int]any, error) {
	h, err := libp2p.New(libp2p.Identity(key.Libp2p()), libp2p.NoListenAddrs)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	info, err := lpeer.AddrInfoFromString(addr + "/p2p/" + server.String())
	if err != nil {
		return nil, err
	}
	if err := h.Connect(ctx, *info); err != nil {
		return nil, err
	}
	s, err := h.NewStream(ctx, server, "/baton/agent/1.0.0")
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := msgio.NewVarintWriter(s).WriteMsg(req); err != nil {
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		return nil, err
	}
	b, err := msgio.NewVarintReaderSize(s, 1<<20).ReadMsg()
	if err != nil {
		return nil, err
	}
	var resp map[int]any
	if err := canon.Unmarshal(b, &resp, 1<<20); err != nil {
		return nil, err
	}
	return resp, nil
}
