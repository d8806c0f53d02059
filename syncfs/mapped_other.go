//go:build !linux

package syncfs

import "go.etcd.io/bbolt"

// dropMapped does nothing here: see mapped_linux.go.
func dropMapped(*bbolt.DB) {}
