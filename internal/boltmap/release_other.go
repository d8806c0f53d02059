//go:build !linux

package boltmap

import "go.etcd.io/bbolt"

// Release does nothing here: see release_linux.go.
func Release(*bbolt.DB) {}

// ReleaseIn does nothing here: see release_linux.go.
func ReleaseIn(*bbolt.Tx) {}
