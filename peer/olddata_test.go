package peer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/peertest"
)

// TestOldDataDirRefused: a server whose data directory was written by the
// failover protocol that came before the consensus engine (an epoch file,
// no raft log) does not start, and the error says what to do.
func TestOldDataDirRefused(t *testing.T) {
	c := peertest.NewCluster(t, 3, collections.DefaultFailover(3))
	m := c.Members[0]
	if err := os.MkdirAll(m.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.DataDir, "epoch"), []byte("7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := peer.New(peer.Config{Key: m.Key, Name: m.Name, Role: m.Role, Genesis: c.Genesis, DataDir: m.DataDir, Listen: []string{m.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = n.Run(ctx)
	if !errors.Is(err, peer.ErrOldDataDir) {
		t.Fatalf("Run = %v; want ErrOldDataDir", err)
	}
	if !strings.Contains(err.Error(), "domain join") || !strings.Contains(err.Error(), m.DataDir) {
		t.Errorf("the error does not name the directory and what to do: %v", err)
	}
	if _, err := os.Stat(filepath.Join(m.DataDir, "raft.db")); err == nil {
		t.Errorf("a raft log was created in the old data directory")
	}
}
