package memtrim

import (
	"bufio"
	"strconv"
	"strings"
)

// Span is a range of a process's address space, [Start, End).
type Span struct{ Start, End uintptr }

// ExecutableSpans returns, from the text of a /proc/PID/smaps, the
// mappings of the file exe that may be let go of: read-only, and holding
// no private copy of a page (the RELRO data of a position-independent
// executable is relocated in place and then made read-only: those pages
// exist nowhere else, and letting them go would read the file's
// unrelocated bytes back). It is pure.
func ExecutableSpans(smaps, exe string) []Span {
	var (
		out  []Span
		cur  Span
		keep bool
	)
	flush := func() {
		if keep {
			out = append(out, cur)
		}
		keep = false
	}
	sc := bufio.NewScanner(strings.NewReader(smaps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(f[0], "-"); ok && !strings.HasSuffix(f[0], ":") && len(f) >= 5 {
			// A mapping's header: range, perms, offset, device, inode[, path].
			flush()
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			keep = err1 == nil && err2 == nil && b > a && len(f) >= 6 && f[5] == exe &&
				len(f[1]) == 4 && f[1][0] == 'r' && f[1][1] == '-' && f[1][3] == 'p'
			cur = Span{uintptr(a), uintptr(b)}
			continue
		}
		if keep && f[0] == "Anonymous:" && (len(f) < 2 || f[1] != "0") {
			keep = false // pages of its own: not to be dropped
		}
	}
	flush()
	return out
}
