//go:build !unix

package main

import "fmt"

// homeOwner: a system service is built for systemd alone.
func homeOwner(string) (usr, group string, err error) {
	return "", "", fmt.Errorf("finding the home's owner: %w", errNoSystemService)
}
