//go:build !linux

package durable

import (
	"errors"
	"os"
)

// Batched is false where there is no syncfs(2): each file and directory
// written is fsynced on its own.
const Batched = false

// SyncFS fails where there is no syncfs(2).
func SyncFS(*os.File) error { return errors.New("syncfs: not available") }
