package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// syncEngine is what the agent's folder commands need of the running
// node's folder sync engine: which folders to sync where, their state, and
// reverting a read-only member's local changes.
type syncEngine interface {
	SetFolders(ctx context.Context, folders map[string]string) error
	FolderStatus(ctx context.Context, id string) (folderStatusJSON, error)
	RevertFolder(ctx context.Context, id string) error
}

// errNoEngine is returned where a node has no sync engine.
var errNoEngine = errors.New("folder sync is not available in this build")

// folderStatusJSON is 'folder status --json': the engine's view of one
// folder (the field names are the engine's) plus its name and progress.
// The field names are stable.
type folderStatusJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Root string `json:"root"`
	// Role: "server", "rw" or "ro" (this device's right), "" while unknown.
	Role         string  `json:"role"`
	State        string  `json:"state"` // idle, scanning, syncing or error
	LocalFiles   int     `json:"local_files"`
	LocalDirs    int     `json:"local_dirs"`
	LocalBytes   int64   `json:"local_bytes"`
	NeedFiles    int     `json:"need_files"`
	NeedBytes    int64   `json:"need_bytes"`
	LocalChanges int     `json:"local_changes"`
	InSync       bool    `json:"in_sync"`
	LastError    string  `json:"last_error,omitempty"`
	Progress     float64 `json:"progress"` // 0 to 1: the share of the bytes that are here
}

// fillProgress sets Progress from the byte counts.
func (s *folderStatusJSON) fillProgress() {
	switch {
	case s.InSync && s.NeedBytes == 0 && s.NeedFiles == 0:
		s.Progress = 1
	case s.LocalBytes+s.NeedBytes > 0:
		s.Progress = float64(s.LocalBytes) / float64(s.LocalBytes+s.NeedBytes)
	default:
		s.Progress = 0
	}
}

// engineOf returns n's sync engine, or nil if it has none. A node that
// implements syncEngine (the tests' fake) is used as is; a *peer.Node is
// adapted through the methods the sync engine adds to it, found by name so
// that this command builds with and without them.
func engineOf(n any) syncEngine {
	if e, ok := n.(syncEngine); ok {
		return e
	}
	ne := nodeEngine{}
	switch s := n.(type) {
	case interface{ SetFolders(map[string]string) }:
		ne.set = func(_ context.Context, m map[string]string) error { s.SetFolders(m); return nil }
	case interface {
		SetFolders(context.Context, map[string]string) error
	}:
		ne.set = s.SetFolders
	case interface{ SetFolders(map[string]string) error }:
		ne.set = func(_ context.Context, m map[string]string) error { return s.SetFolders(m) }
	}
	if r, ok := n.(interface {
		RevertFolder(context.Context, string) error
	}); ok {
		ne.revert = r.RevertFolder
	}
	if m := reflect.ValueOf(n).MethodByName("FolderStatus"); m.IsValid() {
		t := m.Type()
		ctxType := reflect.TypeFor[context.Context]()
		errType := reflect.TypeFor[error]()
		if t.NumIn() == 2 && t.In(0) == ctxType && t.In(1).Kind() == reflect.String &&
			t.NumOut() >= 2 && t.Out(t.NumOut()-1) == errType {
			ne.status = func(ctx context.Context, id string) (folderStatusJSON, error) {
				out := m.Call([]reflect.Value{reflect.ValueOf(&ctx).Elem(), reflect.ValueOf(id)})
				if err, _ := out[len(out)-1].Interface().(error); err != nil {
					return folderStatusJSON{}, err
				}
				if len(out) == 3 && out[1].Kind() == reflect.Bool && !out[1].Bool() {
					return folderStatusJSON{}, fmt.Errorf("folder %s is not synced here", id)
				}
				var st folderStatusJSON
				b, err := json.Marshal(out[0].Interface())
				if err == nil {
					err = json.Unmarshal(b, &st)
				}
				return st, err
			}
		}
	}
	if ne.set == nil && ne.status == nil && ne.revert == nil {
		return nil
	}
	return ne
}

// nodeEngine adapts a node's sync methods; a missing one fails with
// errNoEngine.
type nodeEngine struct {
	set    func(context.Context, map[string]string) error
	status func(context.Context, string) (folderStatusJSON, error)
	revert func(context.Context, string) error
}

func (e nodeEngine) SetFolders(ctx context.Context, m map[string]string) error {
	if e.set == nil {
		return errNoEngine
	}
	return e.set(ctx, m)
}

func (e nodeEngine) FolderStatus(ctx context.Context, id string) (folderStatusJSON, error) {
	if e.status == nil {
		return folderStatusJSON{}, errNoEngine
	}
	return e.status(ctx, id)
}

func (e nodeEngine) RevertFolder(ctx context.Context, id string) error {
	if e.revert == nil {
		return errNoEngine
	}
	return e.revert(ctx, id)
}
