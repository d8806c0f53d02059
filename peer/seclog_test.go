package peer_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/identity/identitytest"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// logBuffer is a host's log as JSON lines, written by its slog handler.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// find reports whether a record has message msg and every attribute of
// want (compared as text).
func (b *logBuffer) find(msg string, want map[string]string) bool {
	b.mu.Lock()
	text := b.buf.String()
	b.mu.Unlock()
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec["msg"] != msg {
			continue
		}
		ok := true
		for k, v := range want {
			if s, _ := rec[k].(string); !strings.Contains(s, v) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// TestSecurityEventsLogged: a failed and a successful login are in the
// home server's log with the source address; a device's revocation and a
// user's removal are in every server's log with the server that wrote
// them.
func TestSecurityEventsLogged(t *testing.T) {
	c := peertest.NewPublicCluster(t, 3, collections.DefaultFailover(3))
	logs := make([]*logBuffer, len(c.Members))
	for i := range logs {
		logs[i] = &logBuffer{}
	}
	c.Configure = func(m *peertest.Member, cfg *peer.Config) {
		cfg.PasswordKDF = identitytest.FastKDF
		cfg.GuestTimeout = time.Second
		for i := range c.Members {
			if c.Members[i] == m {
				cfg.Logger = slog.New(slog.NewJSONHandler(logs[i], nil))
			}
		}
	}
	c.StartAll()
	if m, _ := c.WaitMaster(20 * time.Second); m != 0 {
		t.Fatalf("master is %s, want s1", c.Members[m].Name)
	}
	putUser(t, c.Cluster, 0, "ann", 1)
	bob, _, err := c.State(0).AddUser("bob", c.Members[2].Key.ID(), "0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(0, bob); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(10 * time.Second)
	setPassword(t, c, 1, "ann", "ann's secret")
	s1, s2 := c.Members[0].Key.ID().String(), c.Members[1].Key.ID().String()

	thief := peertest.NewAgent(t, "thief")
	if _, err := login(thief, c.PublicP2P(1), "ann", "a guess"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	if !logs[1].find("login refused: wrong user name or password", map[string]string{"user": "ann", "device": thief.ID().String(), "source": "127.0.0.1"}) {
		t.Errorf("s2's log lacks the failed login with its source:\n%s", logs[1].buf.String())
	}
	laptop := startDevice(t, c, "ann-laptop", 1, "ann", "ann's secret").ID()
	laptopID := laptop.String()
	if !logs[1].find("device logged in", map[string]string{"user": "ann", "device": laptopID, "source": "127.0.0.1"}) {
		t.Errorf("s2's log lacks the login with its source")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if r, err := c.Node(1).RevokeDevice(ctx, laptop); err != nil || r.Queued {
		t.Fatalf("RevokeDevice: %+v, %v", r, err)
	}
	u, _, err := c.State(0).RemoveUser("bob", "")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.Submit(0, u); err != nil || r.Queued {
		t.Fatalf("removing bob: %+v, %v", r, err)
	}
	c.WaitFor("every server to log the revocation and the removal with their source", 10*time.Second, func() bool {
		for i := range c.Members {
			if !logs[i].find("device revoked", map[string]string{"device": laptopID, "user": "ann", "source": s2}) ||
				!logs[i].find("user removed", map[string]string{"user": "bob", "source": s1}) {
				return false
			}
		}
		return true
	})
}
