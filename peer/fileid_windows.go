package peer

import (
	"os"

	"golang.org/x/sys/windows"
)

// fileID tells files apart where size and time may not: a file replaced
// by another (a rename over it) has another one. Windows has no inode
// numbers: the volume serial number and the file index play their part.
type fileID struct {
	volume uint32
	index  uint64
}

// fileIDOf returns the volume serial number and file index of the file at
// path, read from an open handle (FileInfo does not carry them); zero if
// it cannot be opened.
func fileIDOf(path string, _ os.FileInfo) fileID {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return fileID{}
	}
	// No access rights are needed to read the attributes, and sharing
	// everything does not disturb another program that has it open.
	h, err := windows.CreateFile(p, 0,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS, 0)
	if err != nil {
		return fileID{}
	}
	defer windows.CloseHandle(h)
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return fileID{}
	}
	return fileID{volume: info.VolumeSerialNumber, index: uint64(info.FileIndexHigh)<<32 | uint64(info.FileIndexLow)}
}
