package main

import (
	"context"
	"errors"
	"testing"
)

// engineStatus stands in for the sync engine's own status type.
type engineStatus struct {
	ID        string `json:"id"`
	Root      string `json:"root"`
	State     string `json:"state"`
	NeedFiles int    `json:"need_files"`
	NeedBytes int64  `json:"need_bytes"`
	InSync    bool   `json:"in_sync"`
	Extra     string `json:"extra"`
}

// syncNode has the sync methods as a node might: no context on
// SetFolders, its own status type.
type syncNode struct {
	set      map[string]string
	reverted string
}

func (n *syncNode) SetFolders(m map[string]string) { n.set = m }

func (n *syncNode) FolderStatus(_ context.Context, id string) (engineStatus, error) {
	if id != "f1" {
		return engineStatus{}, errors.New("folder not synced here")
	}
	return engineStatus{ID: id, Root: "/x", State: "syncing", NeedFiles: 2, NeedBytes: 5, Extra: "ignored"}, nil
}

func (n *syncNode) RevertFolder(_ context.Context, id string) error { n.reverted = id; return nil }

// statusOnly has a status method that also says whether the folder is known.
type statusOnly struct{}

func (statusOnly) FolderStatus(_ context.Context, id string) (engineStatus, bool, error) {
	return engineStatus{ID: id, InSync: true}, id == "f1", nil
}

func TestEngineOf(t *testing.T) {
	ctx := context.Background()
	if e := engineOf(struct{}{}); e != nil {
		t.Errorf("engineOf(a node without sync methods) = %v; want nil", e)
	}

	n := &syncNode{}
	e := engineOf(n)
	if e == nil {
		t.Fatal("engineOf(a node with sync methods) = nil")
	}
	if err := e.SetFolders(ctx, map[string]string{"f1": "/x"}); err != nil || n.set["f1"] != "/x" {
		t.Errorf("SetFolders: %v, node got %v", err, n.set)
	}
	st, err := e.FolderStatus(ctx, "f1")
	if err != nil || st.ID != "f1" || st.Root != "/x" || st.State != "syncing" || st.NeedFiles != 2 || st.NeedBytes != 5 {
		t.Errorf("FolderStatus(f1) = %+v, %v", st, err)
	}
	if _, err := e.FolderStatus(ctx, "f2"); err == nil || err.Error() != "folder not synced here" {
		t.Errorf("FolderStatus(f2) error = %v; want the node's", err)
	}
	if err := e.RevertFolder(ctx, "f1"); err != nil || n.reverted != "f1" {
		t.Errorf("RevertFolder: %v, node reverted %q", err, n.reverted)
	}

	e = engineOf(statusOnly{})
	if st, err := e.FolderStatus(ctx, "f1"); err != nil || !st.InSync {
		t.Errorf("FolderStatus(f1) with a found flag = %+v, %v", st, err)
	}
	if _, err := e.FolderStatus(ctx, "f2"); err == nil {
		t.Error("FolderStatus(f2) with found false: no error")
	}
	if err := e.SetFolders(ctx, nil); !errors.Is(err, errNoEngine) {
		t.Errorf("SetFolders on a node without it = %v; want errNoEngine", err)
	}
	if err := e.RevertFolder(ctx, "f1"); !errors.Is(err, errNoEngine) {
		t.Errorf("RevertFolder on a node without it = %v; want errNoEngine", err)
	}
}
