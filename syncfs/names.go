package syncfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Limits on names received from peers.
const (
	MaxComponentLen = 255  // bytes in one path component
	MaxNameLen      = 4096 // bytes in a whole relative path
)

// Errors callers branch on.
var (
	ErrBadName           = errors.New("invalid file name")
	ErrEscapesRoot       = errors.New("path escapes the folder root")
	ErrSymlinkTraversal  = errors.New("path traverses a symbolic link")
	ErrNotDirectoryChain = errors.New("path has a non-directory parent")
)

// CheckName reports whether name is an acceptable relative file name inside a
// folder. Names are slash-separated, relative and clean: no empty, "." or ".."
// component, no leading or trailing slash, no NUL, no other control
// character, no backslash (a separator on Windows), valid UTF-8, at most
// MaxComponentLen bytes per component and MaxNameLen in all.
//
// CheckName is the security check for names received from peers; every name
// in a decoded Index passes it. Names that are merely awkward on some systems
// but safe here, such as Windows' reserved device names (CON, COM1, ...) or
// trailing dots and spaces, are accepted: they are legal on Linux and macOS
// and refusing them would make files created there unsyncable. Plan skips
// them where PlanOptions.Names says the folder's file system cannot hold
// them (NameRules, CheckWindowsName).
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrBadName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBadName, len(name), MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrBadName, name)
	}
	for _, r := range name {
		switch {
		case r == 0:
			return fmt.Errorf("%w: %q contains NUL", ErrBadName, name)
		case r == '\\':
			return fmt.Errorf("%w: %q contains a backslash", ErrBadName, name)
		case r < 0x20 || r == 0x7f:
			return fmt.Errorf("%w: %q contains a control character", ErrBadName, name)
		}
	}
	if name[0] == '/' {
		return fmt.Errorf("%w: %q is absolute", ErrBadName, name)
	}
	for c := range strings.SplitSeq(name, "/") {
		switch {
		case c == "":
			return fmt.Errorf("%w: %q has an empty component", ErrBadName, name)
		case c == "." || c == "..":
			return fmt.Errorf("%w: %q has a %q component", ErrBadName, name, c)
		case len(c) > MaxComponentLen:
			return fmt.Errorf("%w: a component of %q is %d bytes, limit %d", ErrBadName, name, len(c), MaxComponentLen)
		}
	}
	return nil
}

var folder = cases.Fold()

// Canonical returns the form of name used to detect clashes: Unicode NFC
// after full case folding. Two names with the same canonical form may be one
// file on a case-insensitive or normalizing filesystem (macOS, Windows), so
// baton never lets both exist in a folder.
func Canonical(name string) string {
	// ASCII names, most of them, fold to lower case and are already NFC:
	// no tables, and no copy when there is no upper case letter.
	upper := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= utf8.RuneSelf {
			return canonicalSlow(name)
		}
		upper = upper || 'A' <= c && c <= 'Z'
	}
	if !upper {
		return name
	}
	return strings.ToLower(name)
}

// canonicalSlow is Canonical through the Unicode tables.
func canonicalSlow(name string) string {
	return norm.NFC.String(strings.Map(foldCherokee, folder.String(norm.NFC.String(name))))
}

// foldCherokee folds Cherokee letters to upper case, as Unicode's
// CaseFolding.txt does (their lower case came later). cases.Fold swaps
// the two cases instead (golang/go#46101), which would let "Ꭰ" and "ꭰ"
// stand side by side.
func foldCherokee(r rune) rune {
	switch {
	case 0xAB70 <= r && r <= 0xABBF:
		return r - 0xAB70 + 0x13A0
	case 0x13F8 <= r && r <= 0x13FD:
		return r - 8
	}
	return r
}

// Clashes reports whether a and b are different names that would be the same
// file on a case-insensitive or normalizing filesystem.
func Clashes(a, b string) bool {
	return a != b && Canonical(a) == Canonical(b)
}

// ClashIndex finds names that clash with names already added. The zero value
// is not usable; use NewClashIndex.
type ClashIndex struct {
	byCanon map[string]string
}

// NewClashIndex returns an empty index.
func NewClashIndex() *ClashIndex { return &ClashIndex{byCanon: make(map[string]string)} }

// Add records name and returns "", true; if a different name with the same
// canonical form was added before, it returns that name and false and records
// nothing. Adding the same name twice is not a clash.
func (c *ClashIndex) Add(name string) (clash string, ok bool) {
	k := Canonical(name)
	if prev, found := c.byCanon[k]; found && prev != name {
		return prev, false
	}
	c.byCanon[k] = name
	return "", true
}

// Lookup returns the recorded name with name's canonical form, if any.
func (c *ClashIndex) Lookup(name string) (string, bool) {
	prev, ok := c.byCanon[Canonical(name)]
	return prev, ok
}

// SafeJoin returns the native path of name under root. It fails unless name
// passes CheckName and the result is inside root. It does not look at the
// filesystem; see CheckNoSymlinkTraversal for that.
func SafeJoin(root, name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	root = filepath.Clean(root)
	p := filepath.Join(root, filepath.FromSlash(name))
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("%w: %q under %q", ErrEscapesRoot, name, root)
	}
	return p, nil
}

// CheckNoSymlinkTraversal checks, with Lstat, every existing parent
// directory of name under root, and fails if one is a symbolic link or not a
// directory. The last component itself may be anything (a symlink there is
// replaced, never followed, by the applier). Missing parents are fine: they
// will be created. The check is only as good as the moment it runs; the
// applier repeats it just before writing.
func CheckNoSymlinkTraversal(root, name string) error {
	if _, err := SafeJoin(root, name); err != nil {
		return err
	}
	return checkParents(os.Lstat, filepath.Clean(root), name)
}

// parentDir returns the slash-separated parent of name, or "" at the root.
func parentDir(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}
