package syncfs

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

// FileID opens name (relative to the root) to read its volume serial
// number and file index: Windows' stat data (FileInfo) does not carry
// them. The entry is opened with no access rights and sharing everything,
// so another program that has it open, or renames or deletes it
// meanwhile, is not disturbed; a final symlink or junction is not
// followed (its own identity is read); a directory is opened with
// FILE_FLAG_BACKUP_SEMANTICS, without which it cannot be opened at all.
// The open is outside the os.Root, which is safe here: it reads an
// identity, never data, and a wrong one costs at most a rehash.
func (r rootFS) FileID(name string, _ fs.FileInfo) (FileID, error) {
	p, err := windows.UTF16PtrFromString(filepath.Join(r.Root.Name(), name))
	if err != nil {
		return FileID{}, fmt.Errorf("reading the file index of %s: %w", name, err)
	}
	h, err := windows.CreateFile(p, 0,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_EXISTING,
		windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return FileID{}, fmt.Errorf("reading the file index of %s: %w", name, err)
	}
	defer windows.CloseHandle(h)
	id, err := handleID(h)
	if err != nil {
		return FileID{}, fmt.Errorf("reading the file index of %s: %w", name, err)
	}
	return id, nil
}

// osFileID returns the FileID of a file of the disk opened through the
// os.Root, from its handle.
func osFileID(f File) (FileID, bool) {
	o, ok := f.(*os.File)
	if !ok {
		return FileID{}, false
	}
	id, err := handleID(windows.Handle(o.Fd()))
	return id, err == nil
}

// fileIDInfo is FILE_ID_INFO.
type fileIDInfo struct {
	VolumeSerialNumber uint64
	FileID             [16]byte
}

// handleID returns the FileID of the open handle h: FILE_ID_INFO's 128
// bits where the system and the file system give them (Windows 8 and
// later; ReFS needs them), else GetFileInformationByHandle's 64.
func handleID(h windows.Handle) (FileID, error) {
	var info fileIDInfo
	if err := windows.GetFileInformationByHandleEx(h, windows.FileIdInfo, (*byte)(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err == nil {
		return FileID{
			Volume:    info.VolumeSerialNumber,
			Index:     binary.LittleEndian.Uint64(info.FileID[:8]),
			IndexHigh: binary.LittleEndian.Uint64(info.FileID[8:]),
		}, nil
	}
	var bh windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &bh); err != nil {
		return FileID{}, err
	}
	return FileID{Volume: uint64(bh.VolumeSerialNumber), Index: uint64(bh.FileIndexHigh)<<32 | uint64(bh.FileIndexLow)}, nil
}
