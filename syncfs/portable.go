package syncfs

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"unicode/utf16"
)

// ErrUnportableName: the folder's file system cannot hold a name that
// CheckName accepts (a name another system's peer made).
var ErrUnportableName = errors.New("name not allowed on this file system")

// MaxWindowsPath is Windows' legacy limit on a path's length (MAX_PATH, 260
// UTF-16 code units with the terminating NUL): Explorer and many programs
// cannot open a file whose full path is longer.
const MaxWindowsPath = 259

// windowsForbidden are the characters Windows refuses in a name, besides
// the control characters and the separators.
const windowsForbidden = `<>:"|?*\`

// CheckWindowsName returns nil if Windows can create every component of
// name, a slash path as CheckName accepts, and otherwise an error wrapping
// ErrUnportableName that says why: a reserved device name (CON, PRN, AUX,
// NUL, CONIN$, CONOUT$, COM0-9 and LPT0-9, with ¹²³ too, in any case, with
// or without an extension, and with trailing spaces before it), a name
// ending in a dot or a space, or one holding a control character or one of
// <>:"|?*\. It looks at the text only.
func CheckWindowsName(name string) error {
	for c := range strings.SplitSeq(name, "/") {
		if why := windowsComponentProblem(c); why != "" {
			if c == name {
				return fmt.Errorf("%w: %q %s on Windows", ErrUnportableName, name, why)
			}
			return fmt.Errorf("%w: %q: %q %s on Windows", ErrUnportableName, name, c, why)
		}
	}
	return nil
}

// windowsComponentProblem says why Windows cannot hold the path component
// c, or returns "".
func windowsComponentProblem(c string) string {
	for _, r := range c {
		switch {
		case r < 0x20:
			return "holds a control character, not allowed"
		case strings.ContainsRune(windowsForbidden, r):
			return fmt.Sprintf("holds %q, not allowed", r)
		}
	}
	switch {
	case strings.HasSuffix(c, "."):
		return "ends in a dot, which is dropped"
	case strings.HasSuffix(c, " "):
		return "ends in a space, which is dropped"
	case windowsReservedBase(c):
		return "is a reserved device name"
	}
	return ""
}

// windowsReservedBase reports whether the component c names a device: its
// part before the first dot, trailing spaces dropped, is a device name.
func windowsReservedBase(c string) bool {
	base, _, _ := strings.Cut(c, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(base) < 4 || base[:3] != "COM" && base[:3] != "LPT" {
		return false
	}
	switch base[3:] {
	case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³":
		return true
	}
	return false
}

// NameRules say which names, beyond those CheckName refuses, a folder's
// file system cannot hold. The zero value refuses none (Linux, macOS).
type NameRules struct {
	// Windows refuses what CheckWindowsName refuses.
	Windows bool
	// MaxPath, if positive, refuses names whose full path (the folder's
	// root, a separator and the name) is longer, in UTF-16 code units,
	// than MaxPath; RootLen is the length of the root's path so counted.
	MaxPath, RootLen int
}

// WindowsNameRules returns the rules of a folder at root on Windows: its
// names, and the legacy path length limit. An empty root counts the names
// alone, for a folder on another system that keeps to Windows' names.
func WindowsNameRules(root string) NameRules {
	r := NameRules{Windows: true, MaxPath: MaxWindowsPath}
	if root != "" {
		r.RootLen = utf16Len(filepath.Clean(root))
	}
	return r
}

// NativeNameRules returns the rules that apply to a folder at root on this
// system, plus Windows' names if windows is set (an opt-in elsewhere, so
// that the folder holds only what its Windows members can): on Windows
// always WindowsNameRules(root), elsewhere none by default.
func NativeNameRules(root string, windows bool) NameRules {
	switch {
	case onWindows:
		return WindowsNameRules(root)
	case windows:
		return WindowsNameRules("")
	}
	return NameRules{}
}

// Check returns nil if the folder's file system can hold name, a slash path
// as CheckName accepts, and otherwise an error wrapping ErrUnportableName
// that says why.
func (r NameRules) Check(name string) error {
	if r.Windows {
		if err := CheckWindowsName(name); err != nil {
			return err
		}
	}
	if r.MaxPath > 0 {
		n := utf16Len(name)
		if r.RootLen > 0 {
			n += r.RootLen + 1
		}
		if n > r.MaxPath {
			return fmt.Errorf("%w: %q: a path of %d characters, over the limit of %d", ErrUnportableName, name, n, r.MaxPath)
		}
	}
	return nil
}

// utf16Len is the length of s in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// localPerm returns the permission bits the applier sets for an entry
// recorded with m: m itself, except on Windows, which keeps only a
// read-only flag (cleared where m lacks the owner's write bit): there the
// entry is always left writable, and the bits travel in the index only.
func localPerm(m fs.FileMode) fs.FileMode {
	if onWindows {
		return m | 0o200
	}
	return m
}
