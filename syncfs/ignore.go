package syncfs

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// IgnoreFile is the name of a folder's ignore file, at the folder root.
const IgnoreFile = ".batonignore"

// MaxIgnoreSize caps an ignore file (1 MiB).
const MaxIgnoreSize = 1 << 20

// Matcher decides which paths a folder ignores, from gitignore-style
// patterns. A nil *Matcher ignores nothing.
//
// The syntax is gitignore's: blank lines and lines starting with # are
// skipped (\# is a literal #); trailing spaces are dropped unless escaped
// with \; a leading ! re-includes what an earlier pattern excluded (\! is a
// literal !); a trailing / matches directories only; a pattern with a / at
// the start or in the middle is anchored at the folder root, one without
// matches at any depth; * and ? match within one path component; [abc],
// [a-z] and [!a-z] are character classes; a leading **/ matches in all
// directories, a trailing /** matches everything inside, and /**/ matches
// zero or more directories. The last matching pattern wins, and as in git a
// path inside an ignored directory stays ignored whatever later patterns say.
type Matcher struct {
	rules []rule
}

type rule struct {
	segs    []string // path.Match patterns, or "**"
	negate  bool
	dirOnly bool
	tail    bool // the last segment is a trailing "**": one or more components
	text    string
}

// ParseIgnore reads patterns from r, refusing input over MaxIgnoreSize and
// malformed patterns (with their line number).
func ParseIgnore(r io.Reader) (*Matcher, error) {
	lr := &io.LimitedReader{R: r, N: MaxIgnoreSize + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 4096), MaxIgnoreSize+1)
	m := &Matcher{}
	line := 0
	for sc.Scan() {
		line++
		ru, ok, err := parseRule(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", IgnoreFile, line, err)
		}
		if ok {
			m.rules = append(m.rules, ru)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", IgnoreFile, err)
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("reading %s: over %d bytes", IgnoreFile, MaxIgnoreSize)
	}
	return m, nil
}

// ParseIgnoreString is ParseIgnore on a string.
func ParseIgnoreString(s string) (*Matcher, error) { return ParseIgnore(strings.NewReader(s)) }

func parseRule(line string) (rule, bool, error) {
	line = strings.TrimSuffix(line, "\r")
	// Drop trailing spaces that are not escaped.
	for strings.HasSuffix(line, " ") && !strings.HasSuffix(line, `\ `) {
		line = line[:len(line)-1]
	}
	if line == "" || line[0] == '#' {
		return rule{}, false, nil
	}
	ru := rule{text: line}
	if line[0] == '!' {
		ru.negate = true
		line = line[1:]
	}
	if strings.HasSuffix(line, "/") {
		ru.dirOnly = true
		line = strings.TrimRight(line, "/")
	}
	anchored := strings.Contains(line, "/")
	line = strings.TrimLeft(line, "/")
	if line == "" {
		return rule{}, false, nil // "/" or "!/" match nothing, as in git
	}
	var segs []string
	if !anchored {
		segs = append(segs, "**")
	}
	for s := range strings.SplitSeq(line, "/") {
		if s == "" {
			continue
		}
		if s == "**" {
			if len(segs) > 0 && segs[len(segs)-1] == "**" {
				continue // a/**/**/b is a/**/b
			}
			segs = append(segs, s)
			continue
		}
		s = gitClass(s)
		if _, err := path.Match(s, ""); err != nil {
			return rule{}, false, fmt.Errorf("bad pattern %q: %w", ru.text, err)
		}
		segs = append(segs, s)
	}
	if len(segs) == 0 {
		return rule{}, false, nil
	}
	ru.tail = anchored && len(segs) > 1 && segs[len(segs)-1] == "**"
	ru.segs = segs
	return ru, true, nil
}

// gitClass rewrites gitignore's [!...] negated classes to path.Match's [^...].
func gitClass(s string) string {
	if !strings.Contains(s, "[!") {
		return s
	}
	var b strings.Builder
	escaped := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '[' && i+1 < len(s) && s[i+1] == '!':
			b.WriteString("[^")
			i++
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Match reports whether the slash-separated relative name is ignored; isDir
// says whether name is a directory.
func (m *Matcher) Match(name string, isDir bool) bool {
	if m == nil || len(m.rules) == 0 || name == "" {
		return false
	}
	comps := strings.Split(name, "/")
	for k := 1; k < len(comps); k++ {
		if m.matchComps(comps[:k], true) {
			return true
		}
	}
	return m.matchComps(comps, isDir)
}

func (m *Matcher) matchComps(comps []string, isDir bool) bool {
	ignored := false
	for i := range m.rules {
		ru := &m.rules[i]
		if ru.negate != ignored {
			continue // this rule cannot change the outcome
		}
		if ru.dirOnly && !isDir {
			continue
		}
		if ru.match(comps) {
			ignored = !ru.negate
		}
	}
	return ignored
}

// match runs a dynamic programme over (segment, component) so patterns with
// many ** stay linear in their length times the path's depth.
func (ru *rule) match(comps []string) bool {
	n, m := len(ru.segs), len(comps)
	// next[j] is whether segs[i+1:] matches comps[j:]; cur is for segs[i:].
	next := make([]bool, m+1)
	cur := make([]bool, m+1)
	next[m] = true
	for i := n - 1; i >= 0; i-- {
		seg := ru.segs[i]
		for j := m; j >= 0; j-- {
			switch {
			case seg == "**" && i == n-1 && ru.tail:
				cur[j] = j < m
			case seg == "**":
				cur[j] = next[j] || j < m && cur[j+1]
			default:
				ok := false
				if j < m {
					ok, _ = path.Match(seg, comps[j])
				}
				cur[j] = ok && next[j+1]
			}
		}
		next, cur = cur, next
	}
	return next[0]
}

// String returns the patterns, one a line.
func (m *Matcher) String() string {
	if m == nil {
		return ""
	}
	var b strings.Builder
	for _, r := range m.rules {
		b.WriteString(r.text)
		b.WriteByte('\n')
	}
	return b.String()
}
