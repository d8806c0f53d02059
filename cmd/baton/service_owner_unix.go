//go:build unix

package main

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// homeOwner is the user and group that own the directory home: the system
// unit runs the daemon as them.
func homeOwner(home string) (usr, group string, err error) {
	fi, err := os.Stat(home)
	if err != nil {
		return "", "", fmt.Errorf("finding the home's owner: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", "", fmt.Errorf("finding the home's owner: no owner in %s's file information", home)
	}
	uid, gid := strconv.FormatUint(uint64(st.Uid), 10), strconv.FormatUint(uint64(st.Gid), 10)
	u, err := user.LookupId(uid)
	if err != nil {
		return "", "", fmt.Errorf("finding the home's owner (uid %s): %w", uid, err)
	}
	g, err := user.LookupGroupId(gid)
	if err != nil {
		return "", "", fmt.Errorf("finding the home's group (gid %s): %w", gid, err)
	}
	return u.Username, g.Name, nil
}
