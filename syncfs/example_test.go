package syncfs_test

import (
	"fmt"
	"strings"

	"github.com/baton-sync/baton/syncfs"
)

func ExamplePlan() {
	file := func(name, data string, v syncfs.Vector) syncfs.FileInfo {
		blocks, sum, _ := syncfs.HashFile(strings.NewReader(data))
		return syncfs.FileInfo{Name: name, Type: syncfs.TypeFile, Size: int64(len(data)), Mode: 0o644,
			ModTime: 1749283750000000000, Version: v, Blocks: blocks, FileHash: sum}
	}
	base := syncfs.Vector{}.Update("12D3KooWBase")
	local := syncfs.Snapshot{
		"notes.txt": file("notes.txt", "v1", base),
		"todo.txt":  file("todo.txt", "mine", base.Update("12D3KooWLaptop")),
	}
	remote := syncfs.Snapshot{
		"docs":      {Name: "docs", Type: syncfs.TypeDir, Mode: 0o755, Version: base},
		"docs/a.md": file("docs/a.md", "# A", base),
		"notes.txt": file("notes.txt", "v2", base.Update("12D3KooWDesktop")),
		"todo.txt":  file("todo.txt", "theirs", base.Update("12D3KooWDesktop")),
	}
	for _, a := range syncfs.Plan(local, remote, "12D3KooWLaptop") {
		fmt.Println(a)
	}
	// Output:
	// mkdir docs
	// fetch docs/a.md
	// fetch notes.txt
	// fetch todo.sync-conflict-20250607-080910-Desktop.txt (conflict: local version wins)
	// record todo.txt (conflict: local version wins)
}
