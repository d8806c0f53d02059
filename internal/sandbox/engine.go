package sandbox

import (
	"context"
	"errors"

	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
)

// folderNode is the node's folder sync methods.
type folderNode interface {
	SetFolders(ctx context.Context, folders map[string]string) error
	FolderStatus(ctx context.Context, id string) (foldersync.FolderStatus, error)
}

// ErrNoFolderSync: the node has no folder sync methods yet.
var ErrNoFolderSync = errors.New("this build's node does not sync folders")

func setFolders(ctx context.Context, n *peer.Node, m map[string]string) error {
	fn, ok := any(n).(folderNode)
	if !ok {
		return ErrNoFolderSync
	}
	return fn.SetFolders(ctx, m)
}

func folderStatus(ctx context.Context, n *peer.Node, id string) (foldersync.FolderStatus, error) {
	fn, ok := any(n).(folderNode)
	if !ok {
		return foldersync.FolderStatus{}, ErrNoFolderSync
	}
	return fn.FolderStatus(ctx, id)
}
