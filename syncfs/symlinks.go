package syncfs

import (
	"errors"
	"fmt"
	"strings"
)

// ErrSymlinkOutside: a symlink's target is absolute, leaves the folder, or
// is not a target at all (empty, or holding a NUL byte).
var ErrSymlinkOutside = errors.New("symlink points outside the folder")

// CheckSymlinkTarget reports whether a symlink at name (a slash path in the
// folder, as CheckName accepts) pointing to target stays in the folder. It
// looks at the text only, not at the disk: it returns an error wrapping
// ErrSymlinkOutside if target is empty or holds a NUL byte, is absolute on
// any system (a leading slash or backslash, which covers `\\server\share`,
// or a drive letter as in `C:\x` or `C:x`), or climbs with ".." above the
// folder's root from name's directory. Both slash and backslash count as
// separators, as they do on Windows: `a/b -> ../c` stays in the folder,
// `a/b -> ../../x` and `a/b -> ..\..\x` do not. A target that stays in the
// folder may still lead out of it through another symlink; the applier
// never writes through one.
func CheckSymlinkTarget(name, target string) error {
	switch {
	case target == "":
		return fmt.Errorf("%w: empty target", ErrSymlinkOutside)
	case strings.IndexByte(target, 0) >= 0:
		return fmt.Errorf("%w: target %q holds a NUL byte", ErrSymlinkOutside, target)
	case target[0] == '/' || target[0] == '\\' || hasDriveLetter(target):
		return fmt.Errorf("%w: target %q is absolute", ErrSymlinkOutside, target)
	}
	depth := strings.Count(name, "/") // of name's directory below the root
	for _, c := range strings.FieldsFunc(target, func(r rune) bool { return r == '/' || r == '\\' }) {
		switch c {
		case ".":
		case "..":
			depth--
			if depth < 0 {
				return fmt.Errorf("%w: target %q leaves the folder", ErrSymlinkOutside, target)
			}
		default:
			depth++
		}
	}
	return nil
}

// hasDriveLetter reports whether s starts with a Windows drive ("C:").
func hasDriveLetter(s string) bool {
	return len(s) >= 2 && s[1] == ':' && ('a' <= s[0] && s[0] <= 'z' || 'A' <= s[0] && s[0] <= 'Z')
}
