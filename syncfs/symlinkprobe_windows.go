package syncfs

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// SymlinkProblem says why symlinks cannot be created in the directory
// root, or returns "" if they can. On Windows creating one needs the
// SeCreateSymbolicLinkPrivilege (administrators, or any account once
// Developer Mode is on): it tries once, with a temporary name, and a
// refusal for want of the privilege is the problem. Any other error says
// nothing of the privilege: the applier reports it where it happens.
// Call it once as a folder starts, for PlanOptions.NoSymlinks.
func SymlinkProblem(root string) string {
	name := filepath.Join(root, tempName("symlink-probe"))
	err := os.Symlink(TempPrefix+"target", name)
	if err == nil {
		os.Remove(name)
		return ""
	}
	if errors.Is(err, windows.ERROR_PRIVILEGE_NOT_HELD) {
		return "not created: symlinks need a privilege this account lacks on Windows (turn on Developer Mode, or run baton as an administrator)"
	}
	return ""
}
