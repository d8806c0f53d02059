package syncfs

import (
	"fmt"
	"path"
	"strings"
	"time"
	"unicode/utf8"
)

// conflictMarker is the part of a conflict copy's name that marks it.
const conflictMarker = ".sync-conflict-"

// ConflictName returns the name a conflict copy of name gets:
// NAME.sync-conflict-YYYYMMDD-HHMMSS-DEVICE.EXT, with the time in UTC and
// the short form of device. Conflicts stay one level deep: the marker of a
// copy being copied again is replaced, not nested. The result passes
// CheckName when name does (over-long stems are shortened).
func ConflictName(name string, t time.Time, device string) string {
	return conflictName(name, t, ShortDevice(device))
}

func conflictName(name string, t time.Time, short string) string {
	dir, base := path.Split(name)
	stem, ext := splitExt(base)
	if i := strings.Index(base, conflictMarker); i > 0 {
		// A copy of a copy: drop the old marker (time, device) and keep the
		// original extension, which follows the device.
		stem, ext = base[:i], ""
		if j := strings.IndexByte(base[i+len(conflictMarker):], '.'); j >= 0 {
			ext = base[i+len(conflictMarker)+j:]
		}
	}
	suffix := conflictMarker + t.UTC().Format("20060102-150405") + "-" + short + ext
	if room := MaxComponentLen - len(suffix); len(stem) > room {
		stem = stem[:room]
		for !utf8.ValidString(stem) {
			stem = stem[:len(stem)-1]
		}
	}
	return dir + stem + suffix
}

// IsConflictCopy reports whether name looks like a conflict copy.
func IsConflictCopy(name string) bool {
	return strings.Index(path.Base(name), conflictMarker) > 0
}

// splitExt splits base into stem and extension; a leading dot (".bashrc")
// is part of the stem.
func splitExt(base string) (stem, ext string) {
	i := strings.LastIndexByte(base, '.')
	if i <= 0 || i == len(base)-1 {
		return base, ""
	}
	return base[:i], base[i:]
}

// ShortDevice returns the short form of a device (peer) ID used in conflict
// names: seven characters, after the "12D3KooW" prefix every Ed25519 peer ID
// shares.
func ShortDevice(device string) string {
	device = strings.TrimPrefix(device, "12D3KooW")
	var b strings.Builder
	for _, r := range device {
		if b.Len() == 7 {
			break
		}
		if r < 0x80 && (r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

// wins reports whether a wins a conflict against b. Every device decides
// alike, so all converge on the same winner: a directory beats anything
// else (its contents may be live), then a live entry beats a deletion (never
// lose data), then the later ModTime, then the larger version's last
// device, then the larger content hash or target.
func wins(a, b FileInfo) bool {
	if a.Deleted != b.Deleted {
		return !a.Deleted
	}
	if (a.Type == TypeDir) != (b.Type == TypeDir) {
		return a.Type == TypeDir
	}
	if a.ModTime != b.ModTime {
		return a.ModTime > b.ModTime
	}
	if da, db := a.Version.LastDevice(), b.Version.LastDevice(); da != db {
		return da > db
	}
	if a.Type != b.Type {
		return a.Type > b.Type
	}
	if c := strings.Compare(string(a.FileHash[:]), string(b.FileHash[:])); c != 0 {
		return c > 0
	}
	return a.SymlinkTarget > b.SymlinkTarget
}

// conflictCopyName names the copy of loser, from its own ModTime and last
// device, so every device that keeps the same losing version names its copy
// the same and the copies converge instead of multiplying. taken reports
// names already in use by other content.
func conflictCopyName(loser FileInfo, taken func(string) bool) string {
	short := ShortDevice(loser.Version.LastDevice())
	t := time.Unix(0, loser.ModTime)
	name := conflictName(loser.Name, t, short)
	for i := 2; taken(name); i++ {
		name = conflictName(loser.Name, t, fmt.Sprintf("%s-%d", short, i))
	}
	return name
}
