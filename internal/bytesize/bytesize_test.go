package bytesize

import "testing"

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"10GiB": 10 << 30, "10 GiB": 10 << 30, "10g": 10 << 30, "1.5TiB": 3 << 39, "500MB": 500e6,
		"4096": 4096, "4096B": 4096, "2 kib": 2048, "1KB": 1000,
	} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "lots", "-5GiB", "0", "0.1", "10 parsecs", "1.2.3GB", "99999999TiB"} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %d; want an error", in, got)
		}
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 10 << 30: "10 GiB", 5<<20 + 1: "5.0 MiB"} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q; want %q", n, got, want)
		}
	}
}

func TestFormatTenths(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 10 << 30: "10.0 GiB", 3 << 50: "3.0 PiB"} {
		if got := FormatTenths(n); got != want {
			t.Errorf("FormatTenths(%d) = %q; want %q", n, got, want)
		}
	}
}
