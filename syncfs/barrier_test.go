package syncfs_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/baton-sync/baton/syncfs"
)

// TestBarrier: a barrier over names in a folder goes through, and fails
// with the folder's path when the folder is gone.
func TestBarrier(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "d", "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syncfs.Barrier(root, []string{"a", "d/b", "d/e/c"}); err != nil {
		t.Fatalf("Barrier: %v", err)
	}
	gone := filepath.Join(root, "gone")
	if err := syncfs.Barrier(gone, []string{"a"}); err == nil {
		t.Fatal("Barrier on a missing folder succeeded")
	}
}
