package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Format is n in B, KiB, MiB, GiB, ... (one decimal above bytes;
// a whole number when exact).
func Format(n int64) string {
	if div, exp := scale(n); exp >= 0 && n%div == 0 {
		return fmt.Sprintf("%d %ciB", n/div, "KMGTPE"[exp])
	}
	return FormatTenths(n)
}

// FormatTenths is n in B, KiB, MiB, GiB, ... with one decimal above
// bytes, exact or not (for columns and progress that keep their width).
func FormatTenths(n int64) string {
	div, exp := scale(n)
	if exp < 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// scale is the largest power of 1024 (div) not above n, and its unit's
// index in "KMGTPE" (-1 for bytes).
func scale(n int64) (div int64, exp int) {
	const unit = 1024
	if n < unit {
		return 1, -1
	}
	div, exp = unit, 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return div, exp
}

// units are the units Parse takes, lower case.
var units = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1000,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1000 * 1000,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1000 * 1000 * 1000,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1000 * 1000 * 1000 * 1000,
}

// Parse reads a size such as 10GiB, 1.5 TiB, 500MB or 4096 (bytes):
// the IEC units (KiB, MiB, GiB, TiB, or K, M, G, T) are powers of 1024,
// KB, MB, GB and TB powers of 1000. It must be more than 0.
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	mul, ok := units[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("size %q: want a number and a unit, such as 10GiB, 500MiB or 2TB", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	b := v * float64(mul)
	if b < 1 || b > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q: want at least 1 byte and at most %s", s, Format(math.MaxInt64/2))
	}
	return int64(b), nil
}
