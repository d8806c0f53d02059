//go:build !unix && !windows

package syncfs

import "io/fs"

// FileID answers errNoFileID: this system has no file identities.
func (rootFS) FileID(string, fs.FileInfo) (FileID, error) { return FileID{}, errNoFileID }

func osFileID(File) (FileID, bool) { return FileID{}, false }
