//go:build !windows

package syncfs

// SymlinkProblem says why symlinks cannot be created in the directory
// root, or returns "" if they can: always "" here, where creating one
// needs no privilege (on Windows it does). Call it once as a folder
// starts, for PlanOptions.NoSymlinks.
func SymlinkProblem(root string) string { return "" }
