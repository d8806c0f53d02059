package peer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer"
)

// sharesRounds is how many times the administrator's and the agent's
// shares race in TestConcurrentAdminAndAgentShares.
const sharesRounds = 24

// TestConcurrentAdminAndAgentShares: the administrator of ann's home
// server shares her folder (the control socket's way: the collections
// builder on the server's state, submitted with peer.SubmitBuilt) at the
// same moment as ann's agent shares it with someone else (the agent
// protocol, built and submitted by the same server). Whichever reaches the
// log second was built on the record the first replaced: it fails its
// condition there and is built again, so both grants are present at the
// end, on every server, in every round. The rounds start the two at
// varied offsets, so that each comes first in some and they overlap in
// others.
func TestConcurrentAdminAndAgentShares(t *testing.T) {
	c := loginCluster(t)
	ann := startDevice(t, c, "ann-laptop", 1, "ann", "ann's secret") // home s2
	const host = 1                                                   // s2, ann's home server, hosts her folders
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f, err := ann.CreateFolder(ctx, "Shared")
	if err != nil {
		t.Fatalf("CreateFolder: %v", err)
	}
	var users []string
	for i := range sharesRounds {
		users = append(users, fmt.Sprintf("adm%d", i), fmt.Sprintf("agt%d", i))
	}
	for k, name := range users {
		u, _, err := c.State(0).AddUser(name, c.Members[2].Key.ID(), fmt.Sprintf("%032x", k+1))
		if err != nil {
			t.Fatal(err)
		}
		if r, err := c.Submit(0, u); err != nil || r.Queued {
			t.Fatalf("adding user %s: %+v, %v", name, r, err)
		}
	}
	c.WaitConverged(20 * time.Second)
	server := c.Node(host)
	rng := rand.New(rand.NewPCG(1, 2))
	conflicts := 0
	for i := range sharesRounds {
		byAdmin, byAgent := fmt.Sprintf("adm%d", i), fmt.Sprintf("agt%d", i)
		adminDelay := time.Duration(rng.IntN(4000)) * time.Microsecond
		agentDelay := time.Duration(rng.IntN(4000)) * time.Microsecond
		var (
			wg                 sync.WaitGroup
			adminErr, agentErr error
			builds             int
		)
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			time.Sleep(adminDelay)
			adminErr = peer.SubmitBuilt(ctx, func(ctx context.Context, attempt int) (collections.Update, error) {
				builds = attempt
				st, err := server.State(ctx)
				if err != nil {
					return collections.Update{}, err
				}
				u, _, err := st.Share(f.ID, "", byAdmin, collections.RightReadWrite)
				return u, err
			}, func(ctx context.Context, u collections.Update) error {
				_, err := server.Submit(ctx, u)
				return err
			})
		}()
		go func() {
			defer wg.Done()
			<-start
			time.Sleep(agentDelay)
			agentErr = ann.ShareFolder(ctx, f.ID, byAgent, collections.RightReadOnly)
		}()
		close(start)
		wg.Wait()
		if adminErr != nil || agentErr != nil {
			t.Fatalf("round %d: the administrator's share: %v; the agent's: %v; want both done", i, adminErr, agentErr)
		}
		if builds > 1 {
			conflicts++
		}
		c.WaitFor(fmt.Sprintf("round %d: both grants on every server", i), 10*time.Second, func() bool {
			for j := range c.Members {
				got, ok := c.State(j).Folder(f.ID)
				if !ok || got.Members[byAdmin] != collections.RightReadWrite || got.Members[byAgent] != collections.RightReadOnly {
					return false
				}
			}
			return true
		})
	}
	got, _ := c.State(host).Folder(f.ID)
	if len(got.Members) != 1+2*sharesRounds {
		t.Errorf("Shared has %d members at the end; want ann and %d others: %v", len(got.Members), 2*sharesRounds, got.Members)
	}
	t.Logf("the administrator's share was built again in %d of %d rounds", conflicts, sharesRounds)
}
