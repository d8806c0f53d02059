package syncfs

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Ordering is the result of comparing two version vectors.
type Ordering int

// The possible orderings of two vectors.
const (
	Equal Ordering = iota
	Greater
	Lesser
	Concurrent
)

func (o Ordering) String() string {
	switch o {
	case Equal:
		return "equal"
	case Greater:
		return "greater"
	case Lesser:
		return "lesser"
	case Concurrent:
		return "concurrent"
	}
	return fmt.Sprintf("Ordering(%d)", int(o))
}

// Counter is one device's entry in a version vector.
type Counter struct {
	Device string `cbor:"1,keyasint"`
	Value  uint64 `cbor:"2,keyasint"`
}

// Vector is a version vector: for each device that changed a file, how far.
// Counters are sorted by device and never zero, so equal vectors have equal
// encodings. The zero value is the empty vector. Vectors are values: every
// method returns a new vector and leaves its receiver alone.
type Vector struct {
	Counters []Counter `cbor:"1,keyasint,omitempty"`
}

// Update returns v with device's counter set to one more than the largest
// counter in v, so a device's new version is ordered after everything it has
// seen (a Lamport clock per file, as Syncthing does with its time floor
// removed to keep this pure). The counter stops at the largest uint64
// instead of wrapping to zero, which would make the version invalid: only
// a member announcing such a counter on purpose gets there, and then the
// file's later versions are no longer ordered after it, but every entry
// stays valid (a zero counter would have every index holding it refused).
func (v Vector) Update(device string) Vector {
	var highest uint64
	for _, c := range v.Counters {
		highest = max(highest, c.Value)
	}
	if highest < math.MaxUint64 {
		highest++
	}
	return v.set(device, highest)
}

func (v Vector) set(device string, value uint64) Vector {
	i, found := slices.BinarySearchFunc(v.Counters, device, func(c Counter, d string) int {
		return strings.Compare(c.Device, d)
	})
	out := make([]Counter, 0, len(v.Counters)+1)
	out = append(out, v.Counters[:i]...)
	out = append(out, Counter{Device: device, Value: value})
	if found {
		i++
	}
	out = append(out, v.Counters[i:]...)
	return Vector{Counters: out}
}

// Counter returns device's counter in v, zero if absent.
func (v Vector) Counter(device string) uint64 {
	for _, c := range v.Counters {
		if c.Device == device {
			return c.Value
		}
	}
	return 0
}

// IsZero reports whether v is empty.
func (v Vector) IsZero() bool { return len(v.Counters) == 0 }

// Merge returns the element-wise maximum of v and o.
func (v Vector) Merge(o Vector) Vector {
	out := make([]Counter, 0, max(len(v.Counters), len(o.Counters)))
	i, j := 0, 0
	for i < len(v.Counters) || j < len(o.Counters) {
		switch {
		case j == len(o.Counters) || i < len(v.Counters) && v.Counters[i].Device < o.Counters[j].Device:
			out = append(out, v.Counters[i])
			i++
		case i == len(v.Counters) || o.Counters[j].Device < v.Counters[i].Device:
			out = append(out, o.Counters[j])
			j++
		default:
			out = append(out, Counter{Device: v.Counters[i].Device, Value: max(v.Counters[i].Value, o.Counters[j].Value)})
			i++
			j++
		}
	}
	if len(out) == 0 {
		return Vector{}
	}
	return Vector{Counters: out}
}

// Compare orders v against o.
func (v Vector) Compare(o Vector) Ordering {
	greater, lesser := false, false
	i, j := 0, 0
	for i < len(v.Counters) || j < len(o.Counters) {
		var a, b uint64
		switch {
		case j == len(o.Counters) || i < len(v.Counters) && v.Counters[i].Device < o.Counters[j].Device:
			a = v.Counters[i].Value
			i++
		case i == len(v.Counters) || o.Counters[j].Device < v.Counters[i].Device:
			b = o.Counters[j].Value
			j++
		default:
			a, b = v.Counters[i].Value, o.Counters[j].Value
			i++
			j++
		}
		greater = greater || a > b
		lesser = lesser || a < b
	}
	switch {
	case greater && lesser:
		return Concurrent
	case greater:
		return Greater
	case lesser:
		return Lesser
	}
	return Equal
}

// Equal reports whether v and o are the same version.
func (v Vector) Equal(o Vector) bool { return v.Compare(o) == Equal }

// GreaterEqual reports whether v is o or newer.
func (v Vector) GreaterEqual(o Vector) bool {
	c := v.Compare(o)
	return c == Equal || c == Greater
}

// LastDevice returns the device with the highest counter (ties go to the
// smallest device ID), which for vectors made by Update is the device that
// made the version. It returns "" for the empty vector.
func (v Vector) LastDevice() string {
	var dev string
	var hi uint64
	for _, c := range v.Counters {
		if c.Value > hi {
			dev, hi = c.Device, c.Value
		}
	}
	return dev
}

// Validate checks the canonical form: counters sorted by device, devices
// unique and non-empty, values non-zero.
func (v Vector) Validate() error {
	for i, c := range v.Counters {
		if c.Device == "" || c.Value == 0 {
			return fmt.Errorf("version vector: empty device or zero counter")
		}
		if i > 0 && v.Counters[i-1].Device >= c.Device {
			return fmt.Errorf("version vector: devices not sorted and unique")
		}
	}
	return nil
}

func (v Vector) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, c := range v.Counters {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s:%d", c.Device, c.Value)
	}
	b.WriteByte('}')
	return b.String()
}
