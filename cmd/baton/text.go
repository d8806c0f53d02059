package main

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/baton-sync/baton/internal/control"
)

// printable returns s as a terminal shows it, with everything it would act
// on instead written as a Go escape: control characters (\x1b, \n, \a),
// C1 controls (\u009b), bidirectional overrides and other format
// characters (\u202e), and bytes that are not UTF-8 (\xff). Text that
// comes from other hosts (file names in errors, names in records, their
// messages) goes through it before a human reads it, so it can neither
// drive the terminal nor pass for output of its own.
func printable(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !isShown(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && w == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])|0x100, 16)[1:])
		case isShown(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += w
	}
	return b.String()
}

// isShown reports whether a terminal shows r as it is.
func isShown(r rune) bool { return r == ' ' || unicode.IsPrint(r) }

// printableStatus returns st with its text fields printable, for human output.
func printableStatus(st control.FolderStatus) control.FolderStatus {
	for _, p := range []*string{&st.ID, &st.Name, &st.Root, &st.Role, &st.State, &st.LastError, &st.QuotaRefused, &st.Hint} {
		*p = printable(*p)
	}
	return st
}
